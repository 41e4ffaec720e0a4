/** \file
 * Activation recomputation (gradient checkpointing, Chen et al. 2016, arXiv 1604.06174), chosen per pipeline stage
 * when a Strategy asks for it (`recompute=full`, or `recompute=1`).
 *
 * Without it, every forward value the backward pass reads (Plan::saved) stays in memory from its forward task to
 * its backward task, for every micro-batch in flight. With it, a stage's forward nodes are cut into K segments;
 * only the checkpoints stay: the values a segment reads from an earlier segment or another stage. The backward task
 * runs each segment's forward again, last segment first, and holds that segment's saved values only while it
 * differentiates it. A stage then holds
 *     checkpoints x micro-batches in flight + the largest segment's saved values (one micro-batch),
 * and computes its forward pass twice per micro-batch. K is chosen per stage to make that least, among powers of
 * two up to the stage's forward node count (segments cut at equal shares of the saved bytes). A stage where no K
 * holds less than keeping everything (a last stage, with one micro-batch in flight, often) is not recomputed:
 * its segments count is 0.
 *
 * Selective recomputation (`recompute=selective`; Megatron-LM's, Korthikanti et al. 2022, arXiv 2205.05198): only
 * the attention cores are recomputed (attention_cores.h): the nodes from a Q K^T product through the score's
 * scaling, mask and softmax to the MatMul that applies the probabilities to V. Their S x S values, which grow with
 * the sequence, are not kept; everything else saved is, with the cores' inputs (checkpoints). A stage then holds its
 * kept values x micro-batches in flight + its largest core's values, and runs its cores' forward nodes twice per
 * micro-batch. recomputed marks the cores' nodes; segments is 1 for a stage with cores, 0 without.
 *
 * Bytes are per device (TensorParallel::bytes_per_device) in the graph's F32; the simulator scales them to the
 * precision's width (sim/simulate.h). Preconditions: lay_out has set plan.live, stage, saved and tensor.
 */
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

/// Fills plan.recomputation from plan.strategy (empty when recompute is off).
void plan_recomputation(Plan& plan);

}  // namespace dojo::compiler
