// Jobs handed to Slurm (slurm.h).
#include "dojo/service/slurm.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dojo/runtime/checkpoint.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"
#include "dojo/util/process.h"

namespace dojo::service {
namespace {

namespace fs = std::filesystem;

constexpr double kCommandTimeoutS = 30;

// 'text' for the shell, whatever it holds.
std::string quoted(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

std::string command_line(const std::vector<std::string>& argv) {
    std::string line;
    for (const std::string& a : argv) {
        line += (line.empty() ? "" : " ") + quoted(a);
    }
    return line;
}

// A Slurm command that must work: its output, or IoError with what it said.
std::string slurm(const std::vector<std::string>& argv) {
    const ProgramResult r = run_program(argv, kCommandTimeoutS);
    if (r.exit_code != 0 || r.timed_out) {
        std::string said = r.err.empty() ? r.out : r.err;
        while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) {
            said.pop_back();
        }
        throw IoError(argv[0] + " failed" + (r.timed_out ? " (no answer in 30 s)" : "") + ": " +
                      (said.empty() ? "exit status " + std::to_string(r.exit_code) : said) +
                      " (is slurmctld running, and SLURM_CONF naming its slurm.conf?)");
    }
    return r.out;
}

// FNV-1a of the state directory's absolute path, in hex: two servers' jobs never share a name.
std::string tag_of(const std::string& state_dir) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const char c : fs::absolute(state_dir).lexically_normal().string()) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
    std::ostringstream out;
    out << std::hex << (h & 0xffffffffULL);
    return out.str();
}

// "2:0" -> 2; "0:9" (signal 9) -> 137.
int exit_status(const std::string& text) {
    const std::size_t colon = text.find(':');
    const int code = std::atoi(text.substr(0, colon).c_str());
    const int signal = colon == std::string::npos ? 0 : std::atoi(text.substr(colon + 1).c_str());
    return signal != 0 ? 128 + signal : code;
}

// The batch script: the job's command, resumed from its checkpoint when it has one (a requeued train job), its
// exit status left in `exit_code` for a server that comes back after Slurm has forgotten the job.
std::string batch_script(const Job& job, const std::string& dojo, const std::string& dir) {
    std::string s = "#!/bin/sh\n# dojo serve's job " + std::to_string(job.id) + ", run by Slurm\ncd " + quoted(dir) +
                    " || exit 1\nrm -f exit_code\n";
    const std::string fresh = command_line(job_argv(job.spec, dojo, dir, false)) + " > result.json";
    if (job.spec.kind == "train") {
        s += "if [ -e " + quoted(dir + "/checkpoint/" + runtime::kCheckpointFile) + " ]; then\n  " +
             command_line(job_argv(job.spec, dojo, dir, true)) + " > result.json\nelse\n  " + fresh + "\nfi\n";
    } else {
        s += fresh + "\n";
    }
    return s + "status=$?\necho \"$status\" > exit_code.tmp && mv exit_code.tmp exit_code\nexit \"$status\"\n";
}

bool is_final(const std::string& state) {
    return state == "succeeded" || state == "failed" || state == "cancelled" || state == "timed_out";
}

}  // namespace

std::vector<SlurmJob> parse_scontrol_jobs(const std::string& text) {
    std::vector<SlurmJob> jobs;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        SlurmJob job;
        for (std::string field; fields >> field;) {
            const std::size_t eq = field.find('=');
            if (eq == std::string::npos) {
                continue;
            }
            const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
            if (key == "JobId") {
                job.id = std::atoll(value.c_str());
            } else if (key == "JobName") {
                job.name = value;
            } else if (key == "JobState") {
                job.state = value;
            } else if (key == "Reason") {
                job.reason = value;
            } else if (key == "Partition") {
                job.partition = value;
            } else if (key == "ExitCode") {
                job.exit_code = exit_status(value);
            } else if (key == "Restarts") {
                job.restarts = std::atoi(value.c_str());
            } else if (key == "NumCPUs") {
                job.cpus = std::atoi(value.c_str());
            }
        }
        if (job.id > 0) {
            jobs.push_back(job);
        }
    }
    return jobs;
}

