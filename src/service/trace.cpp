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

#include <nlohmann/json.hpp>

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

// Jobs in submission order, their times from the first submission.
std::vector<TraceJob> from_first_submission(std::vector<TraceJob> jobs) {
    std::stable_sort(jobs.begin(), jobs.end(), [](const TraceJob& a, const TraceJob& b) { return a.submit_s < b.submit_s; });
    const double first = jobs.empty() ? 0.0 : jobs.front().submit_s;
    for (TraceJob& job : jobs) {
        job.submit_s -= first;
    }
    return jobs;
}

// A time field of a Philly job: a string as parse_time reads, or a number; NaN if missing or neither.
double json_time(const nlohmann::json& job, const char* key) {
    const auto it = job.find(key);
    if (it == job.end() || it->is_null()) {
        return std::nan("");
    }
    return it->is_number() ? it->get<double>() : it->is_string() ? parse_time(it->get<std::string>()) : std::nan("");
}

std::vector<TraceJob> read_philly(const std::string& path, std::istream& in) {
    const nlohmann::json log = nlohmann::json::parse(in, nullptr, false);
    if (log.is_discarded() || !log.is_array()) {
        throw UsageError(path + ": starts with '[' but is not a JSON array of jobs (the Philly cluster_job_log layout)");
    }
    std::vector<TraceJob> jobs;
    for (std::size_t k = 0; k < log.size(); ++k) {
        const nlohmann::json& j = log[k];
        const auto bad = [&](const std::string& what) {
            return UsageError(path + ": job " + std::to_string(k) + " " + what + " (the Philly layout: jobid, user, " +
                              "submitted_time, attempts with start_time, end_time and detail[].gpus)");
        };
        if (!j.is_object() || !j.contains("attempts") || !j["attempts"].is_array()) {
            throw bad("is not an object with an attempts array");
        }
        TraceJob job;
        job.id = j.value("jobid", std::to_string(k));
        job.user = j.value("user", "");
        job.submit_s = json_time(j, "submitted_time");
        if (std::isnan(job.submit_s)) {
            throw bad("has no submitted_time");
        }
        for (const nlohmann::json& attempt : j["attempts"]) {
            const double start = json_time(attempt, "start_time"), end = json_time(attempt, "end_time");
            if (!std::isnan(start) && !std::isnan(end) && end > start) {
                job.duration_s += end - start;
            }
            if (job.devices == 1 && attempt.contains("detail") && attempt["detail"].is_array()) {
                int gpus = 0;
                for (const nlohmann::json& machine : attempt["detail"]) {
                    gpus += machine.contains("gpus") && machine["gpus"].is_array()
                                ? static_cast<int>(machine["gpus"].size()) : 0;
                }
                job.devices = std::max(1, gpus);
            }
        }
        if (j.contains("priority") && j["priority"].is_string()) {
            job.priority = parse_priority(j["priority"].get<std::string>());
        }
        if (j.contains("model") && j["model"].is_string()) {
            job.model = j["model"].get<std::string>();
            job.samples = j.value("samples", 0.0);
            job.batch_per_device = j.value("batch_per_device", 32);
            if (!(job.samples > 0) || job.batch_per_device < 1) {
                throw bad("has a model but no samples > 0 or batch_per_device >= 1");
            }
        }
        if (job.duration_s > 0) {
            jobs.push_back(std::move(job));
        }
    }
    return from_first_submission(std::move(jobs));
}

}  // namespace

std::vector<TraceJob> read_trace(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw IoError("cannot read the trace " + path);
    }
    in >> std::ws;
    if (in.peek() == '[') {
        return read_philly(path, in);
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
        job.model = cell("model");
        job.samples = std::strtod(cell("samples").c_str(), nullptr);
        if (const std::string b = cell("batch_per_device"); !b.empty()) {
            job.batch_per_device = std::atoi(b.c_str());
        }
        if (!job.model.empty() && (!(job.samples > 0) || job.batch_per_device < 1)) {
            throw UsageError(path + ":" + std::to_string(number) + ": a job with a model needs samples > 0 and " +
                             "batch_per_device >= 1");
        }
        jobs.push_back(std::move(job));
    }
    return from_first_submission(std::move(jobs));
}

TraceLayout parse_trace_layout(const std::string& text) {
    if (text == "helios") {
        return TraceLayout::Helios;
    }
    if (text == "philly") {
        return TraceLayout::Philly;
    }
    throw UsageError("trace layout '" + text + "' is not helios (CSV) or philly (JSON job log)");
}

