/** \file
 * The IR verifier: run between passes (and by tests) to check the invariants listed in graph.h. A failure is a
 * GraphError naming the first offending node; a pass that produces one has a bug.
 */
#pragma once

#include "dojo/ir/graph.h"

namespace dojo::ir {

/// Throws GraphError if `graph` breaks an invariant of graph.h: an input that is not an earlier node, attributes
/// of the wrong alternative, a stored type that differs from the shape rule's, an output id out of range.
void verify(const Graph& graph);

}  // namespace dojo::ir
