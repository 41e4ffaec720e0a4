// The data-parallel gradient all-reduce during the last backward task, bucket by bucket, and the optimizer update
// after it: a part of simulate() in its own file. Private to src/sim.
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/simulate.h"
#include "pipeline_run.h"
#include "step_collectives.h"

namespace dojo::sim {

// Per stage: the buckets' all-reduces one after another on the network, each as soon as the last backward task of
// its chunk has computed its last gradient (`backward_done`, per node: the stage's backward compute up to it; with
// vp = 1 the device's one chunk); with ZeRO each is a reduce-scatter and the parameters are all-gathered after the
// update, or while the next step's forward pass runs (Device::parameter_gather_overlapped). Where collectives share the cores that
// compute (Device::collectives_share_cores), a bucket reduced while the backward pass runs slows both. Sets each
// stage's grad_allreduce_s, grad_allreduce_exposed_s, param_allgather_s, finish_s and busy_s; appends the buckets,
// the update and the all-gather to `timeline` when it is not null.
void time_gradient_sync(const compiler::Plan& plan, const Device& device, const StepCollectives& collectives,
                        const PipelineRun& run, const std::vector<double>& backward_done,
                        std::vector<StageTime>& stages, std::vector<TimelineEvent>* timeline);

}  // namespace dojo::sim
