/** \file
 * Loss functions built from primitives: each returns a scalar F32 node, the mean over the batch (axis 0).
 */
#pragma once

#include "dojo/ir/graph.h"

namespace dojo::autodiff {

/// Mean over the batch of -sum_c target[n, c] * log_softmax(logits)[n, c]. logits and target: [N, C]; target holds
/// class probabilities (one-hot labels, or smoothed ones). Numerically stable (log_softmax shifts by the max).
ir::NodeId softmax_cross_entropy(ir::Graph& g, ir::NodeId logits, ir::NodeId target);

/// softmax_cross_entropy with class ids [N] (I64, whole numbers in [0, C)) for targets, as one-hot rows: the loss of a
/// language model, one label per token.
ir::NodeId sparse_softmax_cross_entropy(ir::Graph& g, ir::NodeId logits, ir::NodeId ids);

/// Adds the target input and the cross-entropy loss a model trains with: one-hot probabilities [N, C] ("target", F32)
/// when `token_labels` is false, class ids [N] ("target", I64) when it is true.
struct CrossEntropy {
    ir::NodeId target;
    ir::NodeId loss;
};
CrossEntropy add_cross_entropy(ir::Graph& g, ir::NodeId logits, bool token_labels);

/// Mean over all elements of the binary cross-entropy of sigmoid(logits) against target (0 or 1, or a probability):
/// softplus(x) - x * t, stable for any x, with the gradient sigmoid(x) - t everywhere. Shapes must match. Occupancy grids train with it.
ir::NodeId sigmoid_binary_cross_entropy(ir::Graph& g, ir::NodeId logits, ir::NodeId target);

/// Mean over all elements of (prediction - target)^2. Shapes must match.
ir::NodeId mean_squared_error(ir::Graph& g, ir::NodeId prediction, ir::NodeId target);

}  // namespace dojo::autodiff
