/** \file
 * The embedded engine (engine.h): real `dojo train` / `dojo sim` processes on this host's slots, started in the order
 * the scheduler picks (scheduler.h), and stopped (SIGTERM) when the scheduler preempts them for a higher-priority
 * job. A job process dies with the server (PR_SET_PDEATHSIG), so a server killed at any moment leaves no job running
 * unseen: on restart the store puts it back in the queue (Store::recover_interrupted) and a train job resumes from
 * its last checkpoint (`--resume`), ending with the weights of an uninterrupted run. A job process killed from
 * outside (SIGKILL: the OOM killer, an operator) is queued again the same way, up to kMaxKills times; server restarts
 * and preemptions are not the job's doing and do not count.
 */
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dojo/service/engine.h"
#include "dojo/service/scheduler.h"
#include "dojo/service/store.h"

namespace dojo::service {

class Runner : public Engine {
public:
    /// `dojo`: the executable jobs run; `total_slots`: the host's slots (cores) jobs may hold; `half_life_s`: of the
    /// tenants' recent use, which the fair share orders by (scheduler.h), taken from the store's history at start.
    Runner(Store& store, std::string state_dir, std::string dojo, int total_slots, double half_life_s);
    /// Stops every running job's process (SIGTERM, then SIGKILL after 5 s) and waits for them.
    ~Runner() override;
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    /// Reaps jobs that ended (recording their state) and starts the queued jobs the scheduler picks: at once when a
    /// job has ended, within a second of a submission or cancellation (notify()), and every 5 s regardless. Deciding
    /// reads the whole queue, so a busy server does not do it on every tick.
    void tick(double now) override;
    /// A job was submitted or cancelled: decide at the next tick.
    void notify() override { changed_.store(true); }
    /// Cancels job `id`: a queued one at once, a running one by stopping its process (SIGTERM; "cancelling" until it
    /// has ended). Returns its state.
    std::string cancel(std::int64_t id, double now) override;
    /// A job's directory.
    std::string job_dir(std::int64_t id) const override;

    /// Per slot of the host: the job holding it (id and tenant), or id 0 when free.
    std::vector<SlotHolder> slot_holders() override;
    /// The fraction of slots held, sampled once a second by tick(), the last 600 samples: (Unix seconds, fraction).
    std::vector<std::pair<double, double>> utilization() override;
    std::string name() const override { return "local"; }

private:
    void start(const Job& job, double now);
    void reap(double now);
    bool requeue_killed(std::int64_t id);

    static constexpr int kMaxKills = 5;  ///< kills of one job's process that queue it again; the next one fails it

    Store& store_;
    std::string state_dir_, dojo_;
    int total_slots_;
    std::mutex mutex_;
    struct Process {
        pid_t pid = -1;
        std::string tenant;
        int slots = 1;
        Priority priority = Priority::Normal;
        double started = 0;
        bool cancelled = false;
        bool preempted = false;  // stopped to make room: it waits to run again
    };
    std::map<std::int64_t, Process> running_;  // by job id
    std::vector<std::pair<double, double>> utilization_;  // (time, fraction of slots held), oldest first
    RecentUse use_;            // the tenants' recent use, as of use_at_
    double use_at_ = 0;
    double half_life_s_;
    std::atomic<bool> changed_{true};
    bool ended_ = false;  // a job ended since the last decision (under mutex_)
    double decided_at_ = -1e300;
};

/// Seconds since the Unix epoch, as the store records times.
double now_seconds();

}  // namespace dojo::service
