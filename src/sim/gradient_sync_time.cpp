// The gradient buckets' all-reduces and the update (gradient_sync_time.h).
#include "gradient_sync_time.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace dojo::sim {
namespace {

// When a gradient `computed` seconds into its stage's backward pass is final on device `s`. With one chunk per
// device: that far into the device's last backward task. Interleaved (vp chunks), the device's chunks hold its
// layers in order, each a vp-th of them, and the backward pass meets the last layers first: a gradient is final
// when the last backward task of its chunk reaches it, and the schedule runs the later chunks' last micro-batch
// well before the first chunk's.
double gradient_ready_s(const PipelineRun& run, const StageTime& stage, std::size_t s, std::size_t P, std::size_t M,
                        double computed) {
    const auto VP = static_cast<std::size_t>(std::lround(1.0 / run.chunk));
    const double f = stage.backward_s > 0 ? std::clamp(computed / stage.backward_s, 0.0, 1.0) : 1.0;
    const double from_last = f * static_cast<double>(VP);  // chunks of the backward pass already behind it
    const std::size_t back = std::min(VP - 1, static_cast<std::size_t>(from_last));
    const std::size_t chunk = s + (VP - 1 - back) * P;
    const ActivityTiming& task = run.timing[run.backward_task[chunk][M - 1]];
    return task.start_s + (from_last - static_cast<double>(back)) * (task.end_s - task.start_s);
}

// What of the updated parameters' gather (zero=1, `gather_s` in all, the last bucket `first_bucket_s`, which the
// first layers need first) the next step's forward pass does not hide when the gather overlaps it: the device's
// chunks start their forward passes in order, chunk j after j x pp chunk forwards of the warm-up, and each needs
// its own share of the parameters.
double gather_exposed_s(double gather_s, double first_bucket_s, double forward_s, std::size_t P, double chunk) {
    const auto VP = static_cast<std::size_t>(std::lround(1.0 / chunk));
    double exposed = first_bucket_s;
    for (std::size_t j = 0; j < VP; ++j) {
        const double gathered = static_cast<double>(j + 1) * gather_s * chunk;
        const double computed = static_cast<double>(j * P + 1) * forward_s * chunk;
        exposed = std::max(exposed, gathered - computed);
    }
    return std::min(exposed, gather_s);
}

}  // namespace

void time_gradient_sync(const compiler::Plan& plan, const Device& device, const StepCollectives& collectives,
                        const PipelineRun& run, const std::vector<double>& backward_done,
                        std::vector<StageTime>& stages, std::vector<TimelineEvent>* timeline) {
    const compiler::Strategy& st = plan.strategy;
    const std::size_t M = static_cast<std::size_t>(st.micro_batches);
    // Where collectives run on the cores that compute (an MPI rank's communication thread), a bucket reduced while
    // the backward pass still runs shares the cores with it: the rank's c compute threads and the communication
    // thread each get c / (c + 1) of a core, so both slow down by that much until one of them is done.
    const double share = device.collectives_share_cores ? static_cast<double>(device.parallel_units) /
                                                               static_cast<double>(device.parallel_units + 1)
                                                         : 1.0;
    for (std::size_t s = 0; s < stages.size(); ++s) {
        StageTime& stage = stages[s];
        std::vector<double> bucket_seconds = collectives.bucket_seconds(s);  // empty: one replica, or no parameters
        // ZeRO stage 1: each bucket is reduce-scattered (the first half of a ring all-reduce's steps), and after the
        // sharded update the parameters are all-gathered (the second half), with nothing left to hide it behind.
        if (st.zero) {
            for (double& seconds : bucket_seconds) {
                seconds /= 2;
                stage.param_allgather_s += seconds;
            }
        }
        // The device's last backward task (chunk s, the last micro-batch). Interleaved, its other chunks' gradients
        // were final earlier (gradient_ready_s).
        const ActivityTiming& last = run.timing[run.backward_task[s][M - 1]];
        double last_end = last.end_s;
        const double last_start = run.chunk == 1.0
                                      ? last.start_s
                                      : std::max(0.0, last_end - stage.backward_s - stage.tensor_comm_s / 2);
        double delay = 0;  // how much sharing the cores has set the backward pass back so far
        double network_free = run.chunk == 1.0 ? last_start : 0.0;
        for (std::size_t b = 0; b < bucket_seconds.size(); ++b) {
            double computed = 0;
            for (const std::size_t k : plan.gradient_buckets[s][b].gradients) {
                computed = std::max(computed, backward_done[plan.step.gradients[k].index]);
            }
            const double ready = run.chunk == 1.0 ? last_start + computed + delay
                                                  : gradient_ready_s(run, stage, s, stages.size(), M, computed) + delay;
            const double start = std::max(network_free, std::min(ready, last_end));
            const double alone = bucket_seconds[b];
            double wall = alone;
            const double compute_left = last_end - start;
            if (share < 1.0 && compute_left > 0) {
                if (alone <= compute_left) {  // the bucket finishes first; the backward pass lost alone x (1/share - 1)
                    wall = alone / share;
                    last_end += wall - alone;
                    delay += wall - alone;
                } else {  // the backward pass finishes first, then the bucket runs alone
                    wall = compute_left / share + (alone - compute_left);
                    delay += compute_left / share - compute_left;
                    last_end = start + compute_left / share;
                }
            }
            network_free = start + wall;
            stage.grad_allreduce_s += wall;
            if (timeline != nullptr) {
                timeline->push_back({"gradient bucket " + std::to_string(b), "gradient all-reduce",
                                     static_cast<int>(s), true, start, wall, collectives.bucket_bytes()[s][b], {}});
            }
        }
        stage.grad_allreduce_exposed_s = std::max(0.0, network_free - last_end);
        stage.param_allgather_exposed_s = stage.param_allgather_s;
        if (device.parameter_gather_overlapped && st.zero && !bucket_seconds.empty()) {
            // The next step's forward pass starts on the first layers' bucket (the last one the backward pass
            // reduced) and computes while the others arrive.
            stage.param_allgather_exposed_s = gather_exposed_s(stage.param_allgather_s, bucket_seconds.back(),
                                                               stage.forward_s, stages.size(), run.chunk);
        }
        stage.finish_s = std::max(network_free, last_end) + stage.optimizer_s + stage.param_allgather_exposed_s;
        if (timeline != nullptr && stage.optimizer_s > 0) {
            timeline->push_back({"optimizer", "optimizer", static_cast<int>(s), false,
                                 stage.finish_s - stage.param_allgather_exposed_s - stage.optimizer_s,
                                 stage.optimizer_s, 0,
                                 {}});
        }
        if (timeline != nullptr && stage.param_allgather_s > 0) {
            double bytes = 0;
            for (const double b : collectives.bucket_bytes()[s]) {
                bytes += b;
            }
            timeline->push_back({"parameter all-gather", "gradient all-reduce", static_cast<int>(s), true,
                                 stage.finish_s - stage.param_allgather_exposed_s, stage.param_allgather_s, bytes,
                                 {}});
        }
        stage.busy_s = static_cast<double>(st.micro_batches) * (stage.forward_s + stage.backward_s + stage.tensor_comm_s) +
                       stage.optimizer_s;
    }
}

}  // namespace dojo::sim
