/** \file
 * Reverse-mode differentiation of a graph, written with the op table's gradient rules: the backward pass is added
 * to the same graph as ordinary nodes, so a whole training step is one graph (one compiled unit, as on Dojo).
 *
 * Preconditions: `loss` is a scalar (rank 0, or one element) F32 node; `wrt` are nodes of the same graph.
 * Only nodes on a path from some `wrt` to `loss` are differentiated. Gradients reaching a node from several
 * consumers are summed in the order the consumers appear in the graph (deterministic).
 */
#pragma once

#include <span>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::autodiff {

/// Adds d(loss)/d(w) for each w in `wrt` to `graph` and returns their ids, one per w, each of w's type. A w the
/// loss does not depend on gets a zero-filled gradient. Throws GraphError if `loss` is not a single element.
std::vector<ir::NodeId> gradients(ir::Graph& graph, ir::NodeId loss, std::span<const ir::NodeId> wrt);

}  // namespace dojo::autodiff
