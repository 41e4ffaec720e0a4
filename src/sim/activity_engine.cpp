// The activity engine's timing (activity_engine.h): resources in turn, each running its head activity once its
// dependencies have ended, until all have run.
#include "dojo/sim/activity_engine.h"

#include <algorithm>

#include "dojo/util/error.h"

namespace dojo::sim {

std::size_t ActivityEngine::add(std::size_t resource, double duration_s) {
    activities_.push_back(Activity{resource, duration_s, {}});
    return activities_.size() - 1;
}

void ActivityEngine::depend(std::size_t activity, std::size_t on) { activities_.at(activity).after.push_back(on); }

std::vector<ActivityTiming> ActivityEngine::run() const {
    std::size_t resources = 0;
    for (const Activity& a : activities_) {
        resources = std::max(resources, a.resource + 1);
    }
    std::vector<std::vector<std::size_t>> queue(resources);  // [resource]: its activities in order
    for (std::size_t k = 0; k < activities_.size(); ++k) {
        queue[activities_[k].resource].push_back(k);
    }
    std::vector<ActivityTiming> timing(activities_.size());
    std::vector<bool> done(activities_.size(), false);
    std::vector<std::size_t> next(resources, 0);
    std::vector<std::size_t> previous(resources, ActivityTiming::kNoCause);
    for (std::size_t remaining = activities_.size(); remaining > 0;) {
        bool progressed = false;
        for (std::size_t r = 0; r < resources; ++r) {
            for (; next[r] < queue[r].size(); ++next[r], --remaining, progressed = true) {
                const std::size_t k = queue[r][next[r]];
                const Activity& a = activities_[k];
                if (std::any_of(a.after.begin(), a.after.end(), [&](std::size_t d) { return !done[d]; })) {
                    break;
                }
                ActivityTiming& t = timing[k];
                t.cause = previous[r];
                t.start_s = previous[r] == ActivityTiming::kNoCause ? 0.0 : timing[previous[r]].end_s;
                for (const std::size_t d : a.after) {
                    if (timing[d].end_s > t.start_s) {
                        t.start_s = timing[d].end_s;
                        t.cause = d;
                    }
                }
                t.end_s = t.start_s + a.duration_s;
                done[k] = true;
                previous[r] = k;
            }
        }
        if (!progressed) {
            throw Error("activity engine: the activities wait on each other in a cycle (a bug: please report it)");
        }
    }
    return timing;
}

}  // namespace dojo::sim
