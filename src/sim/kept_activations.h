// Kept activations: which forward values a device holds from a micro-batch's forward task to its backward task when
// the framework's row-wise kernels keep their inputs (Device::keeps_kernel_inputs). Megatron-LM's fused bias+GeLU,
// apex's and Transformer Engine's LayerNorm and the fused scale-mask-softmax read their inputs again in the backward
// kernel and recompute what lies between (Korthikanti et al. 2022, arXiv 2205.05198, sec. 4.1 counts a LayerNorm's
// input and a GeLU's input, not their intermediates). A part of the memory fit (memory_fit.h) in its own file.
// Private to src/sim.
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::sim {

// Per node: kept from its forward task to its backward task. `base` (per node) is what the step keeps otherwise
// (Plan::saved, or selective recomputation's checkpoints). A row-wise chain is a connected set of forward row passes
// (row_kernels.h's row-wise passes, and roundings to the compute format) of a micro-batch: a LayerNorm with the
// residual additions around it, a bias+GeLU, a scaled, masked softmax. Of a chain's values in `base`, one that
// nothing outside the chain reads but the backward pass's row passes is not kept; the chain's inputs from outside it
// (computed values, not parameters or the step's inputs) are kept instead. A value a product or any other forward
// kernel outside the chain reads stays kept. What this keeps for a LayerNorm is the product output that enters the
// residual addition before it rather than the sum itself: the same bytes, one value of the stream's width each.
std::vector<bool> kept_by_row_kernels(const compiler::Plan& plan, const std::vector<bool>& base);

// Per node: its value is computed from parameters and constants alone, not from the step's inputs, so every
// micro-batch computes the same one (a weight's rounding to the compute format): a device keeps one copy for all
// the micro-batches in flight.
std::vector<bool> same_for_every_micro_batch(const compiler::Plan& plan);

}  // namespace dojo::sim
