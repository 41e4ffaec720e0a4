/** \file
 * What runs the service's jobs: the embedded runner on this host's cores (runner.h) or a Slurm cluster (slurm.h).
 * The server (server.h) ticks its engine every 100 ms and asks it to cancel jobs; the engine records every change of
 * a job's state in the store (store.h). Each job has a directory, STATE_DIR/jobs/ID: its result (the command's
 * --json output, `result.json`), its log (stderr, `log.txt`, appended over attempts) and, for train jobs, its
 * checkpoints, from which a job started again resumes.
 */
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dojo::service {

class Engine {
public:
    virtual ~Engine() = default;

    /// Records jobs that ended or changed state and starts (or hands over) queued ones.
    virtual void tick(double now) = 0;
    /// A job was submitted or cancelled: act at the next tick.
    virtual void notify() = 0;
    /// Cancels job `id`: a queued one at once, a running one by stopping it ("cancelling" until it has ended).
    /// Returns its state.
    virtual std::string cancel(std::int64_t id, double now) = 0;
    /// A job's directory.
    virtual std::string job_dir(std::int64_t id) const = 0;

    /// Per slot the engine schedules onto: the job holding it (id and tenant), or id 0 when free.
    struct SlotHolder {
        std::int64_t job = 0;
        std::string tenant;
    };
    virtual std::vector<SlotHolder> slot_holders() = 0;
    /// The fraction of slots held, sampled about once a second, the last 600 samples: (Unix seconds, fraction).
    virtual std::vector<std::pair<double, double>> utilization() = 0;
    /// What runs the jobs, for people: "local" or "slurm".
    virtual std::string name() const = 0;
};

}  // namespace dojo::service
