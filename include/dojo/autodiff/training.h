/** \file
 * The training graph: forward + loss + backward + optimizer update as one graph, so a whole step is one compiled
 * unit. The optimizer math follows PyTorch's torch.optim.SGD (dampening 0, no Nesterov) and torch.optim.AdamW, so
 * a run can be compared with PyTorch step for step.
 *
 *   SGD:   d = g + wd * p;   buf = momentum * buf + d   (buf starts at 0, so the first buf is d);   p -= lr * buf
 *          (momentum 0: p -= lr * d, and no buffer exists)
 *   AdamW: p *= 1 - lr * wd;   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;
 *          p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),   bc1 = 1 - b1^t, bc2 = 1 - b2^t, t = 1, 2, ...
 * Per-step scalars (the learning rate and AdamW's bias corrections) are graph inputs, so schedules live on the
 * host and the graph never changes between steps. Optimizer moments are State leaves, zero at the start.
 */
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::autodiff {

struct SgdConfig {
    double momentum = 0.9;
    double weight_decay = 0.0;
};

struct AdamWConfig {
    double beta1 = 0.9;
    double beta2 = 0.999;
    double epsilon = 1e-8;
    double weight_decay = 0.01;
};

using OptimizerConfig = std::variant<SgdConfig, AdamWConfig>;

/// After a step, `target` (a Parameter or State leaf) takes the value of node `value`.
struct Assignment {
    ir::NodeId target;
    ir::NodeId value;
};

struct TrainingGraph {
    ir::Graph graph;
    ir::NodeId loss;                      ///< also the graph's first output
    std::vector<ir::NodeId> gradients;    ///< one per graph.parameters(), same order
    std::vector<Assignment> updates;      ///< every parameter and optimizer state, in parameter order, then the
                                          ///< forward graph's own state updates
    ir::NodeId learning_rate;             ///< scalar Input, fed every step
    ir::NodeId bias_correction1;          ///< AdamW: scalar Input 1 - beta1^t; invalid for SGD
    ir::NodeId bias_correction2;          ///< AdamW: scalar Input 1 - beta2^t; invalid for SGD
    OptimizerConfig optimizer;
};

/// Extends `forward` (which must contain `loss`, a one-element F32 node) with the backward pass over every
/// parameter and the optimizer update. `state_updates` (nodes of `forward`, e.g. BatchNorm running statistics) are
/// appended to the updates as given. Throws UsageError for invalid hyperparameters (negative momentum or weight
/// decay, betas outside [0, 1), epsilon <= 0) and GraphError for a non-scalar loss.
TrainingGraph build_training_graph(ir::Graph forward, ir::NodeId loss, const OptimizerConfig& optimizer,
                                   std::span<const Assignment> state_updates = {});

/// The optimizer named `name` ("sgd" or "adamw") with its default hyperparameters, as the simulator's commands take
/// it; UsageError naming the choices otherwise.
OptimizerConfig optimizer_named(const std::string& name);

/// 1 - beta^step, for AdamW's bias-correction inputs (step counts from 1).
double bias_correction(double beta, std::int64_t step);

}  // namespace dojo::autodiff
