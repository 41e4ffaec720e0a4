/** \file
 * The Plan's invariants, checked between compile passes (plan.h: CompileOptions::verify): each pass's output is
 * checked once that pass has run, so a broken invariant is reported by the pass that broke it.
 *
 *   layouts    a layout per node, split axes within the node's rank, tp as the strategy's
 *   liveness   the loss and every gradient and update live; a live node's inputs live
 *   stages     every live computed node on a stage in [0, pp), the rest on none; a forward node reads no value
 *              computed on a later stage
 *   transfers  each transfer leaves its value's stage for another, once per (value, stage); every cross-stage read
 *              of a value not computed locally has one
 *   fusion     groups of live nodes in graph order, on one stage and one rhythm, no node in two groups
 *   recompute  with strategy.recompute, per-node and per-stage tables of the graph's and the pipeline's sizes
 *   buckets    a list per stage; every live gradient in exactly one bucket, on its parameter's stage
 */
#pragma once

#include <string_view>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

/// Checks the invariants of the passes up to and including `after_pass` (a name of compile_passes()). Throws
/// InternalError naming the pass and what is wrong; a Plan that passes is one the simulator and runtime may trust.
void verify_plan(const Plan& plan, std::string_view after_pass);

}  // namespace dojo::compiler
