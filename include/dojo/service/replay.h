/** \file
 * Cluster replay: a job trace (trace.h) run through the scheduler's policy (scheduler.h, the same functions the
 * service runs) on a machine of `slots` devices, event by event in simulated time, each job holding its devices for
 * its trace duration. With Policy::Priority a waiting job preempts lower classes (jobs_to_preempt): a preempted job
 * loses the work since its last checkpoint (every `checkpoint_interval_s` of its run) and waits to run the rest.
 * Jobs larger than the machine never run and are counted apart.
 *
 * Reported: utilization (device-seconds held over device-seconds available) and its complement, the idle fraction,
 * over the steady state (from the first time a job has to wait, the machine being full, to the last submission:
 * while work keeps waiting, as on a busy shared cluster; not the hours of filling an empty machine at the start) and
 * over the whole replay (first submission to last completion, filling and the queue's drain included); per priority class the jobs, and percentiles of queueing delay
 * (first start - submission) and completion time (end - submission); preemptions and the work they lost; samples of
 * busy devices and queued jobs over time for the plot (replay_svg).
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/service/scheduler.h"
#include "dojo/service/trace.h"

namespace dojo::service {

struct ReplayOptions {
    int slots = 1;
    Policy policy = Policy::Priority;
    double checkpoint_interval_s = 1800;
    double half_life_s = 24 * 3600.0;  ///< of the users' recent use (the fair share: scheduler.h)
};

struct ClassStats {
    int jobs = 0;
    double wait_p50_s = 0, wait_p99_s = 0;
    double completion_p50_s = 0, completion_p99_s = 0;
};

struct ReplaySample {
    double t = 0;
    int busy = 0;     ///< devices held
    int queued = 0;   ///< jobs waiting
};

struct ReplayResult {
    double utilization = 0;                   ///< steady state: first wait to last submission
    double idle_fraction = 0;                 ///< 1 - utilization
    double utilization_with_drain = 0;        ///< first submission to last completion
    double steady_from_s = 0, steady_to_s = 0;  ///< the steady state's window
    double span_s = 0;                        ///< first submission to last completion
    std::map<Priority, ClassStats> classes;
    int preemptions = 0;
    double lost_device_s = 0;                 ///< work preemptions threw away (since the last checkpoint)
    int too_large = 0;                        ///< jobs wider than the machine, never run
    std::vector<ReplaySample> samples;        ///< at every event, for the plot
};

/// Replays `jobs` (in submission order). UsageError for slots < 1 or a checkpoint interval <= 0.
ReplayResult replay(const std::vector<TraceJob>& jobs, const ReplayOptions& options);

/// An SVG plot of the replay: busy devices (of `slots`) and queued jobs over time.
std::string replay_svg(const ReplayResult& result, int slots, const std::string& title);

Policy parse_policy(const std::string& text);  ///< fifo, priority, fairshare, shortest-first; UsageError otherwise
std::string to_string(Policy policy);

}  // namespace dojo::service
