/** \file
 * The embedded scheduler's policy: which queued jobs start now, given what runs. A pure function, so the same code
 * can schedule real jobs (runner.h) and, later, replay a cluster trace.
 *
 * Order: priority class (high, normal, low); within a class, the tenant with the least recent use first (fair share:
 * slot-seconds with each second's weight halving every half-life, as Slurm's PriorityDecayHalfLife decays usage),
 * then the tenant holding the fewest slots (updated as jobs are picked), then submission order. A job starts only with all of its slots free
 * (gang) and within its tenant's max_slots. A job that cannot start blocks every job of a lower class (so a waiting
 * high-priority job is not starved by a stream of low ones) but not smaller jobs of its own class (backfill).
 *
 * Preemption (jobs_to_preempt): when the first job of the highest waiting class cannot start for want of free slots,
 * running jobs of lower classes are stopped to make room (checkpoint-and-requeue: a train job resumes from its last
 * checkpoint), the lowest class first and, within it, the most recently started first, and only as many as the room
 * needs; none if even all of them would not make room.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/service/job_spec.h"

namespace dojo::service {

struct QueuedJob {
    std::int64_t id = 0;
    std::string tenant;
    Priority priority = Priority::Normal;
    int slots = 1;
    double submitted = 0;
    double expected_s = 0;  ///< its expected run time (Policy::ShortestFirst; a trace's, in replay)
};

/// How jobs_to_start orders the queue. Priority is the service's (above); the others are the classic policies a
/// cluster replay compares it with: first come first served without passing (Fifo), fair share alone (FairShare),
/// shortest expected run time first (ShortestFirst); these ignore priority classes and, with backfill, let any job
/// that fits start.
enum class Policy : std::uint8_t { Priority, Fifo, FairShare, ShortestFirst };

struct RunningShare {
    std::string tenant;
    int slots = 1;
    std::int64_t id = 0;
    Priority priority = Priority::Normal;
    double started = 0;
};

/// Each tenant's recent use, decayed slot-seconds (see above): what the fair share orders by.
using RecentUse = std::map<std::string, double>;

/// A tenant's slots held over [start, end] (end: now, for a job still running).
struct UseInterval {
    std::string tenant;
    int slots = 1;
    double start = 0, end = 0;
};

/// The recent use at `now` of the intervals: each slot-second at time t weighs 2^-((now - t) / half_life_s).
RecentUse recent_use(const std::vector<UseInterval>& intervals, double now, double half_life_s);

/// Moves `use` from time `from` to `to` with `running` held all along: decays it and adds what they use meanwhile
/// (the same figures as recent_use over the intervals, kept up to date at each decision).
void advance_use(RecentUse& use, const std::vector<RunningShare>& running, double from, double to, double half_life_s);

/// The ids of the jobs of `queued` to start now, in the order to start them. `max_slots`: per tenant (missing: no
/// limit beyond the machine's); `use`: each tenant's recent use (missing: none).
std::vector<std::int64_t> jobs_to_start(std::vector<QueuedJob> queued, const std::vector<RunningShare>& running,
                                        int total_slots, const std::map<std::string, int>& max_slots,
                                        Policy policy = Policy::Priority, const RecentUse& use = {});

/// The running jobs to stop so that the waiting job the scheduler would start first can start (see above); empty
/// when nothing waits, it fits already, or no set of lower-priority jobs makes room.
std::vector<std::int64_t> jobs_to_preempt(const std::vector<QueuedJob>& queued,
                                          const std::vector<RunningShare>& running, int total_slots,
                                          const std::map<std::string, int>& max_slots, const RecentUse& use = {});

}  // namespace dojo::service
