/** \file
 * Constant tensors of an ONNX graph, evaluated at import time (internal to the importer).
 *
 * torch.onnx.export emits shape arithmetic (Shape, Gather, Unsqueeze, Concat, Div, Cast, ConstantOfShape, Equal,
 * Where ...) and constant masks (a causal mask sliced, negated and cast to bool). On static shapes all of it is
 * constant, so the importer folds it here and only materialises a constant as a graph node (ir Fill or Constant)
 * where it meets data. Values are held as doubles: exact for every int64 a shape holds (|v| < 2^53), for bools and
 * for floats; conversion back to int64 saturates (ONNX uses INT64_MAX as "to the end").
 *
 * Every function throws std::invalid_argument with a message; the importer adds the node's name.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dojo::frontend::folding {

enum class ElementKind { Int, Bool, Float };

struct Constant {
    ElementKind kind = ElementKind::Int;
    std::vector<std::int64_t> dims;  ///< empty: a scalar
    std::vector<double> values;      ///< row-major, product(dims) of them

    bool scalar() const { return dims.empty(); }
    std::int64_t count() const;
    /// The values as int64, saturating.
    std::vector<std::int64_t> ints() const;
};

Constant make_ints(std::vector<std::int64_t> values, bool scalar = false);
/// The constant of `kind` with values converted as ONNX Cast does (float -> int truncates, anything -> bool is != 0).
Constant cast(const Constant& x, ElementKind kind);

/// Elementwise with multidirectional broadcasting; the result has `kind`.
Constant map2(const Constant& a, const Constant& b, ElementKind kind, const std::function<double(double, double)>& f);
Constant where(const Constant& cond, const Constant& a, const Constant& b);
/// ONNX Transpose (`perm` empty: the axes reversed). std::invalid_argument unless perm permutes the axes.
Constant transpose(const Constant& x, const std::vector<std::int64_t>& perm);
/// ONNX ScatterND without reduction: `data` with the slices `indices` address replaced by `updates`.
Constant scatter_nd(const Constant& data, const Constant& indices, const Constant& updates);

Constant gather(const Constant& data, const Constant& indices, std::int64_t axis);
Constant unsqueeze(const Constant& x, std::vector<std::int64_t> axes);
Constant squeeze(const Constant& x, std::vector<std::int64_t> axes);  ///< empty axes: every axis of size 1
Constant concat(const std::vector<Constant>& parts, std::int64_t axis);
Constant reshape(const Constant& x, std::vector<std::int64_t> dims);  ///< dims already resolved (no 0 / -1)
Constant expand(const Constant& x, const std::vector<std::int64_t>& shape);
Constant constant_of_shape(const std::vector<std::int64_t>& shape, const Constant& value);
Constant range(double start, double limit, double delta, ElementKind kind);

/// One axis of an ONNX Slice, resolved against the dimension: elements start, start + step, ... (count of them).
struct SliceAxis {
    std::int64_t start = 0;
    std::int64_t count = 0;
    std::int64_t step = 1;
};
/// Resolves ONNX Slice's starts/ends/steps (negative and out-of-range values clamped as the spec says) for one
/// dimension; a negative step reverses (constants fold it; the graph's Slice takes positive steps only).
SliceAxis resolve_slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step);
/// ONNX Slice on a constant; `axes` already normalised, one SliceAxis per entry.
Constant slice(const Constant& x, const std::vector<std::int64_t>& axes, const std::vector<SliceAxis>& ranges);

/// Broadcast dimensions (numpy rules); throws for incompatible shapes.
std::vector<std::int64_t> broadcast_dims(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);
/// Axis in [-rank, rank) -> [0, rank).
std::int64_t normalize(std::int64_t axis, std::int64_t rank);

}  // namespace dojo::frontend::folding
