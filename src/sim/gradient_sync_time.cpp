// The gradient buckets' all-reduces and the update (gradient_sync_time.h).
#include "gradient_sync_time.h"

#include <algorithm>
#include <string>

namespace dojo::sim {

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
        // were computed earlier: the buckets are timed as if the whole stage's backward ended with it.
        const ActivityTiming& last = run.timing[run.backward_task[s][M - 1]];
        double last_end = last.end_s;
        const double last_start = run.chunk == 1.0
                                      ? last.start_s
                                      : std::max(0.0, last_end - stage.backward_s - stage.tensor_comm_s / 2);
        double delay = 0;  // how much sharing the cores has set the backward pass back so far
        double network_free = last_start;
        for (std::size_t b = 0; b < bucket_seconds.size(); ++b) {
            double computed = 0;
            for (const std::size_t k : plan.gradient_buckets[s][b].gradients) {
                computed = std::max(computed, backward_done[plan.step.gradients[k].index]);
            }
            const double start = std::max(network_free, std::min(last_start + computed + delay, last_end));
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
            // reduced) and computes while the others arrive: what the gather takes beyond that pass still waits.
            stage.param_allgather_exposed_s =
                std::max(bucket_seconds.back(), stage.param_allgather_s - stage.forward_s);
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
