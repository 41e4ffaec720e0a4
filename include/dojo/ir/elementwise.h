/** \file
 * The elementwise primitives' scalar functions, applied to runs of elements. The op table's reference kernels
 * (src/ir/ops/elementwise.cpp) and the runtime's fused elementwise kernels (runtime/fused_elementwise.h) both go
 * through apply_elementwise, so a fused chain computes exactly what the same ops computed one at a time.
 */
#pragma once

#include <cstdint>

#include "dojo/ir/op.h"

namespace dojo::ir {

/// Whether `op` is a unary (Neg, Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Step, Erf) or binary (Add, Sub, Mul, Div,
/// Maximum) elementwise map, the ops apply_elementwise takes.
bool is_elementwise_map(OpKind op);

/// y[j] = F(a[j * a_stride], b[j * b_stride]) for j in [0, n), with F the op's scalar function (b is ignored by
/// unary ops). Strides are 0 (a broadcast value) or 1 (a contiguous run). Precondition: is_elementwise_map(op).
void apply_elementwise(OpKind op, const float* a, std::int64_t a_stride, const float* b, std::int64_t b_stride,
                       float* y, std::int64_t n);

}  // namespace dojo::ir
