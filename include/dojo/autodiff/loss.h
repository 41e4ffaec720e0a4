/** \file
 * Loss functions built from primitives: each returns a scalar F32 node, the mean over the batch (axis 0).
 */
#pragma once

#include "dojo/ir/graph.h"

namespace dojo::autodiff {

/// Mean over the batch of -sum_c target[n, c] * log_softmax(logits)[n, c]. logits and target: [N, C]; target holds
/// class probabilities (one-hot labels, or smoothed ones). Numerically stable (log_softmax shifts by the max).
ir::NodeId softmax_cross_entropy(ir::Graph& g, ir::NodeId logits, ir::NodeId target);

/// Mean over all elements of (prediction - target)^2. Shapes must match.
ir::NodeId mean_squared_error(ir::Graph& g, ir::NodeId prediction, ir::NodeId target);

}  // namespace dojo::autodiff
