/** \file
 * The Slurm engine (engine.h; `dojo serve --scheduler slurm`): every accepted job is handed to a Slurm cluster with
 * `sbatch`, and Slurm decides where and when it runs. The server keeps the queue's durable record (store.h) and
 * follows each job's Slurm state (`scontrol show job`) into it:
 *
 *   PENDING                            queued (preempted when it had started before and Slurm requeued it)
 *   RUNNING, COMPLETING, CONFIGURING   running
 *   REQUEUED, PREEMPTED, ...           preempted
 *   COMPLETED                          succeeded
 *   FAILED, NODE_FAIL, OUT_OF_MEMORY   failed (with the log's last lines)
 *   CANCELLED                          cancelled
 *   TIMEOUT                            timed_out
 *
 * Priorities are Slurm QOS (`--qos`: high, normal, low, each preempting the lower ones by requeue: slurm.conf
 * PreemptType=preempt/qos, PreemptMode=REQUEUE, and the QOS in Slurm's accounting database, slurmdbd), or on a
 * cluster without accounting, partitions of rising PriorityTier (`--partition`; PreemptType=preempt/partition_prio).
 * SlurmOptions names them. A preempted train job is killed by Slurm and requeued; its batch script resumes it from the
 * job's last checkpoint (`--resume`), so it ends with the weights of an uninterrupted run. A requeued job Slurm would
 * hold for its requeue delay is released at once. A job's slots are its tasks' CPUs: one task of SLOTS CPUs, or for
 * a job on MPI ranks RANKS tasks (`--ntasks`) of SLOTS / RANKS CPUs each, which Slurm may place on several nodes and
 * mpirun inside the batch job starts its ranks on (OpenMPI reads the allocation from Slurm).
 *
 * Tenant quotas are the server's: a job goes to Slurm only while its tenant's jobs there, pending or running, hold
 * no more than the tenant's slots (`--max-slots`) with it; until then it stays queued in the store, highest
 * priority first.
 *
 * A job is found in Slurm by its name, `dojo-TAG-ID` (TAG: a hash of the state directory), not by an id kept
 * aside: a server killed between `sbatch` and its next write finds the job again and never submits it twice. The
 * batch script writes the command's exit status to `exit_code` in the job's directory, so a job that ended while the
 * server was down long enough for Slurm to forget it (MinJobAge) still gets its outcome.
 *
 * Slurm's commands are found on PATH and its configuration in SLURM_CONF (or Slurm's default), as for any Slurm
 * client.
 */
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dojo/service/engine.h"
#include "dojo/service/store.h"

namespace dojo::service {

enum class SlurmPriorities : std::uint8_t { Qos, Partitions };

struct SlurmOptions {
    SlurmPriorities priorities = SlurmPriorities::Qos;
    /// The QOS or partition each priority class goes to.
    std::map<Priority, std::string> names = {{Priority::High, "high"}, {Priority::Normal, "normal"}, {Priority::Low, "low"}};
};

/// One job as `scontrol show job -o` describes it.
struct SlurmJob {
    std::int64_t id = 0;
    std::string name, state, reason, partition;
    int exit_code = 0;   ///< ExitCode's status (its signal, when one ended it, as 128 + N)
    int restarts = 0;
    int cpus = 0;
};

/// Parses `scontrol show job -o` output (one job a line, Key=Value fields).
std::vector<SlurmJob> parse_scontrol_jobs(const std::string& text);

/// The store state a Slurm job state maps to (above); `started`: the store has seen the job run.
std::string store_state_of(const SlurmJob& job, bool started);

class SlurmEngine : public Engine {
public:
    /// Checks that Slurm answers (sinfo) and reads its CPUs; IoError naming the command and its message if not.
    SlurmEngine(Store& store, std::string state_dir, std::string dojo, SlurmOptions options);

    void tick(double now) override;
    void notify() override;
    std::string cancel(std::int64_t id, double now) override;
    std::string job_dir(std::int64_t id) const override;
    std::vector<SlotHolder> slot_holders() override;
    std::vector<std::pair<double, double>> utilization() override;
    std::string name() const override { return "slurm"; }

private:
    std::string job_name(std::int64_t id) const;
    std::optional<std::int64_t> our_id(const std::string& slurm_name) const;
    std::map<std::int64_t, SlurmJob> query();  // by our job id: the cluster's jobs of this state directory
    void submit(const Job& job, double now);
    // Writes what Slurm says of the job into the store; true when Slurm has not got the job (never submitted, or
    // the server died before sbatch), so that it is to be submitted.
    bool follow(const Job& job, const std::optional<SlurmJob>& slurm, double now);
    // Submits the waiting jobs, highest priority first, each while its tenant's jobs in Slurm (pending or running)
    // hold no more than the tenant's --max-slots with it; the others stay queued here.
    void submit_within_quotas(std::vector<Job> waiting, double now);

    Store& store_;
    std::string state_dir_, dojo_, tag_;
    SlurmOptions options_;
    int total_cpus_ = 0;
    std::mutex mutex_;
    std::map<std::int64_t, SlurmJob> seen_;  // the last query, by our job id
    std::vector<std::pair<double, double>> utilization_;
    bool changed_ = true;
    double polled_at_ = -1e300;
};

}  // namespace dojo::service
