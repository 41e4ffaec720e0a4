/** \file
 * The service's durable state: tenants and jobs in SQLite (`STATE_DIR/state.db`, WAL, synchronous=FULL: a job the
 * API accepted is on disk before the reply, and survives `kill -9` of the server). One connection, guarded by a
 * mutex: the HTTP threads and the scheduler's thread take turns; SQLite is the one writer.
 *
 * A job's life: queued -> running -> succeeded | failed | cancelled; a running job stopped to make room for a
 * higher-priority one is preempted (and waits as a queued one does); a running job whose server died is put back to
 * queued on the next start (recover_interrupted). A train job started again resumes from its checkpoint.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dojo/service/job_spec.h"
#include "dojo/service/scheduler.h"

struct sqlite3;

namespace dojo::service {

struct Tenant {
    std::string name;
    bool admin = false;
    int max_slots = 1;    ///< slots its running jobs may hold together
    int max_queued = 100; ///< jobs it may have queued or running
};

struct Job {
    std::int64_t id = 0;
    std::string tenant;
    JobSpec spec;
    std::string state;        ///< queued, running, preempted, succeeded, failed, cancelled
    double submitted = 0, started = 0, finished = 0;  ///< Unix seconds; 0: not yet
    int exit_code = 0;
    int attempts = 0;         ///< times it was started
    int kills = 0;            ///< times its process was killed from outside (SIGKILL) and it was queued again
    std::string error;        ///< why it failed, when it did
};

class Store {
public:
    /// Opens (creating) `state_dir`/state.db. IoError if the directory cannot hold it.
    explicit Store(const std::string& state_dir);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    /// Adds a tenant and returns its token (shown once; only its hash is kept). UsageError if the name is taken or
    /// not [A-Za-z0-9_-]{1,64}.
    std::string add_tenant(const Tenant& tenant);
    /// The tenant holding `token`, if any.
    std::optional<Tenant> tenant_by_token(const std::string& token);
    std::optional<Tenant> tenant(const std::string& name);

    /// Queues a job; returns its id. UsageError when the tenant already has max_queued jobs queued or running.
    std::int64_t submit(const Tenant& tenant, const JobSpec& spec, double now);
    std::optional<Job> job(std::int64_t id);
    /// Jobs of `tenant` (every tenant's when empty), newest first, at most `limit`.
    std::vector<Job> jobs(const std::string& tenant, int limit = 1000);
    std::vector<Job> jobs_in_state(const std::string& state);
    /// The jobs waiting to run (queued or preempted) as the scheduler sees them: no spec to parse, so a decision
    /// over a long queue stays cheap.
    std::vector<QueuedJob> waiting_jobs();

    /// The slots jobs held from their last start to their end (or `now`, if running) for jobs running or finished
    /// since `since`: the tenants' recent use (scheduler.h recent_use).
    std::vector<UseInterval> use_intervals(double now, double since);
    void mark_running(std::int64_t id, double now);
    void mark_finished(std::int64_t id, const std::string& state, int exit_code, const std::string& error, double now);
    /// A running job stopped by preemption: it waits to run again.
    void mark_preempted(std::int64_t id);
    /// A running job whose process was killed from outside: queued again, its kills counted.
    void requeue_killed(std::int64_t id);
    /// Cancels a queued or preempted job at once; returns its state after (a running job is cancelled when its
    /// process ends).
    std::string cancel_if_queued(std::int64_t id, double now);
    /// At start: every job left running by a server that died is queued again. Returns how many.
    int recover_interrupted();

private:
    void exec(const std::string& sql);
    void add_kills_column_if_missing();
    std::mutex mutex_;
    sqlite3* db_ = nullptr;
};

}  // namespace dojo::service
