/** \file
 * Builder functions: one per primitive, each adding a node to a graph and returning its id. They only record
 * (nothing is computed); the op's shape rule validates the inputs and throws GraphError naming the node.
 *
 *   Graph g;
 *   NodeId x = g.add_input("x", {DType::F32, {64, 784}});             // x: [B, 784]
 *   NodeId w = g.add_parameter("fc1.weight", {DType::F32, {784, 256}});
 *   NodeId h = relu(g, matmul(g, x, w, "fc1"));                        // h: [B, 256]
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::ir {

/// A tensor of `type` whose elements are all `value`.
NodeId fill(Graph& g, double value, TensorType type, std::string name = "");
/// An F32 scalar constant (broadcasts against anything).
NodeId scalar(Graph& g, double value);
/// A constant F32 tensor holding `values` (row-major, shape.numel() of them).
NodeId constant(Graph& g, Shape shape, std::vector<float> values, std::string name = "");

NodeId neg(Graph& g, NodeId x, std::string name = "");
NodeId exp(Graph& g, NodeId x, std::string name = "");
NodeId log(Graph& g, NodeId x, std::string name = "");
NodeId sqrt(Graph& g, NodeId x, std::string name = "");
NodeId tanh(Graph& g, NodeId x, std::string name = "");
NodeId sigmoid(Graph& g, NodeId x, std::string name = "");
NodeId relu(Graph& g, NodeId x, std::string name = "");
NodeId step(Graph& g, NodeId x, std::string name = "");
NodeId erf(Graph& g, NodeId x, std::string name = "");

NodeId add(Graph& g, NodeId a, NodeId b, std::string name = "");
NodeId sub(Graph& g, NodeId a, NodeId b, std::string name = "");
NodeId mul(Graph& g, NodeId a, NodeId b, std::string name = "");
NodeId div(Graph& g, NodeId a, NodeId b, std::string name = "");
NodeId maximum(Graph& g, NodeId a, NodeId b, std::string name = "");
/// cond != 0 ? a : b, all three broadcasting.
NodeId select(Graph& g, NodeId cond, NodeId a, NodeId b, std::string name = "");

/// [..., m, k] x [..., k, n] -> [..., m, n]
NodeId matmul(Graph& g, NodeId a, NodeId b, std::string name = "");

/// Sum over `axes` (negative allowed; empty = all).
NodeId reduce_sum(Graph& g, NodeId x, std::vector<int> axes, bool keep_dims = false, std::string name = "");
NodeId reshape(Graph& g, NodeId x, Shape shape, std::string name = "");
NodeId transpose(Graph& g, NodeId x, std::vector<int> perm, std::string name = "");
NodeId broadcast_to(Graph& g, NodeId x, Shape shape, std::string name = "");
NodeId log_softmax(Graph& g, NodeId x, int axis, std::string name = "");
/// A strided box of x (SliceAttrs).
NodeId slice(Graph& g, NodeId x, SliceAttrs attrs, std::string name = "");
/// Elements [start, start + size * step) step `step` of axis `axis`, every element of the other axes.
NodeId slice_axis(Graph& g, NodeId x, int axis, std::int64_t start, std::int64_t size, std::int64_t step = 1,
                  std::string name = "");
/// Rows `ids` of `table` (an embedding lookup): [V, D...] and [N...] -> [N..., D...].
NodeId gather(Graph& g, NodeId table, NodeId ids, std::string name = "");
/// [N...] ids -> [N..., depth]: 1 at each id (a whole number in [0, depth)), 0 elsewhere.
NodeId one_hot(Graph& g, NodeId ids, std::int64_t depth, std::string name = "");
/// `parts` joined along `axis` (their other dimensions equal): each part placed into zeros (SliceBackward), summed.
NodeId concat(Graph& g, const std::vector<NodeId>& parts, int axis, std::string name = "");
/// Mean over `axes` (ReduceSum scaled by 1 / the number of elements reduced).
NodeId reduce_mean(Graph& g, NodeId x, std::vector<int> axes, bool keep_dims = false, std::string name = "");

/// x [N, C, H, W] convolved with w [K, C/groups, R, S].
NodeId conv2d(Graph& g, NodeId x, NodeId w, Conv2dAttrs attrs = {}, std::string name = "");
/// Max pooling of x [N, C, H, W].
NodeId max_pool2d(Graph& g, NodeId x, PoolAttrs attrs = {}, std::string name = "");

/// x rounded onto attrs.format's grid (straight-through gradient); `step` is the F32 scalar step-number input.
NodeId round_to(Graph& g, NodeId x, NodeId step, RoundAttrs attrs, std::string name = "");
/// Identity whose gradient is rounded onto attrs.format's grid.
NodeId round_grad(Graph& g, NodeId x, NodeId step, RoundAttrs attrs, std::string name = "");
/// Dropout in training (DropoutAttrs): x times the step's mask, scaled by 1 / (1 - ratio).
NodeId dropout(Graph& g, NodeId x, NodeId step, DropoutAttrs attrs, std::string name = "");

/// Swaps the last two axes (rank >= 2).
NodeId transpose_last_two(Graph& g, NodeId x);
/// Sums `x` down to `shape`, the adjoint of broadcasting `shape` up to x's shape: reduces the leading axes x has
/// in excess and every axis where `shape` is 1. Returns x itself when the shapes already agree. `shape` is taken
/// by value: callers pass shapes read from the graph, which adding nodes may move.
NodeId sum_to_shape(Graph& g, NodeId x, Shape shape);

}  // namespace dojo::ir
