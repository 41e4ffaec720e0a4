/** \file
 * Attention cores: the nodes of a training step's forward pass from a Q K^T product through the score's scaling,
 * mask and softmax to the product that applies the probabilities to V. Selective recomputation recomputes them
 * (recompute.h); a GPU stack with fused attention keeps their S x S values on chip (sim/fused_attention.h).
 *
 * A core starts at a forward MatMul of two activations (both of rank 3 or more: a linear layer's weight has rank 2)
 * whose product is score-shaped, [..., S, S] (Q [.., S, d] x K^T [.., d, S]); it takes every node of the score's
 * shape computed from it, and ends at the MatMul that reads the probabilities (attention over V). Where a head's
 * width d equals the sequence S, other values are score-shaped too, and the rule cannot tell them apart.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

/// [..., S, S]: an attention score's shape (rank 3 or more, the last two dimensions equal).
bool score_shaped(const ir::Shape& shape);

/// Per node: the attention core it belongs to (the index of its Q K^T product), or -1. Only live forward nodes
/// (up to plan.last_forward) belong to a core.
std::vector<std::int64_t> attention_cores(const Plan& plan);

}  // namespace dojo::compiler
