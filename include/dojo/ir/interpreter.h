/** \file
 * The reference interpreter: runs a graph node by node with each op's reference kernel. It is the living
 * definition of what a graph computes; fast kernels and the compiled runtime are checked against it.
 *
 * Non-goals: speed, memory reuse (every node's value is kept), and narrower dtypes (F32 compute only).
 */
#pragma once

#include <map>
#include <vector>

#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::ir {

/// Values for the leaves of a graph: every Input, Parameter and State node, by id.
template <typename T>
using Bindings = std::map<NodeId, Buffer<T>>;

/// Evaluates every node in order (T = float: the F32 reference; T = double: for gradient checks). Returns the value
/// of every node, indexed by NodeId::index. Throws UsageError naming the leaf if a binding is missing or has a
/// shape other than the node's.
template <typename T>
std::vector<Buffer<T>> evaluate(const Graph& graph, const Bindings<T>& bindings);

/// Computes node `id` into values[id.index] (already shaped) from the values of its inputs, with its reference
/// kernel. Leaves are not computed (their values are bound). This is the one step both evaluate() and the runtime's
/// executor take, so they cannot disagree.
template <typename T>
void evaluate_node(const Graph& graph, NodeId id, std::vector<Buffer<T>>& values);

extern template void evaluate_node(const Graph&, NodeId, std::vector<Buffer<float>>&);
extern template void evaluate_node(const Graph&, NodeId, std::vector<Buffer<double>>&);
extern template std::vector<Buffer<float>> evaluate(const Graph&, const Bindings<float>&);
extern template std::vector<Buffer<double>> evaluate(const Graph&, const Bindings<double>&);

}  // namespace dojo::ir