namespace {

// The synthetic mix's jobs (trace.h), submission times in Unix seconds from a fixed 2020 start.
std::vector<TraceJob> synthetic_jobs(const TraceMix& mix) {
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
    std::vector<TraceJob> jobs(static_cast<std::size_t>(mix.jobs));
    double work = 0;  // device-seconds offered
    for (TraceJob& job : jobs) {
        job.devices = sizes[size_of(rng)];
        job.duration_s = std::max(60.0, std::round(run_time(rng)));
        work += job.devices * job.duration_s;
    }
    // Arrivals spread so that the work offered is `load` times what the machine can do over the trace.
    const double span = work / (mix.load * mix.machine_devices);
    std::exponential_distribution<double> gap(static_cast<double>(mix.jobs) / span);
    double t = 1'600'000'000.0;  // a fixed start, like the real traces' 2020 dates
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        t += gap(rng);
        const double u = unit(rng);
        jobs[k].priority = u < mix.high_fraction                                  ? Priority::High
                           : u < mix.high_fraction + (1 - mix.high_fraction) / 2 ? Priority::Normal
                                                                                  : Priority::Low;
        jobs[k].user = "team" + std::to_string(static_cast<int>(unit(rng) * 12));
        jobs[k].id = std::to_string(k);
        jobs[k].submit_s = static_cast<double>(static_cast<long long>(t));
    }
    if (!mix.models.empty()) {  // drawn after the rest, so that the other columns stay as without models
        std::uniform_int_distribution<std::size_t> model_of(0, mix.models.size() - 1);
        for (TraceJob& job : jobs) {
            job.model = mix.models[model_of(rng)];
            job.samples = std::round(job.duration_s * job.devices * mix.samples_per_device_s);
        }
    }
    return jobs;
}

std::string helios_csv(const std::vector<TraceJob>& jobs) {
    const bool models = !jobs.empty() && !jobs.front().model.empty();
    std::ostringstream out;
    out << "job_id,user,vc,jobname,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue,"
           "priority" << (models ? ",model,samples,batch_per_device" : "") << "\n";
    for (const TraceJob& job : jobs) {
        const int team = std::atoi(job.user.c_str() + 4);
        out << "job" << job.id << "," << job.user << ",vc" << team % 4 << ",train" << job.id << "," << job.devices
            << "," << job.devices * 4 << "," << (job.devices + 7) / 8 << ",COMPLETED,"
            << static_cast<long long>(job.submit_s) << ",,," << static_cast<long long>(job.duration_s) << ",0,"
            << to_string(job.priority);
        if (models) {  // a spec's commas would split the cell: quoted
            out << ",\"" << job.model << "\"," << static_cast<long long>(job.samples) << "," << job.batch_per_device;
        }
        out << "\n";
    }
    return out.str();
}

std::string utc_time(double unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::ostringstream out;
    out << std::put_time(&tm, "%Y-%m-%d %H:%M:%S");
    return out.str();
}

// Philly's job log: one attempt per job, run at once on machines of 8 GPUs (a replay starts it when it can).
std::string philly_json(const std::vector<TraceJob>& jobs) {
    nlohmann::json log = nlohmann::json::array();
    for (const TraceJob& job : jobs) {
        nlohmann::json detail = nlohmann::json::array();
        for (int first = 0, machine = 0; first < job.devices; first += 8, ++machine) {
            nlohmann::json gpus = nlohmann::json::array();
            for (int g = 0; g < std::min(8, job.devices - first); ++g) {
                gpus.push_back("gpu" + std::to_string(g));
            }
            detail.push_back({{"ip", "m" + std::to_string(machine)}, {"gpus", gpus}});
        }
        const nlohmann::json attempt = {{"start_time", utc_time(job.submit_s)},
                                        {"end_time", utc_time(job.submit_s + job.duration_s)},
                                        {"detail", detail}};
        nlohmann::json entry = {{"status", "Pass"},
                                {"vc", "vc" + std::to_string(std::atoi(job.user.c_str() + 4) % 4)},
                                {"jobid", "application_" + job.id},
                                {"user", job.user},
                                {"submitted_time", utc_time(job.submit_s)},
                                {"priority", to_string(job.priority)},
                                {"attempts", nlohmann::json::array({attempt})}};
        if (!job.model.empty()) {
            entry["model"] = job.model;
            entry["samples"] = job.samples;
            entry["batch_per_device"] = job.batch_per_device;
        }
        log.push_back(std::move(entry));
    }
    std::string text = "[\n";  // a job a line, as the published log is easiest to read
    for (std::size_t k = 0; k < log.size(); ++k) {
        text += log[k].dump() + (k + 1 < log.size() ? ",\n" : "\n");
    }
    return text + "]\n";
}

}  // namespace

std::string generate_trace(const TraceMix& mix, TraceLayout layout) {
    const std::vector<TraceJob> jobs = synthetic_jobs(mix);
    return layout == TraceLayout::Philly ? philly_json(jobs) : helios_csv(jobs);
}

}  // namespace dojo::service
