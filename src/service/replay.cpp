// Cluster replay (replay.h).
#include "dojo/service/replay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <queue>

#include "dojo/util/error.h"

namespace dojo::service {
namespace {

struct Running {
    std::size_t job = 0;
    double started = 0;
    double end = 0;
};

struct State {
    std::vector<double> left_s;       // [job]: run time still to do
    std::vector<double> first_start;  // [job]: -1 until it first starts
    std::vector<double> end;          // [job]: -1 until it ends
    std::vector<std::size_t> queue;   // waiting jobs
    std::map<std::size_t, Running> running;
    int busy = 0;
    RecentUse use;  // the users' recent use, as of the last event (the fair share's order)
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0.0;
    }
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size() - 1), std::floor(p * static_cast<double>(v.size() - 1) + 0.5)))];
}

std::vector<QueuedJob> queued_jobs(const std::vector<TraceJob>& jobs, const State& s) {
    std::vector<QueuedJob> q;
    for (const std::size_t k : s.queue) {
        q.push_back({static_cast<std::int64_t>(k), jobs[k].user, jobs[k].priority, jobs[k].devices, jobs[k].submit_s,
                     s.left_s[k]});
    }
    return q;
}

std::vector<RunningShare> shares(const std::vector<TraceJob>& jobs, const State& s) {
    std::vector<RunningShare> r;
    for (const auto& [k, run] : s.running) {
        r.push_back({jobs[k].user, jobs[k].devices, static_cast<std::int64_t>(k), jobs[k].priority, run.started});
    }
    return r;
}

// Decides at time `t`: preemptions (Policy::Priority), then starts.
void decide(const std::vector<TraceJob>& jobs, const ReplayOptions& o, double t, State& s, ReplayResult& r) {
    if (o.policy == Policy::Priority) {
        for (const std::int64_t id : jobs_to_preempt(queued_jobs(jobs, s), shares(jobs, s), o.slots, {}, s.use)) {
            const auto k = static_cast<std::size_t>(id);
            const double ran = t - s.running.at(k).started;
            const double kept = std::floor(ran / o.checkpoint_interval_s) * o.checkpoint_interval_s;
            s.left_s[k] -= kept;
            r.lost_device_s += (ran - kept) * jobs[k].devices;
            s.busy -= jobs[k].devices;
            s.running.erase(k);
            s.queue.push_back(k);
            ++r.preemptions;
        }
    }
    for (const std::int64_t id : jobs_to_start(queued_jobs(jobs, s), shares(jobs, s), o.slots, {}, o.policy, s.use)) {
        const auto k = static_cast<std::size_t>(id);
        s.queue.erase(std::find(s.queue.begin(), s.queue.end(), k));
        s.running[k] = Running{k, t, t + s.left_s[k]};
        s.busy += jobs[k].devices;
        if (s.first_start[k] < 0) {
            s.first_start[k] = t;
        }
    }
}

}  // namespace

ReplayResult replay(const std::vector<TraceJob>& jobs, const ReplayOptions& o) {
    if (o.slots < 1 || !(o.checkpoint_interval_s > 0) || !(o.half_life_s > 0)) {
        throw UsageError("a replay needs a machine of at least one device, a checkpoint interval > 0 and a fair-share "
                         "half-life > 0");
    }
    ReplayResult r;
    State s;
    s.left_s.resize(jobs.size());
    s.first_start.assign(jobs.size(), -1);
    s.end.assign(jobs.size(), -1);
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        s.left_s[k] = jobs[k].duration_s;
    }
    std::size_t next = 0;
    double t = 0, busy_integral = 0, last_t = 0, steady_integral = 0;
    const double last_arrival = jobs.empty() ? 0.0 : jobs.back().submit_s;
    double steady_from = -1;  // the first time a job had to wait
    while (next < jobs.size() || !s.running.empty() || !s.queue.empty()) {
        double next_end = 1e300;
        for (const auto& [k, run] : s.running) {
            next_end = std::min(next_end, run.end);
        }
        const double next_arrival = next < jobs.size() ? jobs[next].submit_s : 1e300;
        if (next_end >= 1e300 && next_arrival >= 1e300) {
            break;  // jobs left waiting that can never start (none: too-large jobs never queue)
        }
        t = std::min(next_end, next_arrival);
        advance_use(s.use, shares(jobs, s), last_t, t, o.half_life_s);
        busy_integral += static_cast<double>(s.busy) * (t - last_t);
        if (steady_from >= 0) {
            steady_integral += static_cast<double>(s.busy) * std::max(0.0, std::min(t, last_arrival) - last_t);
        }
        last_t = t;
        for (auto it = s.running.begin(); it != s.running.end();) {
            if (it->second.end <= t) {
                s.end[it->first] = t;
                s.busy -= jobs[it->first].devices;
                it = s.running.erase(it);
            } else {
                ++it;
            }
        }
        for (; next < jobs.size() && jobs[next].submit_s <= t; ++next) {
            if (jobs[next].devices > o.slots) {
                ++r.too_large;
            } else {
                s.queue.push_back(next);
            }
        }
        decide(jobs, o, t, s, r);
        if (steady_from < 0 && !s.queue.empty()) {
            steady_from = t;
        }
        r.samples.push_back({t, s.busy, static_cast<int>(s.queue.size())});
    }
    r.span_s = t;
    r.utilization_with_drain = t > 0 ? busy_integral / (t * o.slots) : 0.0;
    r.steady_from_s = steady_from;
    r.steady_to_s = last_arrival;
    r.utilization = steady_from >= 0 && last_arrival > steady_from
                        ? steady_integral / ((last_arrival - steady_from) * o.slots)
                        : r.utilization_with_drain;  // never saturated: the whole replay
    r.idle_fraction = 1.0 - r.utilization;
    std::map<Priority, std::pair<std::vector<double>, std::vector<double>>> by_class;
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        if (s.end[k] >= 0) {
            by_class[jobs[k].priority].first.push_back(s.first_start[k] - jobs[k].submit_s);
            by_class[jobs[k].priority].second.push_back(s.end[k] - jobs[k].submit_s);
        }
    }
    for (const auto& [priority, times] : by_class) {
        ClassStats& c = r.classes[priority];
        c.jobs = static_cast<int>(times.first.size());
        c.wait_p50_s = percentile(times.first, 0.5);
        c.wait_p99_s = percentile(times.first, 0.99);
        c.completion_p50_s = percentile(times.second, 0.5);
        c.completion_p99_s = percentile(times.second, 0.99);
    }
    return r;
}

