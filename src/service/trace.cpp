// Cluster traces: the Helios layout read, and generated (trace.h).
#include "dojo/service/trace.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>

#include "dojo/util/error.h"

namespace dojo::service {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (const char c : line) {
        if (c == '"') {
            quoted = !quoted;
        } else if (c == ',' && !quoted) {
            cells.push_back(cell);
            cell.clear();
        } else if (c != '\r') {
            cell += c;
        }
    }
    cells.push_back(cell);
    return cells;
}

// Unix seconds, or "YYYY-MM-DD HH:MM:SS" taken as UTC; NaN if neither.
double parse_time(const std::string& text) {
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size()) {
        return seconds;
    }
    std::tm tm{};
    std::istringstream in(text);
    in >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
    if (in.fail()) {
        return std::nan("");
    }
    return static_cast<double>(timegm(&tm));
}

}  // namespace

std::vector<TraceJob> read_trace(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw IoError("cannot read the trace " + path);
    }
    std::string line;
    if (!std::getline(in, line)) {
        throw UsageError(path + ": empty; a trace starts with a header naming its columns");
    }
    std::map<std::string, std::size_t> column;
    const std::vector<std::string> header = split_csv(line);
    for (std::size_t k = 0; k < header.size(); ++k) {
        column[header[k]] = k;
    }
    for (const char* name : {"job_id", "gpu_num", "submit_time", "duration"}) {
        if (!column.contains(name)) {
            throw UsageError(path + ": the header has no '" + name + "' column (the Helios layout: job_id, user, " +
                             "gpu_num, submit_time, duration; priority optional)");
        }
    }
    std::vector<TraceJob> jobs;
    for (std::size_t number = 2; std::getline(in, line); ++number) {
        if (line.empty()) {
            continue;
        }
        const std::vector<std::string> cells = split_csv(line);
        const auto cell = [&](const char* name) -> std::string {
            const auto it = column.find(name);
            if (it == column.end()) {
                return "";
            }
            if (it->second >= cells.size()) {
                throw UsageError(path + ":" + std::to_string(number) + ": no '" + name + "' value (the row has " +
                                 std::to_string(cells.size()) + " cells)");
            }
            return cells[it->second];
        };
        TraceJob job;
        job.id = cell("job_id");
        job.user = cell("user");
        const double devices = std::strtod(cell("gpu_num").c_str(), nullptr);
        job.duration_s = std::strtod(cell("duration").c_str(), nullptr);
        job.submit_s = parse_time(cell("submit_time"));
        if (std::isnan(job.submit_s) || !(devices >= 0) || !(job.duration_s >= 0) || devices > 1e7) {
            throw UsageError(path + ":" + std::to_string(number) + ": gpu_num, submit_time or duration is not a " +
                             "number (or a time like 2020-04-01 08:00:00)");
        }
        if (devices < 1 || job.duration_s <= 0) {
            continue;  // never ran: nothing to place
        }
        job.devices = static_cast<int>(devices);
        if (const std::string p = cell("priority"); !p.empty()) {
            job.priority = parse_priority(p);
        }
        jobs.push_back(std::move(job));
    }
    std::stable_sort(jobs.begin(), jobs.end(), [](const TraceJob& a, const TraceJob& b) { return a.submit_s < b.submit_s; });
    const double first = jobs.empty() ? 0.0 : jobs.front().submit_s;
    for (TraceJob& job : jobs) {
        job.submit_s -= first;
    }
    return jobs;
}

std::string generate_trace(const TraceMix& mix) {
    if (mix.jobs < 1 || mix.machine_devices < 1 || !(mix.load > 0) || !(mix.high_fraction >= 0 && mix.high_fraction <= 1)) {
        throw UsageError("a trace needs jobs >= 1, a machine of >= 1 device, load > 0 and a high fraction in [0, 1]");
    }
    std::mt19937_64 rng(mix.seed);
    // Device counts: powers of two, most jobs small (1-8), a tail up to a quarter of the machine.
    std::vector<int> sizes;
    std::vector<double> weights;
    for (int d = 1; d <= std::max(1, mix.machine_devices / 4); d *= 2) {
        sizes.push_back(d);
        weights.push_back(d <= 8 ? 8.0 / std::log2(2.0 * d) : 64.0 / d);
    }
    std::discrete_distribution<std::size_t> size_of(weights.begin(), weights.end());
    std::lognormal_distribution<double> run_time(std::log(3600.0), 1.0);  // median an hour
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<int> devices(static_cast<std::size_t>(mix.jobs));
    std::vector<double> durations(devices.size());
    double work = 0;  // device-seconds offered
    for (std::size_t k = 0; k < devices.size(); ++k) {
        devices[k] = sizes[size_of(rng)];
        durations[k] = std::max(60.0, std::round(run_time(rng)));
        work += devices[k] * durations[k];
    }
    // Arrivals spread so that the work offered is `load` times what the machine can do over the trace.
    const double span = work / (mix.load * mix.machine_devices);
    std::exponential_distribution<double> gap(static_cast<double>(mix.jobs) / span);
    std::ostringstream out;
    out << "job_id,user,vc,jobname,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue,"
           "priority\n";
    double t = 1'600'000'000.0;  // a fixed start, like the real traces' 2020 dates
    for (std::size_t k = 0; k < devices.size(); ++k) {
        t += gap(rng);
        const double u = unit(rng);
        const char* priority = u < mix.high_fraction ? "high" : u < mix.high_fraction + (1 - mix.high_fraction) / 2 ? "normal" : "low";
        const int team = static_cast<int>(unit(rng) * 12);
        out << "job" << k << ",team" << team << ",vc" << team % 4 << ",train" << k << "," << devices[k] << ","
            << devices[k] * 4 << "," << (devices[k] + 7) / 8 << ",COMPLETED," << static_cast<long long>(t) << ",,,"
            << static_cast<long long>(durations[k]) << ",0," << priority << "\n";
    }
    return out.str();
}

}  // namespace dojo::service
