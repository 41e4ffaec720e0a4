/** \file
 * Fast MaxPool2d and MaxPool2dBackward for the executor's fast path: NCHW (the IR's layout) or channel-blocked.
 *
 * Contract: bit for bit what the op table's reference kernels compute (ir/op.h): each window's value and gradient
 * belong to its first maximum in (row, column) order, a NaN wins its window at once, padding never wins, an
 * all-padding window gives -inf and passes no gradient. There are no sums but the backward pass's (windows that
 * share their maximum add their gradients into it, in window order, as the reference does), so the results do not
 * depend on the thread count either.
 *
 * Why: the reference kernel looks at one window at a time through bounds-checked loops. Here the windows of an output
 * row that lie wholly inside the input are scanned position by position across the row, a branch-free select per
 * position over contiguous arrays that the compiler vectorises (built for AVX-512, AVX2 and baseline x86-64, picked
 * when the program loads); only edge windows take the per-window loop. In the channel-blocked layout each pixel holds
 * 16 channels side by side, so every window is scanned for 16 channels at once, one lane each, with "greater" alone
 * (a window with a NaN in any lane is scanned again with the full rule); the backward pass then has every input pixel
 * gather the gradients of the windows it wins, so dx is written once (no clearing, no add per window position).
 */
#pragma once

#include "dojo/ir/op.h"
#include "dojo/ir/types.h"
#include "dojo/numerics/convert.h"

namespace dojo::runtime {

/// The vectorised kernel that pools x_shape into y_shape (what its cost depends on: sim/cpu_kernel_time.h):
/// Tiled2x2 for 2x2 windows at stride 2 that tile the plane (no window reaches padding) on a CPU with AVX-512 (two
/// rows read 32 values at a time), Windows for any other windows of a plain layout (row by row, edge windows one by
/// one), BlockedWindows in the channel-blocked layout (16 channels a pixel).
enum class MaxPoolKernel { Tiled2x2, Windows, BlockedWindows };
MaxPoolKernel max_pool_kernel(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                              bool channel_blocked);

/// y [N, C, OH, OW] = max-pool of x [N, C, H, W] under `attrs`; y_shape is what ir::MaxPool2d's shape rule gives.
void max_pool(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape, const float* x,
              float* y);

/// dx [N, C, H, W]: each window's dy (of y_shape) added at its first maximum in x, zero elsewhere.
void max_pool_backward(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                       const float* x, const float* dy, float* dx);

/// max_pool with x and y stored channel-blocked (runtime/channel_blocked.h; the shapes are the logical NCHW ones and
/// C is a multiple of kChannelBlock): the same values at the blocked places.
void max_pool_channel_blocked(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                              const float* x, float* y);

/// max_pool_backward with x, dy and dx all stored channel-blocked. `isa` forces the portable or the AVX-512 code
/// (tests, benchmarks); UsageError where this CPU lacks it.
void max_pool_backward_channel_blocked(const ir::PoolAttrs& attrs, const ir::Shape& x_shape,
                                       const ir::Shape& y_shape, const float* x, const float* dy, float* dx,
                                       numerics::Isa isa = numerics::Isa::Auto);

}  // namespace dojo::runtime