Policy parse_policy(const std::string& text) {
    if (text == "priority") return Policy::Priority;
    if (text == "fifo") return Policy::Fifo;
    if (text == "fairshare") return Policy::FairShare;
    if (text == "shortest-first") return Policy::ShortestFirst;
    throw UsageError("policy '" + text + "' is not fifo, priority, fairshare or shortest-first");
}

std::string to_string(Policy policy) {
    switch (policy) {
    case Policy::Priority: return "priority";
    case Policy::Fifo: return "fifo";
    case Policy::FairShare: return "fairshare";
    case Policy::ShortestFirst: return "shortest-first";
    }
    return "?";
}

std::string replay_svg(const ReplayResult& r, int slots, const std::string& title) {
    constexpr double kWidth = 800, kHeight = 300, kLeft = 60, kRight = 100, kTop = 30, kBottom = 40;
    const double span = std::max(r.span_s, 1.0);
    int most_queued = 1;
    for (const ReplaySample& s : r.samples) {
        most_queued = std::max(most_queued, s.queued);
    }
    const auto x = [&](double t) { return kLeft + t / span * (kWidth - kLeft - kRight); };
    const auto y_busy = [&](double busy) { return kHeight - kBottom - busy / slots * (kHeight - kTop - kBottom); };
    const auto y_queue = [&](double q) { return kHeight - kBottom - q / most_queued * (kHeight - kTop - kBottom); };
    // At most about 1500 steps (a plot of tens of thousands of events is megabytes): the last sample of each of
    // 1500 equal spans of time stands for it.
    std::vector<ReplaySample> shown;
    for (const ReplaySample& s : r.samples) {
        const auto bucket = [&](double t) { return static_cast<long>(t / span * 1500); };
        if (!shown.empty() && bucket(shown.back().t) == bucket(s.t)) {
            shown.back() = s;
        } else {
            shown.push_back(s);
        }
    }
    std::string busy_path, queue_path;
    char point[64];
    double last_busy = 0, last_queue = 0;
    for (const ReplaySample& s : shown) {  // steps: a value holds until the next event
        std::snprintf(point, sizeof point, "%.1f,%.1f %.1f,%.1f ", x(s.t), y_busy(last_busy), x(s.t), y_busy(s.busy));
        busy_path += point;
        std::snprintf(point, sizeof point, "%.1f,%.1f %.1f,%.1f ", x(s.t), y_queue(last_queue), x(s.t), y_queue(s.queued));
        queue_path += point;
        last_busy = s.busy;
        last_queue = s.queued;
    }
    char text[2048];
    std::snprintf(text, sizeof text,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                  "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                  "<text x=\"%.0f\" y=\"18\" font-size=\"14\">%s: utilization %.1f%%, idle %.2f%%</text>\n"
                  "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\"/>\n"
                  "<text x=\"8\" y=\"%.0f\" fill=\"#1a62b0\">%d</text><text x=\"8\" y=\"%.0f\" fill=\"#1a62b0\">busy</text>\n"
                  "<text x=\"%.0f\" y=\"%.0f\" fill=\"#b06a1a\">%d queued</text>\n"
                  "<text x=\"%.0f\" y=\"%.0f\">0</text><text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.1f days</text>\n",
                  kWidth, kHeight, kLeft, title.c_str(), 100 * r.utilization, 100 * r.idle_fraction, kLeft,
                  kHeight - kBottom, kWidth - kRight, kHeight - kBottom, kTop + 4, slots, kTop + 18,
                  kWidth - kRight + 4, kTop + 4, most_queued, kLeft, kHeight - kBottom + 16, kWidth - kRight,
                  kHeight - kBottom + 16, span / 86400);
    return std::string(text) + "<polyline fill=\"none\" stroke=\"#b06a1a\" stroke-width=\"1\" points=\"" + queue_path +
           "\"/>\n<polyline fill=\"none\" stroke=\"#1a62b0\" stroke-width=\"1.5\" points=\"" + busy_path + "\"/>\n</svg>\n";
}

}  // namespace dojo::service
