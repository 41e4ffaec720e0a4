/** \file
 * The activity engine: the simulated step as activities, each holding one resource (a device's compute stream, a
 * link) for a duration, after the activities it depends on. A resource runs its activities one at a time in the
 * order they were added, so an activity starts at the later of its resource's previous activity's end and its
 * dependencies' ends: the unique timing of a schedule whose per-resource order is fixed (the pipeline schedule
 * fixes each device's order, compiler/schedule.h; a link carries the sends in the order its receiver needs them).
 *
 * Each timed activity names its cause: the activity whose end it started at (the resource's previous one, else the
 * first dependency in the order given, on a tie the earlier of the two), or none when it started at 0. Following
 * causes back from the last activity walks the critical path.
 */
#pragma once

#include <cstddef>
#include <vector>

namespace dojo::sim {

struct Activity {
    std::size_t resource = 0;                ///< what it holds while it runs
    double duration_s = 0;
    std::vector<std::size_t> after;          ///< activities that must end before it starts
};

struct ActivityTiming {
    double start_s = 0;
    double end_s = 0;
    static constexpr std::size_t kNoCause = static_cast<std::size_t>(-1);
    std::size_t cause = kNoCause;            ///< the activity whose end it started at; kNoCause: it started at 0
};

class ActivityEngine {
public:
    /// Adds an activity (its dependencies may be added later: depend()); returns its index.
    std::size_t add(std::size_t resource, double duration_s);
    /// `activity` starts after `on` ends.
    void depend(std::size_t activity, std::size_t on);
    const Activity& activity(std::size_t index) const { return activities_[index]; }
    std::size_t size() const { return activities_.size(); }

    /// Times every activity (indexed as added). dojo::Error if the dependencies and the resources' orders form a
    /// cycle (an activity waits, directly or not, on one its resource runs after it).
    std::vector<ActivityTiming> run() const;

private:
    std::vector<Activity> activities_;
};

}  // namespace dojo::sim
