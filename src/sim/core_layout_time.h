// Timing a stage placed on a chip's cores (compiler/place_spatial.h): a part of simulate() in its own file. Private to
// src/sim.
#pragma once

#include <string>
#include <vector>

#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/sim/simulate.h"

namespace dojo::sim {

// One interval of a placed stage's work on a rectangle of its chip's cores, per micro-batch, for the trace.
struct CoreSpan {
    std::string track;  // "cores (x,y) w x h" or "all N cores (layers in turn)"
    std::string name;
    bool forward = true;
    double offset_s = 0;  // from its forward or backward task's start
    double seconds = 0;
};

// A placed stage's compute on its chip's cores (compiler/place_spatial.h), from its ops' times on all cores
// (node_s: per micro-batch, per step for the update), written into `stage`:
//   in turn       the ops as timed, plus re-spreading each layer's output over the mesh for the next layer and its
//                 gradient back, half of it across the mesh's bisection each way (the pass's own estimate);
//   side by side  each rectangle runs its layers' ops with its share of the cores (time x working cores / its
//                 cores); the micro-batch's pieces stream through the rectangles as through a pipeline paced by the
//                 slowest, with one piece of fill per further rectangle; the update runs on every rectangle at once.
// Ops the pass placed on no layer run on all cores after the rest. Returns the spans of one micro-batch.
std::vector<CoreSpan> time_core_layout(const compiler::StagePlacement& sp, const compiler::CoreMesh& mesh,
                                       const compiler::Plan& plan, const std::vector<double>& node_s,
                                       StageTime& stage);

}  // namespace dojo::sim
