/** \file
 * MaxPool2d's window rule (ir::PoolAttrs), for fast kernels that must agree with the reference bit for bit.
 */
#pragma once

#include <cstdint>

#include "dojo/ir/op.h"
#include "dojo/ir/types.h"

namespace dojo::ir {

/// Index into one (n, c) plane `plane` of x (shape `x_shape`, NCHW) of the first maximum in (row, column) order of
/// output (oh, ow)'s window under `attrs`: padding never wins, a NaN wins at once; -1 when the window is all padding.
/// The reference kernels of MaxPool2d and MaxPool2dBackward are built on this rule.
std::int64_t max_pool_first_maximum(const PoolAttrs& attrs, const Shape& x_shape, const float* plane, std::int64_t oh,
                                    std::int64_t ow);

}  // namespace dojo::ir
