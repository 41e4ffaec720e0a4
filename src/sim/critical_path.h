// The step's critical path, grouped by item: a part of simulate() in its own file. Private to src/sim.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/simulate.h"
#include "pipeline_run.h"
#include "step_collectives.h"

namespace dojo::sim {

// From the step's end (the critical stage's update, after its exposed gradient all-reduce and parameter all-gather)
// back through what each task of the pipeline run waited for (ActivityTiming::cause): the task before it on its
// device, its own forward task, or a neighbour's task whose output crossed a link (the send, and any wait for the
// link). Where buckets shared the cores with the backward pass, the time that sharing added is an item of its own.
// `result`: its stages, critical_stage and step_s; `by_op`: per stage, its op classes (what makes compute long).
// Longest item first.
std::vector<CriticalItem> walk_critical_path(const compiler::Plan& plan, const Device& device,
                                             const SimResult& result, const PipelineRun& run,
                                             const StepCollectives& collectives,
                                             const std::vector<std::map<std::string, OpClassTime>>& by_op);

}  // namespace dojo::sim