std::string store_state_of(const SlurmJob& job, bool started) {
    const std::string& s = job.state;
    if (s == "PENDING") {
        return started || job.restarts > 0 ? "preempted" : "queued";
    }
    if (s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "SUSPENDED" || s == "STAGE_OUT") {
        return "running";
    }
    if (s == "COMPLETED") {
        return "succeeded";
    }
    if (s == "CANCELLED") {
        return "cancelled";
    }
    if (s == "TIMEOUT") {
        return "timed_out";
    }
    if (s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "REQUEUE_FED" || s == "PREEMPTED" || s == "RESIZING") {
        return "preempted";
    }
    return "failed";  // FAILED, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, SPECIAL_EXIT
}

SlurmEngine::SlurmEngine(Store& store, std::string state_dir, std::string dojo, SlurmOptions options)
    : store_(store), state_dir_(std::move(state_dir)), dojo_(std::move(dojo)), tag_(tag_of(state_dir_)),
      options_(std::move(options)) {
    // "allocated/idle/other/total" CPUs of the cluster's nodes
    const std::string cpus = slurm({"sinfo", "--noheader", "--format=%C"});
    const std::size_t last = cpus.rfind('/');
    total_cpus_ = last == std::string::npos ? 0 : std::atoi(cpus.c_str() + last + 1);
    if (total_cpus_ <= 0) {
        throw IoError("sinfo reports no CPUs in the Slurm cluster ('" + cpus + "'): are its nodes up?");
    }
}

std::string SlurmEngine::job_dir(std::int64_t id) const { return state_dir_ + "/jobs/" + std::to_string(id); }

std::string SlurmEngine::job_name(std::int64_t id) const { return "dojo-" + tag_ + "-" + std::to_string(id); }

std::optional<std::int64_t> SlurmEngine::our_id(const std::string& slurm_name) const {
    const std::string prefix = "dojo-" + tag_ + "-";
    if (!slurm_name.starts_with(prefix)) {
        return std::nullopt;
    }
    return std::atoll(slurm_name.c_str() + prefix.size());
}

std::map<std::int64_t, SlurmJob> SlurmEngine::query() {
    std::map<std::int64_t, SlurmJob> ours;
    for (const SlurmJob& job : parse_scontrol_jobs(slurm({"scontrol", "show", "job", "--oneliner"}))) {
        if (const std::optional<std::int64_t> id = our_id(job.name)) {
            const auto it = ours.find(*id);
            if (it == ours.end() || it->second.id < job.id) {
                ours[*id] = job;  // the newest, should there be two
            }
        }
    }
    return ours;
}

void SlurmEngine::submit(const Job& job, double now) {
    const std::string dir = job_dir(job.id);
    fs::create_directories(dir + "/artifacts");
    fs::remove(dir + "/exit_code");
    const std::string script = dir + "/slurm.sh";
    write_output_file(script, batch_script(job, dojo_, dir), "Slurm batch script");
    fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
    const ProgramResult r = run_program(
        {"sbatch", "--parsable", "--job-name=" + job_name(job.id),
         (options_.priorities == SlurmPriorities::Qos ? "--qos=" : "--partition=") + options_.names.at(job.spec.priority),
         "--ntasks=" + std::to_string(job.spec.ranks), "--cpus-per-task=" + std::to_string(job.spec.slots / job.spec.ranks),
         "--requeue", "--output=" + dir + "/log.txt",
         "--open-mode=append", "--chdir=" + dir, script},
        kCommandTimeoutS);
    if (r.exit_code != 0) {
        store_.mark_finished(job.id, "failed", r.exit_code, "Slurm refused the job (sbatch): " + r.err, now);
    }
}

bool SlurmEngine::follow(const Job& job, const std::optional<SlurmJob>& slurm_job, double now) {
    const std::string dir = job_dir(job.id);
    if (!slurm_job) {
        if (fs::exists(dir + "/exit_code")) {  // it ended and Slurm has forgotten it since
            std::ifstream in(dir + "/exit_code");
            int code = 1;
            in >> code;
            store_.mark_finished(job.id, code == 0 ? "succeeded" : "failed", code,
                                 code == 0 ? "" : last_lines(dir + "/log.txt", 5), now);
            return false;
        }
        if (job.state == "running") {
            store_.mark_finished(job.id, "failed", 1, "Slurm no longer knows this job and it left no exit status", now);
            return false;
        }
        return true;
    }
    const std::string state = store_state_of(*slurm_job, job.state != "queued" || job.attempts > 0);
    if (state == "running" && job.state != "running") {
        store_.mark_running(job.id, now);
    } else if (state == "preempted" || state == "queued") {
        if (job.state == "running") {
            store_.mark_preempted(job.id);
        }
        if (slurm_job->restarts > 0 && slurm_job->reason == "BeginTime") {  // Slurm's requeue delay: run it now
            (void)run_program({"scontrol", "update", "JobId=" + std::to_string(slurm_job->id), "StartTime=now"},
                              kCommandTimeoutS);
        }
    } else if (is_final(state)) {
        if (job.state != "running" && state != "cancelled") {  // it ran between two looks: count its attempt
            store_.mark_running(job.id, now);
        }
        const int code = state == "succeeded" ? 0 : slurm_job->exit_code;
        const std::string error = state == "failed" ? last_lines(dir + "/log.txt", 5) : "";
        store_.mark_finished(job.id, state, code, error.empty() && state == "failed" ? slurm_job->state : error, now);
    }
    return false;
}

