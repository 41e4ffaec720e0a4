/** \file
 * Broadcasting walks (NumPy rules, trailing axes aligned): the offsets into each input of the element broadcast to
 * each output element, element by element or a row at a time. Kernels of the op table and the runtime's fused
 * kernels walk their operands with these.
 */
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "dojo/ir/shape.h"

namespace dojo::ir {

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
    BroadcastRows(const Shape& out, std::span<const Shape* const> inputs);
    BroadcastRows(const Shape& out, std::initializer_list<const Shape*> inputs)
        : BroadcastRows(out, std::span<const Shape* const>(inputs.begin(), inputs.size())) {}
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

}  // namespace dojo::ir
