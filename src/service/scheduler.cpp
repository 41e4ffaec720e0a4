// The scheduler's policy (scheduler.h).
#include "dojo/service/scheduler.h"

#include <algorithm>
#include <cmath>

namespace dojo::service {

namespace {

double use_of(const RecentUse& use, const std::string& tenant) {
    const auto it = use.find(tenant);
    return it != use.end() ? it->second : 0.0;
}

// Whether `a` comes before `b` under `policy`, with the tenants' recent `use` and the slots `held` as they stand.
bool before(const QueuedJob& a, const QueuedJob& b, Policy policy, const RecentUse& use,
            std::map<std::string, int>& held) {
    switch (policy) {
    case Policy::Priority:
        if (a.priority != b.priority) {
            return a.priority > b.priority;
        }
        [[fallthrough]];
    case Policy::FairShare:
        if (use_of(use, a.tenant) != use_of(use, b.tenant)) {
            return use_of(use, a.tenant) < use_of(use, b.tenant);
        }
        if (held[a.tenant] != held[b.tenant]) {
            return held[a.tenant] < held[b.tenant];
        }
        break;
    case Policy::ShortestFirst:
        if (a.expected_s != b.expected_s) {
            return a.expected_s < b.expected_s;
        }
        break;
    case Policy::Fifo:
        break;
    }
    return a.submitted != b.submitted ? a.submitted < b.submitted : a.id < b.id;
}

// Slot-seconds over [start, end] weighted 2^-((now - t) / half_life): slots * H / ln 2 * (2^-(now - end) / H -
// 2^-(now - start) / H).
double decayed(int slots, double start, double end, double now, double half_life_s) {
    if (!(end > start)) {
        return 0.0;
    }
    const double h = half_life_s;
    return slots * h / std::log(2.0) * (std::exp2(-(now - end) / h) - std::exp2(-(now - start) / h));
}

}  // namespace

RecentUse recent_use(const std::vector<UseInterval>& intervals, double now, double half_life_s) {
    RecentUse use;
    for (const UseInterval& i : intervals) {
        use[i.tenant] += decayed(i.slots, i.start, std::min(i.end, now), now, half_life_s);
    }
    return use;
}

void advance_use(RecentUse& use, const std::vector<RunningShare>& running, double from, double to,
                 double half_life_s) {
    if (!(to > from)) {
        return;
    }
    const double factor = std::exp2(-(to - from) / half_life_s);
    for (auto& [tenant, value] : use) {
        value *= factor;
    }
    for (const RunningShare& r : running) {
        use[r.tenant] += decayed(r.slots, from, to, to, half_life_s);
    }
}

std::vector<std::int64_t> jobs_to_start(std::vector<QueuedJob> queued, const std::vector<RunningShare>& running,
                                        int total_slots, const std::map<std::string, int>& max_slots, Policy policy,
                                        const RecentUse& use) {
    std::map<std::string, int> held;
    int free = total_slots;
    for (const RunningShare& r : running) {
        held[r.tenant] += r.slots;
        free -= r.slots;
    }
    std::vector<std::int64_t> start;
    int blocked_below = -1;  // a class whose waiting job could not start: lower classes wait too
    // In order; a job that cannot start now cannot after a pick either (free slots only shrink), so it leaves the
    // list; a pick changes the shares, so the rest is put in order again.
    for (bool picked = true; picked && !queued.empty();) {
        picked = false;
        std::sort(queued.begin(), queued.end(),
                  [&](const QueuedJob& a, const QueuedJob& b) { return before(a, b, policy, use, held); });
        for (auto it = queued.begin(); it != queued.end();) {
            const QueuedJob& job = *it;
            const auto limit = max_slots.find(job.tenant);
            const bool within_quota = limit == max_slots.end() || held[job.tenant] + job.slots <= limit->second;
            const bool held_back = policy == Policy::Priority && static_cast<int>(job.priority) < blocked_below;
            if (!held_back && within_quota && job.slots <= free) {
                start.push_back(job.id);
                free -= job.slots;
                held[job.tenant] += job.slots;
                queued.erase(it);
                picked = true;
                break;
            }
            if (within_quota && !held_back) {  // waiting for the machine, not for its tenant's quota
                if (policy == Policy::Fifo) {
                    return start;  // first come, first served: nothing passes the head of the queue
                }
                blocked_below = std::max(blocked_below, static_cast<int>(job.priority));
            }
            it = queued.erase(it);
        }
    }
    return start;
}

std::vector<std::int64_t> jobs_to_preempt(const std::vector<QueuedJob>& queued,
                                          const std::vector<RunningShare>& running, int total_slots,
                                          const std::map<std::string, int>& max_slots, const RecentUse& use) {
    std::map<std::string, int> held;
    int free = total_slots;
    for (const RunningShare& r : running) {
        held[r.tenant] += r.slots;
        free -= r.slots;
    }
    // The waiting job that comes first, as jobs_to_start orders the queue, among those within their tenant's quota.
    const QueuedJob* first = nullptr;
    for (const QueuedJob& q : queued) {
        const auto limit = max_slots.find(q.tenant);
        if (limit != max_slots.end() && held[q.tenant] + q.slots > limit->second) {
            continue;  // waiting for its own tenant's jobs, not for the machine
        }
        if (first == nullptr || before(q, *first, Policy::Priority, use, held)) {
            first = &q;
        }
    }
    if (first == nullptr || first->slots <= free) {
        return {};
    }
    std::vector<const RunningShare*> victims;
    for (const RunningShare& r : running) {
        if (r.priority < first->priority) {
            victims.push_back(&r);
        }
    }
    std::sort(victims.begin(), victims.end(), [](const RunningShare* a, const RunningShare* b) {
        return a->priority != b->priority ? a->priority < b->priority : a->started > b->started;
    });
    std::vector<std::int64_t> stop;
    for (const RunningShare* v : victims) {
        if (free >= first->slots) {
            break;
        }
        stop.push_back(v->id);
        free += v->slots;
    }
    return free >= first->slots ? stop : std::vector<std::int64_t>{};
}

}  // namespace dojo::service
