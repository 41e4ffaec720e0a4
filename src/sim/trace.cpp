// The Chrome / Perfetto trace of a simulated step (trace.h).
#include "dojo/sim/trace.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace dojo::sim {
namespace {

using json = nlohmann::json;

constexpr double kMicroseconds = 1e6;  // trace-event timestamps are in microseconds

// "tray 0 / tile 3": the zones above a device, outermost first, without the whole machine.
std::string zone_name(const Topology& t, std::int64_t device) {
    std::string name;
    for (std::size_t l = t.levels.size(); l-- > 0;) {
        const Level& level = t.levels[l];
        if (level.devices >= t.device.count || level.devices <= 1) {
            continue;  // the machine itself, or a level of one device
        }
        name += (name.empty() ? "" : " / ") + level.kind + " " + std::to_string(device / level.devices);
    }
    return name.empty() ? t.device.kind : name;
}

}  // namespace

void write_chrome_trace(const SimResult& r, const Topology& t, std::ostream& out) {
    json events = json::array();
    auto metadata = [&](const char* what, int pid, std::int64_t tid, const std::string& name) {
        json e{{"ph", "M"}, {"name", what}, {"pid", pid}, {"args", {{"name", name}}}};
        if (tid >= 0) {
            e["tid"] = tid;
        }
        events.push_back(std::move(e));
    };
    metadata("process_name", 0, -1, r.machine + " (whole step)");
    metadata("thread_name", 0, 0, "step");
    events.push_back({{"ph", "X"}, {"name", "step " + r.strategy.to_string()}, {"cat", "step"}, {"pid", 0},
                      {"tid", 0}, {"ts", 0.0}, {"dur", r.step_s * kMicroseconds},
                      {"args", {{"samples_per_s", r.samples_per_s}, {"utilization", r.utilization}}}});

    // One process per zone that holds a stage's device, two threads per device.
    const std::int64_t identical = static_cast<std::int64_t>(r.strategy.dp) * r.strategy.tp;
    std::map<std::string, int> pids;
    std::vector<int> stage_pid;
    for (std::size_t s = 0; s < r.stage_devices.size(); ++s) {
        const std::int64_t device = r.stage_devices[s];
        const std::string zone = zone_name(t, device);
        const auto [it, added] = pids.emplace(zone, static_cast<int>(pids.size()) + 1);
        if (added) {
            metadata("process_name", it->second, -1, zone);
            events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", it->second},
                              {"args", {{"sort_index", it->second}}}});
        }
        stage_pid.push_back(it->second);
        const std::string who = t.device.kind + " #" + std::to_string(device);
        const std::string stands = "stage " + std::to_string(s) + (identical > 1 ? ", stands for " +
                                                                                        std::to_string(identical) +
                                                                                        " identical devices"
                                                                                  : "");
        metadata("thread_name", it->second, 2 * device, who + " compute (" + stands + ")");
        metadata("thread_name", it->second, 2 * device + 1, who + " communication");
    }

    // Core rectangles (a mesh's zoom level below the chip): a thread each, after every device's two.
    std::int64_t next_tid = 0;
    for (const std::int64_t device : r.stage_devices) {
        next_tid = std::max(next_tid, 2 * device + 2);
    }
    std::map<std::pair<int, std::string>, std::int64_t> core_tids;  // (stage, rectangle) -> thread
    auto core_tid = [&](std::size_t s, const std::string& cores) {
        const auto [it, added] = core_tids.emplace(std::pair{static_cast<int>(s), cores}, next_tid);
        if (added) {
            metadata("thread_name", stage_pid[s], next_tid,
                     t.device.kind + " #" + std::to_string(r.stage_devices[s]) + " " + cores);
            ++next_tid;
        }
        return it->second;
    };

    // Slices, and the network counters' changes: (time, stage, stream, +1 or -1).
    std::vector<std::tuple<double, int, std::string, int>> changes;
    std::vector<std::tuple<double, int, double>> rates;  // (time, stage, change in GB/s)
    for (const TimelineEvent& e : r.timeline) {
        const auto s = static_cast<std::size_t>(e.stage);
        const std::int64_t tid =
            e.cores.empty() ? 2 * r.stage_devices[s] + (e.communication ? 1 : 0) : core_tid(s, e.cores);
        json slice{{"ph", "X"}, {"name", e.name}, {"cat", e.category}, {"pid", stage_pid[s]}, {"tid", tid},
                   {"ts", e.start_s * kMicroseconds}, {"dur", e.duration_s * kMicroseconds}};
        if (e.bytes > 0) {
            slice["args"] = {{"bytes", e.bytes}, {"bytes_per_s", e.bytes / std::max(e.duration_s, 1e-15)}};
        }
        events.push_back(std::move(slice));
        if (e.communication) {
            const std::string stream = e.category == "send" ? "pipeline sends" : "gradient all-reduce";
            changes.emplace_back(e.start_s, e.stage, stream, +1);
            changes.emplace_back(e.start_s + e.duration_s, e.stage, stream, -1);
            if (e.bytes > 0 && e.duration_s > 0) {  // what the device's links carry, GB/s
                rates.emplace_back(e.start_s, e.stage, e.bytes / e.duration_s / 1e9);
                rates.emplace_back(e.start_s + e.duration_s, e.stage, -e.bytes / e.duration_s / 1e9);
            }
        }
    }
    std::stable_sort(changes.begin(), changes.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    std::map<int, std::map<std::string, int>> busy;  // stage -> stream -> streams in flight
    for (const auto& [time, stage, stream, delta] : changes) {
        std::map<std::string, int>& streams = busy[stage];
        streams[stream] += delta;
        json args = json::object();
        for (const auto& [name, count] : streams) {
            args[name] = count;
        }
        events.push_back({{"ph", "C"}, {"name", "stage " + std::to_string(stage) + " links busy"}, {"pid", 0},
                          {"ts", time * kMicroseconds}, {"args", args}});
    }
    std::stable_sort(rates.begin(), rates.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    std::map<int, double> carried;  // stage -> GB/s its representative device's links carry now
    for (const auto& [time, stage, delta] : rates) {
        carried[stage] = std::max(0.0, carried[stage] + delta);
        events.push_back({{"ph", "C"}, {"name", "stage " + std::to_string(stage) + " link traffic"}, {"pid", 0},
                          {"ts", time * kMicroseconds}, {"args", {{"GB/s", carried[stage]}}}});
    }
    out << json{{"traceEvents", events},
                {"displayTimeUnit", "ms"},
                {"otherData",
                 {{"model", r.model},
                  {"machine", r.machine},
                  {"strategy", r.strategy.to_string()},
                  {"precision", r.precision},
                  {"step_s", r.step_s}}}}
               .dump()
        << "\n";
}

}  // namespace dojo::sim
