// The pipeline schedule (compiler/schedule.h) as activities of the activity engine (activity_engine.h): each
// (chunk, micro-batch, forward/backward) task on its device's compute stream, each value crossing between chunks as
// a send on the link between their devices. A part of simulate() in its own file. Private to src/sim.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/activity_engine.h"
#include "dojo/sim/simulate.h"

namespace dojo::sim {

struct PipelineActivity {
    bool send = false;              // a send on a link, else a task on a device
    std::size_t stage = 0;          // a task's device
    std::size_t micro = 0;
    bool backward = false;
    std::pair<int, int> link;       // a send's devices
    std::pair<int, int> timed;      // the stage pair whose send it is timed as
    std::size_t producer = 0;       // a send's: the task whose output it carries
    double duration_s = 0;
};

struct PipelineRun {
    std::vector<PipelineActivity> activities;  // as the engine's
    std::vector<ActivityTiming> timing;
    std::vector<std::vector<std::size_t>> backward_task;  // [chunk][micro]: the activity
    double chunk = 1;                                     // of a stage's work, per task (1 / vp)
    // A task's duration: its share of the stage's compute and tensor-parallel all-reduces.
    double task_s(const StageTime& stage, bool backward) const {
        return ((backward ? stage.backward_s : stage.forward_s) + stage.tensor_comm_s / 2) * chunk;
    }
};

// Runs `strategy`'s schedule with `stages`' task times and `send_s(from, to)` per hop. A chunk boundary from the
// last device back to the first is timed as the boundary into the last device (the same bytes on the same kind of
// link).
PipelineRun run_pipeline(const compiler::Strategy& strategy, const std::vector<StageTime>& stages,
                         const std::function<double(int from, int to)>& send_s);

}  // namespace dojo::sim

namespace dojo::sim {

struct CoreSpan;
struct OpSpan;

// Appends the run's tasks and sends to `timeline`, and inside the first and last micro-batch's tasks (vp = 1) their
// ops: the core rectangles' spans where the stage's layers run side by side on a mesh, else the ops in order with
// their tensor-parallel all-reduces. `sends`: bytes per (from, to) stage pair, per micro-batch.
void record_pipeline(const PipelineRun& run, const std::vector<StageTime>& stages,
                     const std::vector<std::vector<CoreSpan>>& core_spans, const std::vector<bool>& on_rectangles,
                     const std::vector<std::vector<OpSpan>>& op_spans,
                     const std::map<std::pair<int, int>, double>& sends, std::vector<TimelineEvent>& timeline);

}  // namespace dojo::sim
