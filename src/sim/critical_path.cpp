// The critical path's walk (critical_path.h).
#include "critical_path.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report_text.h"

namespace dojo::sim {
namespace {

// What makes a stage's compute long: its costliest op kind's share.
std::string costliest_op(const std::map<std::string, OpClassTime>& by_op) {
    const OpClassTime* top = nullptr;
    double total = 0;
    for (const auto& [name, cls] : by_op) {
        total += cls.seconds;
        top = (top == nullptr || cls.seconds > top->seconds) ? &cls : top;
    }
    if (top == nullptr) {
        return {};
    }
    return fmt_percent(top->seconds / total) + " of its compute is " + top->op +
           (top->memory_bound > 0
                ? " (memory-bound in " + std::to_string(top->memory_bound) + " of " + std::to_string(top->nodes) +
                      " nodes)"
                : "");
}

}  // namespace

std::vector<CriticalItem> walk_critical_path(const compiler::Plan& plan, const Device& device,
                                             const SimResult& r, const PipelineRun& run,
                                             const StepCollectives& collectives,
                                             const std::vector<std::map<std::string, OpClassTime>>& by_op) {
    const compiler::Strategy& st = plan.strategy;
    std::map<std::string, CriticalItem> items;
    auto add = [&](const std::string& what, double seconds, const std::string& why) {
        if (seconds > 0) {
            CriticalItem& item = items[what];
            item.what = what;
            item.seconds += seconds;
            item.why = why;
        }
    };
    const auto cs = static_cast<std::size_t>(r.critical_stage);
    const StageTime& critical = r.stages[cs];
    add("stage " + std::to_string(cs) + " optimizer", critical.optimizer_s,
        "the update runs once per step, after the gradients are reduced");
    add("stage " + std::to_string(cs) + " gradient all-reduce, not hidden", critical.grad_allreduce_exposed_s,
        "its last buckets finish after the backward pass: " + std::to_string(plan.gradient_buckets[cs].size()) +
            " buckets over " + std::to_string(st.dp) + " replicas");
    add("stage " + std::to_string(cs) + " parameter all-gather", critical.param_allgather_exposed_s,
        "zero=1: after the sharded update, each replica gathers the other " + std::to_string(st.dp - 1) +
            " shares of the parameters" +
            (device.parameter_gather_overlapped ? " (the part the next forward pass does not hide)" : ""));
    const std::size_t M = static_cast<std::size_t>(st.micro_batches);
    for (std::size_t k = run.backward_task[cs][M - 1]; k != ActivityTiming::kNoCause;) {
        const PipelineActivity& task = run.activities[k];
        const StageTime& stage = r.stages[task.stage];
        const std::string name = "stage " + std::to_string(task.stage);
        add(name + (task.backward ? " backward compute" : " forward compute"),
            (task.backward ? stage.backward_s - stage.recompute_s : stage.forward_s) * run.chunk,
            costliest_op(by_op[task.stage]));
        if (task.backward && stage.recompute_s > 0) {
            const int segments = plan.recomputation.segments[task.stage];
            add(name + " recomputation", stage.recompute_s * run.chunk,
                st.selective ? std::string("recompute=selective: the backward task runs its attention cores again "
                                           "(Q K^T, softmax, attention over V)")
                             : "recompute=1: the backward task runs the forward pass again, segment by segment from " +
                                   std::to_string(segments) + (segments == 1 ? " checkpoint set" : " checkpoint sets"));
        }
        add(name + " tensor-parallel all-reduces", stage.tensor_comm_s / 2 * run.chunk,
            "Megatron-style all-reduces over tp=" + std::to_string(st.tp) + " wait on the compute");
        k = run.timing[k].cause;
        if (k != ActivityTiming::kNoCause && run.activities[k].send) {  // the cause's output crossed a link
            const PipelineActivity& send = run.activities[k];
            const ActivityTiming& sent = run.timing[k];
            const std::string link =
                "pipeline send " + std::to_string(send.link.first) + "->" + std::to_string(send.link.second);
            const auto bytes = collectives.sends().find(send.timed);  // none: the stages pass nothing but the schedule
            add(link, sent.end_s - sent.start_s,
                bytes_text(bytes == collectives.sends().end() ? 0.0 : bytes->second) +
                    (task.backward ? " of gradients" : " of activations") +
                    " per micro-batch cross the link between the stages");
            k = send.producer;
            add(link + ", waiting for the link", sent.start_s - run.timing[k].end_s,
                "an earlier micro-batch still holds the link");
        }
    }
    double on_path = 0;
    for (const auto& [what, item] : items) {
        on_path += item.seconds;
    }
    // Where a bucket shares the cores with the backward pass, the last backward task ran longer than alone.
    add("stage " + std::to_string(cs) + " backward, slowed by the all-reduce on its cores",
        device.collectives_share_cores ? r.step_s - on_path : 0.0,
        "the communication thread takes 1 of " + std::to_string(device.parallel_units + 1) +
            " shares of the cores while a bucket is reduced");
    std::vector<CriticalItem> path;
    for (auto& [what, item] : items) {
        item.share = item.seconds / r.step_s;
        path.push_back(item);
    }
    std::stable_sort(path.begin(), path.end(),
                     [](const CriticalItem& a, const CriticalItem& b) { return a.seconds > b.seconds; });
    return path;
}

}  // namespace dojo::sim
