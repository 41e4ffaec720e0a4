/** \file
 * A fast Transpose for the executor's fast path: the same copy as the op table's reference kernel (ir/op.h), bit for
 * bit (it moves values, computes none), in an order that the caches can follow.
 *
 * Why: the reference kernel walks the output in order and reads the input through the permuted strides, one value a
 * stride apart at a time; a transpose that moves the innermost axis (an ONNX Gather on a middle axis becomes one, as
 * do attention's head splits) then reads a cache line for every value. Here axes that stay next to each other are
 * merged first; when the innermost axis stays innermost every run is one contiguous copy, and otherwise the two axes
 * that trade places (the input's innermost and the output's innermost) are copied in square tiles, so that both
 * sides touch whole cache lines. Outer positions are shared among the threads.
 */
#pragma once

#include <cstdint>
#include <span>

#include "dojo/ir/shape.h"

namespace dojo::runtime {

/// y = x with its axes permuted: y's axis i is x's axis perm[i] (ir::Transpose's semantics); x has `x_shape`.
void transpose_tiled(const ir::Shape& x_shape, std::span<const int> perm, const float* x, float* y);

/// How transpose_tiled moves a tensor (the simulator times each way at its own measured rate).
enum class TransposeWay {
    Runs,   ///< the innermost axis stays innermost: contiguous copies of its runs (nothing moves: one copy)
    Tiles,  ///< the innermost axis moves: square tiles, one value at a time
};
TransposeWay transpose_way(const ir::Shape& x_shape, std::span<const int> perm);

/// Whether transpose_tiled shares a tensor of `elements` among the threads (smaller ones run on one thread).
bool transpose_runs_on_threads(std::int64_t elements);

}  // namespace dojo::runtime
