// FP8 operand copies: cuBLASLt's FP8 products on Hopper take one layout only, "TN": both operands with the
// contraction axis contiguous (the cuBLAS documentation's cublasLtMatmul FP8 requirements). A framework keeps a value
// as the row-major tensor its producer wrote, so every FP8 operand laid out otherwise is copied, transposed, before
// the product reads it (Transformer Engine's cast-transpose kernels): a Linear layer's weight for the forward product
// (once per step: the FP8 weights are cached across micro-batches), its input and its output gradient for the weight
// gradient. A device says so with fp8_operands = "k_major" (Device::fp8_operands_k_major). A part of the stage
// timing in its own file. Private to src/sim.
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

// Per node: the bytes the transposed copies of a product's FP8 operands move, per micro-batch (1 byte read and 1
// written per element per device; a copy of a value computed from parameters alone counted once per step, spread
// over the micro-batches). `fp8` marks the products that run in FP8. All zeros unless the device needs K-major FP8
// operands.
std::vector<double> fp8_operand_copy_bytes(const compiler::Plan& plan, const Device& device,
                                           const std::vector<bool>& fp8);

}  // namespace dojo::sim
