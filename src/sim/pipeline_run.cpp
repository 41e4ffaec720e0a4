// The pipeline schedule on the activity engine (pipeline_run.h).
#include "pipeline_run.h"

#include <algorithm>
#include <map>

#include "core_layout_time.h"
#include "dojo/compiler/schedule.h"
#include "stage_times.h"

namespace dojo::sim {

PipelineRun run_pipeline(const compiler::Strategy& st, const std::vector<StageTime>& stages,
                         const std::function<double(int from, int to)>& send_s) {
    const auto P = static_cast<std::size_t>(st.pp);
    const auto VP = static_cast<std::size_t>(st.virtual_stages);
    const auto M = static_cast<std::size_t>(st.micro_batches);
    const std::size_t K = P * VP;
    const std::vector<std::vector<compiler::PipelineTask>> order = compiler::pipeline_schedule(st);
    PipelineRun run;
    run.chunk = 1.0 / static_cast<double>(VP);
    ActivityEngine engine;
    // Tasks first, each device's in its schedule's order (resources 0 .. P-1 are the devices).
    std::vector<std::vector<std::size_t>> forward_task(K, std::vector<std::size_t>(M));
    run.backward_task = forward_task;
    for (std::size_t s = 0; s < P; ++s) {
        for (const compiler::PipelineTask& task : order[s]) {
            const auto k = static_cast<std::size_t>(task.chunk);
            const auto i = static_cast<std::size_t>(task.micro);
            const double seconds = run.task_s(stages[s], task.backward);
            (task.backward ? run.backward_task : forward_task)[k][i] = engine.add(s, seconds);
            run.activities.push_back({false, s, i, task.backward, {}, {}, 0, seconds});
        }
    }
    // Then the sends, each link's in its receiver's order (a link has one receiver), and the dependencies: a forward
    // task after its forward input's send; a backward task after its own forward task and its gradient's send.
    const int last_device = static_cast<int>(P) - 1;
    std::map<std::pair<int, int>, std::size_t> link_resource;
    auto add_send = [&](std::size_t from, std::size_t to, std::size_t producer, std::size_t micro) {
        const auto a = static_cast<int>(from % P), b = static_cast<int>(to % P);
        const bool wrap = std::max(from, to) % P == 0;  // the last device's chunk and the next chunk's first
        const std::pair<int, int> timed = !wrap       ? std::pair{a, b}
                                          : to > from ? std::pair{last_device - 1, last_device}
                                                      : std::pair{last_device, last_device - 1};
        const auto [it, added] = link_resource.emplace(std::pair{a, b}, P + link_resource.size());
        const double seconds = send_s(timed.first, timed.second);
        const std::size_t send = engine.add(it->second, seconds);
        engine.depend(send, producer);
        run.activities.push_back({true, static_cast<std::size_t>(b), micro, to < from, {a, b}, timed, producer, seconds});
        return send;
    };
    for (std::size_t s = 0; s < P; ++s) {
        for (const compiler::PipelineTask& task : order[s]) {
            const auto k = static_cast<std::size_t>(task.chunk);
            const auto i = static_cast<std::size_t>(task.micro);
            if (!task.backward) {
                if (k > 0) {
                    engine.depend(forward_task[k][i], add_send(k - 1, k, forward_task[k - 1][i], i));
                }
            } else {
                engine.depend(run.backward_task[k][i], forward_task[k][i]);
                if (k + 1 < K) {
                    engine.depend(run.backward_task[k][i], add_send(k + 1, k, run.backward_task[k + 1][i], i));
                }
            }
        }
    }
    run.timing = engine.run();
    return run;
}

}  // namespace dojo::sim

namespace dojo::sim {
namespace {

void record_task_ops(const StageTime& stage, std::size_t s, bool backward, double start,
                     const std::vector<CoreSpan>& core_spans, bool on_rectangles, const std::vector<OpSpan>& ops,
                     std::vector<TimelineEvent>& timeline) {
    for (const CoreSpan& span : core_spans) {
        if (span.forward != backward) {
            timeline.push_back({span.name, "cores", static_cast<int>(s), false, start + span.offset_s, span.seconds,
                                0, span.track});
        }
    }
    if (on_rectangles) {  // the ops' times on all cores are not this task's timeline: the rectangles' are
        return;
    }
    double comm_total = 0;  // the task's share of tensor-parallel time, spread over the ops that cause it
    for (const OpSpan& op : ops) {
        comm_total += op.forward != backward ? op.comm_s : 0.0;
    }
    const double comm_scale = comm_total > 0 ? stage.tensor_comm_s / 2 / comm_total : 0.0;
    double at = start;
    for (const OpSpan& op : ops) {
        if (op.forward == backward) {
            continue;
        }
        if (op.seconds > 0) {
            timeline.push_back({op.name, "op", static_cast<int>(s), false, at, op.seconds, 0, {}});
            at += op.seconds;
        }
        if (op.comm_s > 0) {
            timeline.push_back({"tensor-parallel all-reduce", "tensor-parallel", static_cast<int>(s), false, at,
                                op.comm_s * comm_scale, 0, {}});
            at += op.comm_s * comm_scale;
        }
    }
}

}  // namespace

void record_pipeline(const PipelineRun& run, const std::vector<StageTime>& stages,
                     const std::vector<std::vector<CoreSpan>>& core_spans, const std::vector<bool>& on_rectangles,
                     const std::vector<std::vector<OpSpan>>& op_spans,
                     const std::map<std::pair<int, int>, double>& sends, std::vector<TimelineEvent>& timeline) {
    const std::size_t M = run.backward_task.empty() ? 0 : run.backward_task[0].size();
    const bool one_chunk = run.chunk == 1.0;
    for (std::size_t k = 0; k < run.activities.size(); ++k) {
        const PipelineActivity& a = run.activities[k];
        const ActivityTiming& t = run.timing[k];
        if (a.send) {
            const auto sent = sends.find(a.timed);
            timeline.push_back({"send " + std::to_string(a.link.first) + "->" + std::to_string(a.link.second) + " (" +
                                    std::to_string(a.micro) + ")",
                                "send", a.link.first, true, t.start_s, a.duration_s,
                                sent == sends.end() ? 0.0 : sent->second, {}});
            continue;
        }
        const StageTime& stage = stages[a.stage];
        timeline.push_back({std::string(a.backward ? "backward " : "forward ") + std::to_string(a.micro),
                            a.backward ? "backward" : "forward", static_cast<int>(a.stage), false, t.start_s,
                            a.duration_s, 0, {}});
        if (one_chunk && (a.micro == 0 || a.micro + 1 == M)) {  // a chunk runs part of the stage's ops: no detail
            record_task_ops(stage, a.stage, a.backward, t.start_s, core_spans[a.stage], on_rectangles[a.stage],
                            op_spans[a.stage], timeline);
        }
    }
}

}  // namespace dojo::sim
