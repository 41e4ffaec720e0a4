// Job processes on this host (runner.h).
#include "dojo/service/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "dojo/runtime/checkpoint.h"
#include "dojo/service/scheduler.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"

namespace dojo::service {

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Runner::Runner(Store& store, std::string state_dir, std::string dojo, int total_slots, double half_life_s)
    : store_(store), state_dir_(std::move(state_dir)), dojo_(std::move(dojo)), total_slots_(total_slots),
      half_life_s_(half_life_s) {
    use_at_ = now_seconds();
    use_ = recent_use(store_.use_intervals(use_at_, use_at_ - 20 * half_life_s_), use_at_, half_life_s_);
}

Runner::~Runner() {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, p] : running_) {
        kill(p.pid, SIGTERM);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (const auto& [id, p] : running_) {
        int status = 0;
        while (waitpid(p.pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) {
                kill(p.pid, SIGKILL);
                waitpid(p.pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    // Their jobs stay 'running' in the store: the next start queues them again (and resumes train jobs).
}

std::string Runner::job_dir(std::int64_t id) const { return state_dir_ + "/jobs/" + std::to_string(id); }

void Runner::start(const Job& job, double now) {
    const std::string dir = job_dir(job.id);
    std::filesystem::create_directories(dir + "/artifacts");
    const bool resume = job.spec.kind == "train" && runtime::has_checkpoint(dir + "/checkpoint");
    const std::vector<std::string> argv = job_argv(job.spec, dojo_, dir, resume);
    const std::string result = dir + "/result.json", log = dir + "/log.txt";
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        throw Error("cannot start job " + std::to_string(job.id) + ": fork failed");
    }
    if (pid == 0) {  // the job: dies with the server, writes its result and log in its directory
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        setpgid(0, 0);
        const int out = open(result.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out < 0 || err < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) {
            _exit(127);
        }
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        execvp(args[0], args.data());  // the dojo executable's path, or mpirun from PATH (a job on MPI ranks)
        const std::string why = "dojo serve: cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
        (void)!write(STDERR_FILENO, why.data(), why.size());
        _exit(127);
    }
    store_.mark_running(job.id, now);
    running_[job.id] = Process{pid, job.tenant, job.spec.slots, job.spec.priority, now, false, false};
}

// A job process killed from outside (SIGKILL: the kernel's OOM killer, an operator) is queued again, to resume from
// its checkpoint, unless it was killed kMaxKills times already (a job the OOM killer ends every time): whether it was.
bool Runner::requeue_killed(std::int64_t id) {
    const std::optional<Job> job = store_.job(id);
    if (!job) {
        return false;
    }
    std::ofstream log(job_dir(id) + "/log.txt", std::ios::app);
    if (job->kills >= kMaxKills) {
        log << "dojo serve: the job's process was killed (SIGKILL) for the " << job->kills + 1
            << "th time; it fails (a job is queued again after at most " << kMaxKills << " kills)\n";
        return false;
    }
    log << "dojo serve: the job's process was killed (SIGKILL) on attempt " << job->attempts << "; queued again\n";
    store_.requeue_killed(id);
    return true;
}

void Runner::reap(double now) {
    for (auto it = running_.begin(); it != running_.end();) {
        int status = 0;
        if (waitpid(it->second.pid, &status, WNOHANG) != it->second.pid) {
            ++it;
            continue;
        }
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (it->second.preempted && !it->second.cancelled) {
            store_.mark_preempted(it->first);
            it = running_.erase(it);
            ended_ = true;
            continue;
        }
        // Killed: its process by SIGKILL, or (a job on MPI ranks) mpirun reporting a rank ended so (status 137).
        const bool killed = (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                            (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL);
        if (!it->second.cancelled && killed && requeue_killed(it->first)) {
            it = running_.erase(it);
            ended_ = true;
            continue;
        }
        const std::string state = it->second.cancelled ? "cancelled" : code == 0 ? "succeeded" : "failed";
        const std::string error = state == "failed" ? last_lines(job_dir(it->first) + "/log.txt", 5) : "";
        store_.mark_finished(it->first, state, code, error, now);
        it = running_.erase(it);
        ended_ = true;
    }
}

void Runner::tick(double now) {
    const std::lock_guard lock(mutex_);
    std::vector<RunningShare> held_since;  // what ran since the last tick: the tenants' use grows by it
    for (const auto& [id, p] : running_) {
        held_since.push_back({p.tenant, p.slots, id, p.priority, p.started});
    }
    advance_use(use_, held_since, use_at_, now, half_life_s_);
    use_at_ = std::max(use_at_, now);
    reap(now);
    if (utilization_.empty() || now - utilization_.back().first >= 1.0) {
        int held = 0;
        for (const auto& [id, p] : running_) {
            held += p.slots;
        }
        utilization_.emplace_back(now, static_cast<double>(held) / total_slots_);
        if (utilization_.size() > 600) {
            utilization_.erase(utilization_.begin());
        }
    }
    // Decide at once when a job has ended (slots are free), within a second of a submission or cancellation, and
    // every 5 s regardless.
    const bool due = ended_ || (changed_.load() && now - decided_at_ >= 1.0) || now - decided_at_ >= 5.0;
    if (!due) {
        return;
    }
    ended_ = false;
    changed_.store(false);
    decided_at_ = now;
    const std::vector<QueuedJob> queued = store_.waiting_jobs();
    std::map<std::string, int> max_slots;
    for (const QueuedJob& job : queued) {
        if (!max_slots.contains(job.tenant)) {
            const std::optional<Tenant> tenant = store_.tenant(job.tenant);
            max_slots[job.tenant] = tenant ? tenant->max_slots : 1;
        }
    }
    // A job being stopped still holds its slots until it has ended; while one is, nothing more is preempted.
    std::vector<RunningShare> holding;
    bool stopping = false;
    for (const auto& [id, p] : running_) {
        holding.push_back({p.tenant, p.slots, id, p.priority, p.started});
        stopping = stopping || p.preempted;
    }
    if (!stopping) {
        for (const std::int64_t id : jobs_to_preempt(queued, holding, total_slots_, max_slots, use_)) {
            running_.at(id).preempted = true;
            kill(running_.at(id).pid, SIGTERM);
        }
    }
    for (const std::int64_t id : jobs_to_start(queued, holding, total_slots_, max_slots, Policy::Priority, use_)) {
        if (const std::optional<Job> job = store_.job(id)) {
            start(*job, now);
        }
    }
}

std::vector<Runner::SlotHolder> Runner::slot_holders() {
    const std::lock_guard lock(mutex_);
    std::vector<SlotHolder> slots(static_cast<std::size_t>(total_slots_));
    std::size_t next = 0;
    for (const auto& [id, p] : running_) {
        for (int k = 0; k < p.slots && next < slots.size(); ++k) {
            slots[next++] = SlotHolder{id, p.tenant};
        }
    }
    return slots;
}

std::vector<std::pair<double, double>> Runner::utilization() {
    const std::lock_guard lock(mutex_);
    return utilization_;
}

std::string Runner::cancel(std::int64_t id, double now) {
    const std::lock_guard lock(mutex_);
    const auto it = running_.find(id);
    if (it != running_.end()) {
        it->second.cancelled = true;
        kill(it->second.pid, SIGTERM);
        return "cancelling";  // cancelled once its process has ended (reap)
    }
    return store_.cancel_if_queued(id, now);
}

}  // namespace dojo::service
