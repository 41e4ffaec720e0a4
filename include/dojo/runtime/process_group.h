/** \file
 * The ranks of one data-parallel job, joined through MPI (OpenMPI from Debian), and the collectives training needs.
 *
 * Launch: `mpirun -np N dojo train ...` starts N processes; from_environment() sees mpirun's variables
 * (OMPI_COMM_WORLD_SIZE, or PMIX_RANK/PMI_RANK for other launchers) and joins the job. A process started without a
 * launcher forms a group of one and never touches MPI, so a plain `dojo train` needs no MPI runtime at all.
 *
 * Threads: every MPI call after initialisation runs on one communication thread, in the order the caller submitted
 * the work (MPI_THREAD_SERIALIZED is all this asks of the library). submit() queues a job and returns at once, so
 * the training thread can go on computing while a gradient bucket is being reduced; the blocking collectives below
 * are submit() + wait. Every rank must submit the same collectives in the same order, as MPI requires.
 *
 * Faults: every collective is non-blocking underneath and waited for with a deadline (timeout_s). Each rank also
 * announces to rank 0 which collective it has reached (and rank 0 to everyone), and repeats it as a heartbeat at
 * least every min(1 s, timeout / 8), from the communication thread, even while idle. When the deadline passes the
 * rank can say who is to blame: rank 0 names the ranks it has not heard from for three heartbeats (a stopped or
 * wholly hung process) and the ranks alive but not at this collective (stuck or far slower); the other ranks wait a
 * grace period longer for rank 0 to do so and otherwise report rank 0. The reporting rank prints the message and
 * calls MPI_Abort, which ends the whole job (exit code kTimeoutExitCode).
 * A rank that dies is mpirun's to report: it stops the job and names the rank and its signal.
 */
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace dojo::runtime {

/// The exit code of a job stopped because a collective waited past its deadline.
inline constexpr int kTimeoutExitCode = 4;

/// A non-blocking MPI operation in flight, as the communication thread sees it (an MPI_Request, type-erased so
/// that this header does not include mpi.h).
struct PendingRequest {
    std::uint64_t handle = 0;  ///< the MPI_Request's bits (a pointer in OpenMPI, an int in MPICH)
};

class ProcessGroup {
public:
    /// Joins the MPI job this process was launched into, or forms a group of one without MPI. `timeout_s` (> 0):
    /// how long a collective may wait for the slowest rank. Throws UsageError for a non-positive timeout and Error
    /// if MPI cannot give the thread support it needs.
    static std::unique_ptr<ProcessGroup> from_environment(double timeout_s);

    /// A group of one that never uses MPI (tests, and runs without a launcher).
    static std::unique_ptr<ProcessGroup> single();

    ~ProcessGroup();  ///< waits for queued work, then finalizes MPI if this group initialised it
    ProcessGroup(const ProcessGroup&) = delete;
    ProcessGroup& operator=(const ProcessGroup&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    /// Ranks on this host (OMPI_COMM_WORLD_LOCAL_SIZE), for sharing the cores; 1 without a launcher.
    int local_size() const { return local_size_; }
    /// True when the job has more than one rank (collectives do something).
    bool distributed() const { return size_ > 1; }
    double timeout_s() const { return timeout_s_; }

    /// Queues `job` for the communication thread; `what` names it in timeout reports ("the gradient all-reduce of
    /// step 12, bucket 3"). The job runs MPI calls through the Mpi handle it is given. The future carries the job's
    /// exception, if any. Single groups run the job at once on the calling thread.
    class Mpi;
    std::future<void> submit(std::string what, std::function<void(Mpi&)> job);

    // Blocking collectives over every rank (identity on a group of one).
    /// Element-wise sum, in place.
    void allreduce_sum(std::span<double> values);
    /// Element-wise minimum, in place.
    void allreduce_min(std::span<double> values);
    /// Element-wise maximum, in place.
    void allreduce_max(std::span<double> values);
    /// Rank 0's bytes to every rank, in place.
    void broadcast(std::span<std::byte> bytes);
    void broadcast(std::span<float> values);
    /// One value from every rank, in rank order.
    std::vector<std::uint64_t> allgather(std::uint64_t value);
    /// Waits until every rank has arrived.
    void barrier(const std::string& what);

    /// Ends the whole job at once after printing `message` (MPI_Abort with `exit_code`); on a group of one, only
    /// returns. For errors one rank meets that the others cannot know of (they would wait for it until the deadline).
    void abort_job(const std::string& message, int exit_code);

private:
    ProcessGroup() = default;
    void start_thread();
    void serve();

    struct Job {
        std::string what;
        std::function<void(Mpi&)> run;
        std::promise<void> done;
    };
    int rank_ = 0;
    int size_ = 1;
    int local_size_ = 1;
    double timeout_s_ = 300;
    bool initialised_mpi_ = false;
    std::unique_ptr<Mpi> mpi_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::thread thread_;
};

/// What a job can do on the communication thread: start non-blocking MPI operations and wait for them with the
/// group's deadline and fault report. Defined in process_group.cpp (it holds the MPI state).
class ProcessGroup::Mpi {
public:
    explicit Mpi(ProcessGroup& group);
    ~Mpi();
    // Each starts the operation; wait() finishes it. Counts are in elements of the named type.
    PendingRequest iallreduce_sum(std::span<float> values);
    PendingRequest iallreduce_sum(std::span<double> values);
    PendingRequest iallreduce_min(std::span<double> values);
    PendingRequest iallreduce_max(std::span<double> values);
    PendingRequest ibroadcast(std::span<std::byte> bytes);
    /// Every rank sends `send.size() / size` bytes to each rank and receives as many from each, in rank order.
    PendingRequest ialltoall(std::span<const std::byte> send, std::span<std::byte> receive);
    /// Every rank's `send` (equal sizes) lands in `receive`, in rank order.
    PendingRequest iallgather(std::span<const std::byte> send, std::span<std::byte> receive);
    PendingRequest ibarrier();
    /// Waits for `request` (which it frees) with the deadline; past it, reports who is missing and ends the job.
    void wait(PendingRequest request);

    /// Starts a collective: announces it to the fault report. Called by the group before each job.
    void arrive(std::uint64_t sequence, const std::string& what);
    /// Settles the announcements at the end (after a final barrier).
    void finish();
    /// Reads the peers' notices and sends a heartbeat if one is due (the group calls it while idle).
    void keep_alive();
    double heartbeat_s() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace dojo::runtime