void SlurmEngine::submit_within_quotas(std::vector<Job> waiting, double now) {
    std::map<std::string, int> held;  // by tenant: the slots of its jobs Slurm has, pending or running
    for (const auto& [id, slurm_job] : seen_) {
        if (is_final(store_state_of(slurm_job, true))) {
            continue;
        }
        if (const std::optional<Job> ours = store_.job(id)) {
            held[ours->tenant] += ours->spec.slots;
        }
    }
    std::stable_sort(waiting.begin(), waiting.end(),
                     [](const Job& a, const Job& b) { return a.spec.priority > b.spec.priority; });
    std::map<std::string, int> max_slots;
    for (const Job& job : waiting) {
        if (!max_slots.contains(job.tenant)) {
            const std::optional<Tenant> tenant = store_.tenant(job.tenant);
            max_slots[job.tenant] = tenant ? tenant->max_slots : 1;
        }
        if (held[job.tenant] + job.spec.slots <= max_slots[job.tenant]) {
            submit(job, now);
            held[job.tenant] += job.spec.slots;
        }
    }
}

void SlurmEngine::tick(double now) {
    const std::lock_guard lock(mutex_);
    if (!changed_ && now - polled_at_ < 1.0) {
        return;
    }
    changed_ = false;
    polled_at_ = now;
    try {
        seen_ = query();
        std::vector<Job> waiting;  // jobs Slurm has not got
        for (const char* state : {"queued", "preempted", "running"}) {
            for (const Job& job : store_.jobs_in_state(state)) {
                const auto it = seen_.find(job.id);
                if (follow(job, it != seen_.end() ? std::optional(it->second) : std::nullopt, now)) {
                    waiting.push_back(job);
                }
            }
        }
        submit_within_quotas(std::move(waiting), now);
    } catch (const IoError& e) {  // Slurm unreachable for now: keep the record as it is and try again
        std::fprintf(stderr, "dojo serve: %s\n", e.what());
    }
    int held = 0;
    for (const auto& [id, job] : seen_) {
        held += store_state_of(job, true) == "running" ? job.cpus : 0;
    }
    utilization_.emplace_back(now, std::min(1.0, static_cast<double>(held) / total_cpus_));
    if (utilization_.size() > 600) {
        utilization_.erase(utilization_.begin());
    }
}

void SlurmEngine::notify() {
    const std::lock_guard lock(mutex_);
    changed_ = true;
}

std::string SlurmEngine::cancel(std::int64_t id, double now) {
    const std::lock_guard lock(mutex_);
    const std::map<std::int64_t, SlurmJob> jobs = query();
    const auto it = jobs.find(id);
    if (it != jobs.end() && !is_final(store_state_of(it->second, true))) {
        slurm({"scancel", std::to_string(it->second.id)});
        changed_ = true;
        return "cancelling";  // cancelled once Slurm says so (tick)
    }
    return store_.cancel_if_queued(id, now);
}

std::vector<Engine::SlotHolder> SlurmEngine::slot_holders() {
    const std::lock_guard lock(mutex_);
    std::vector<SlotHolder> slots(static_cast<std::size_t>(total_cpus_));
    std::size_t next = 0;
    for (const auto& [id, job] : seen_) {
        if (store_state_of(job, true) != "running") {
            continue;
        }
        const std::optional<Job> ours = store_.job(id);
        for (int k = 0; k < job.cpus && next < slots.size(); ++k) {
            slots[next++] = SlotHolder{id, ours ? ours->tenant : ""};
        }
    }
    return slots;
}

std::vector<std::pair<double, double>> SlurmEngine::utilization() {
    const std::lock_guard lock(mutex_);
    return utilization_;
}

}  // namespace dojo::service
