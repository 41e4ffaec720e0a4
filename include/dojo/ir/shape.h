/** \file
 * Static tensor shapes, row-major layout, and NumPy/ONNX multidirectional broadcasting.
 *
 * Shapes are fully static: the compiler plans memory and the simulator times work from shapes alone, so a graph
 * is built for one batch size. A rank-0 shape is a scalar (one element). Dimensions are >= 0.
 */
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace dojo::ir {

class Shape {
public:
    Shape() = default;  ///< a scalar
    Shape(std::initializer_list<std::int64_t> dims);
    /// The most elements a tensor may have (2^50): byte counts and products of a few sizes stay within 64 bits.
    static constexpr std::int64_t kMaxElements = std::int64_t{1} << 50;
    /// Throws GraphError on a negative dimension, or more than kMaxElements elements.
    explicit Shape(std::vector<std::int64_t> dims);

    int rank() const { return static_cast<int>(dims_.size()); }
    std::int64_t operator[](int axis) const { return dims_[static_cast<std::size_t>(axis)]; }
    const std::vector<std::int64_t>& dims() const { return dims_; }
    std::int64_t numel() const;  ///< product of the dimensions (1 for a scalar)

    bool operator==(const Shape&) const = default;
    std::string to_string() const;  ///< "[2, 3]"; "[]" for a scalar

private:
    std::vector<std::int64_t> dims_;
};

/// Row-major element strides of a contiguous tensor of `shape` (in elements).
std::vector<std::int64_t> strides_of(const Shape& shape);

/// The broadcast of two shapes (align trailing dimensions; each pair equal or one of them 1).
/// Throws GraphError naming both shapes if they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);

/// `axis` in [-rank, rank) mapped to [0, rank); throws GraphError otherwise, naming `what`.
int normalize_axis(int axis, int rank, const std::string& what);

}  // namespace dojo::ir
