/** \file
 * Internal helpers for the op rows (the .cpp files beside this one): typed attribute access, errors naming the node,
 * broadcasting index walks, cost arithmetic, and the extern rows that op_table.cpp assembles.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "dojo/ir/graph.h"
#include "dojo/util/error.h"

namespace dojo::ir::ops {

template <typename A, typename... Ts>
constexpr std::size_t index_in(const std::variant<Ts...>*) {
    constexpr bool matches[] = {std::is_same_v<A, Ts>...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i) {
        if (matches[i]) {
            return i;
        }
    }
    return sizeof...(Ts);
}
/// The OpAttrs alternative index of attribute struct A.
template <typename A>
inline constexpr std::size_t kAttrsIndex = index_in<A>(static_cast<const OpAttrs*>(nullptr));

template <typename A>
const A& attrs_of(const Node& node) {
    return std::get<A>(node.attrs);
}

/// "node 'fc1' (MatMul)" or "a MatMul node".
std::string label(const Node& node);
/// Throws GraphError "<label>: <message>".
[[noreturn]] void fail(const Node& node, const std::string& message);
/// Every input must be F32 (all compute ops compute in F32; see op.h).
void require_f32(const Node& node, std::span<const TensorType> inputs);

/// Walks the elements of an output of shape `out` in row-major order and tracks, for each input, the offset of
/// the element broadcast to the current output element (stride 0 along broadcast dimensions).
class BroadcastWalker {
public:
    BroadcastWalker(const Shape& out, std::initializer_list<const Shape*> inputs);
    /// A walk over `dims` with explicit per-input strides ([input][axis]; 0 where broadcast).
    BroadcastWalker(std::vector<std::int64_t> dims, std::vector<std::vector<std::int64_t>> strides);
    std::int64_t offset(std::size_t input) const { return offsets_[input]; }
    void next();  ///< advance to the next output element
    void seek(std::int64_t flat_index);  ///< jump to output element `flat_index` (row-major)

private:
    std::vector<std::int64_t> dims_;
    std::vector<std::int64_t> coords_;
    std::vector<std::vector<std::int64_t>> strides_;  // [input][axis]
    std::vector<std::int64_t> offsets_;
};

/// The same walk a row at a time, for speed: adjacent axes along which every input is either contiguous or broadcast
/// are merged, so the output splits into rows of row_length() elements along which each input advances by
/// inner_stride(i) (0: broadcast, 1: contiguous). Visiting rows in order and elements within a row in order is the
/// row-major element order, so kernels written this way compute exactly what element-wise walks compute.
class BroadcastRows {
public:
    BroadcastRows(const Shape& out, std::initializer_list<const Shape*> inputs);
    std::int64_t row_length() const { return row_length_; }
    std::int64_t rows() const { return rows_; }
    std::int64_t inner_stride(std::size_t input) const { return inner_strides_[input]; }
    std::int64_t offset(std::size_t input) const { return outer_.offset(input); }  ///< of the current row's start
    void next_row() { outer_.next(); }
    void seek_row(std::int64_t row) { outer_.seek(row); }

private:
    BroadcastWalker outer_{Shape{}, {}};  // over the collapsed outer axes (the row axis excluded)
    std::vector<std::int64_t> inner_strides_;
    std::int64_t row_length_ = 1;
    std::int64_t rows_ = 1;
};

/// Runs body(begin, end) over [0, n) split into contiguous chunks on OpenMP threads when n is large enough to be
/// worth it (each chunk at least kMinParallelElements), else on the calling thread. Kernels only parallelise over
/// independent output elements, so results are identical for every thread count.
inline constexpr std::int64_t kMinParallelElements = 1 << 14;
void parallel_for(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& body);

double bytes_of(const TensorType& type);
/// Elementwise cost: `flops_per_element` per output element on the vector unit, inputs read once, output written.
OpCost elementwise_cost(const Node& node, std::span<const TensorType> inputs, double flops_per_element);

// Rows, one per OpKind (defined next to their kernels).
extern const OpInfo kInputOp, kParameterOp, kStateOp, kFillOp, kConstantOp;
extern const OpInfo kNegOp, kExpOp, kLogOp, kSqrtOp, kTanhOp, kSigmoidOp, kReluOp, kStepOp, kErfOp;
extern const OpInfo kAddOp, kSubOp, kMulOp, kDivOp, kMaximumOp, kSelectOp;
extern const OpInfo kMatMulOp, kReduceSumOp, kReshapeOp, kTransposeOp, kBroadcastToOp, kLogSoftmaxOp;
extern const OpInfo kSliceOp, kSliceBackwardOp;
extern const OpInfo kConv2dOp, kConv2dBackwardDataOp, kConv2dBackwardFilterOp, kMaxPool2dOp, kMaxPool2dBackwardOp;
extern const OpInfo kRoundToOp, kRoundGradOp;

}  // namespace dojo::ir::ops
