/** \file
 * Network layers as compositions of IR primitives, shared by the ONNX importer and the catalog so that a layer is
 * lowered one way wherever it comes from: BatchNorm (training and inference forms), LayerNorm, GELU, softmax.
 * Building computes nothing.
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/frontend/onnx.h"
#include "dojo/ir/graph.h"

namespace dojo::frontend {

/// BatchNorm over axis 1 of x [N, C, ...] with per-channel scale, bias, running_mean and running_var (shape [C]).
/// Training (`training`): normalise with the batch's mean and biased variance, and append to `updates` the running
/// statistics' next values, PyTorch's way: running = running * momentum + batch * (1 - momentum) (ONNX's momentum
/// convention, the kept fraction), the variance unbiased (count / (count - 1)). Inference: normalise with the
/// running statistics. Preconditions: count = numel / C >= 2 in training (callers validate).
ir::NodeId batch_norm(ir::Graph& g, ir::NodeId x, ir::NodeId scale, ir::NodeId bias, ir::NodeId running_mean,
                      ir::NodeId running_var, double epsilon, double momentum, bool training,
                      std::vector<StateUpdate>& updates, const std::string& name);

/// LayerNorm of x over axes [axis, rank), times `scale`, plus `bias` when valid (both broadcast over the leading
/// axes).
ir::NodeId layer_norm(ir::Graph& g, ir::NodeId x, ir::NodeId scale, ir::NodeId bias, int axis, double epsilon,
                      const std::string& name);

/// GELU, erf form: x * (1 + erf(x / sqrt 2)) / 2.
ir::NodeId gelu(ir::Graph& g, ir::NodeId x);

/// Softmax along `axis`: exp(log_softmax(x)).
ir::NodeId softmax(ir::Graph& g, ir::NodeId x, int axis);

}  // namespace dojo::frontend
