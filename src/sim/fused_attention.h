// Fused attention: where a GPU stack runs each attention core as one kernel forward and one backward (Device::
// attention_fused; FlashAttention, Dao et al. 2022, arXiv 2205.14135, and cuDNN's fused attention behind Transformer
// Engine's DotProductAttention), a core's S x S scores and probabilities never reach the device's memory. The forward
// kernel streams K and V through on-chip tiles and writes the output and one statistic per row (the log-sum-exp);
// the backward kernel computes the scores and probabilities again from Q, K and that statistic, and the gradients of
// Q, K and V from them, again tile by tile. A part of the stage timing and the memory fit in its own file. Private
// to src/sim.
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

struct FusedAttention {
    // Per node: an S x S value that stays on chip. Forward: an attention core's values before its product with V
    // (compiler/attention_cores.h). Backward: the probabilities' and the scores' gradients, values of a core's score
    // shape computed from these (the softmax's backward, a transpose of the probabilities), and the product of the
    // output's gradient with V^T, which starts them.
    std::vector<bool> score;
    // Per node: in a forward attention core (the product with V included).
    std::vector<bool> in_core;
    // Per node: the bytes its kernel does not move because its scores stay on chip (at a fused group's last member,
    // where time_stage_ops charges the group), in the units op_time and group_time count: a score value's write by
    // its producer and its reads by other kernels, the backward's reads of the forward's probabilities included.
    std::vector<double> bytes_on_chip;
    // Per stage: the log-sum-exp statistics a device keeps per micro-batch, one value per score row, graph F32 bytes.
    std::vector<double> statistic_bytes;
};

// All false and zero (statistic_bytes sized per stage) unless the device says attention = "fused".
FusedAttention fused_attention(const compiler::Plan& plan, const Device& device);

}  // namespace dojo::sim
