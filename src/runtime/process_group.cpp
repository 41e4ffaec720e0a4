#include "dojo/runtime/process_group.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>
#include <fmt/format.h>

#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kArrivalTag = 17;

int env_int(const char* name, int fallback) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

bool launched_by_mpi() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
           std::getenv("PMI_RANK") != nullptr;
}

static_assert(sizeof(MPI_Request) <= sizeof(std::uint64_t), "an MPI_Request must fit a PendingRequest");

PendingRequest pending(MPI_Request request) {
    PendingRequest p;
    std::memcpy(&p.handle, &request, sizeof(MPI_Request));
    return p;
}

MPI_Request mpi_request(PendingRequest p) {
    MPI_Request request;
    std::memcpy(&request, &p.handle, sizeof(MPI_Request));
    return request;
}

void check_mpi(int code, const char* call) {
    if (code != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        MPI_Error_string(code, text, &length);
        throw Error(fmt::format("MPI: {} failed: {}", call, std::string(text, static_cast<std::size_t>(length))));
    }
}

int as_count(std::size_t n, const char* what) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw Error(fmt::format("MPI: {} of {} elements is more than one message can carry", what, n));
    }
    return static_cast<int>(n);
}

std::string rank_list(const std::vector<int>& ranks) {
    std::string text = ranks.size() == 1 ? "rank " : "ranks ";
    for (std::size_t i = 0; i < ranks.size(); ++i) {
        text += (i == 0 ? "" : i + 1 == ranks.size() ? " and " : ", ") + std::to_string(ranks[i]);
    }
    return text;
}

// An in-place MPI_Iallreduce of `count` values of `type` over `comm`.
PendingRequest iallreduce_in_place(MPI_Comm comm, void* values, std::size_t count, MPI_Datatype type, MPI_Op op) {
    MPI_Request r;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, as_count(count, "an all-reduce"), type, op, comm, &r),
              "MPI_Iallreduce");
    return pending(r);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The communication thread's MPI state: two duplicated communicators (collectives, and the arrival notices, so that
// neither can match the other's messages) and the arrival bookkeeping of the fault report.

struct ProcessGroup::Mpi::State {
    MPI_Comm data = MPI_COMM_NULL;
    MPI_Comm notices = MPI_COMM_NULL;
    int rank = 0;
    int size = 1;
    double timeout_s = 300;
    std::uint64_t sequence = 0;  // the collective being run
    std::string what;
    // Rank 0 hears from every peer, the others from rank 0: [peer] the latest collective it reported reaching.
    std::vector<std::uint64_t> arrived;
    std::vector<std::uint64_t> incoming;  // receive buffers
    std::vector<MPI_Request> receives;    // one posted receive per peer heard from (MPI_REQUEST_NULL otherwise)
    struct Outgoing {
        MPI_Request request = MPI_REQUEST_NULL;
        std::unique_ptr<std::uint64_t> value;
    };
    std::vector<Outgoing> sends;
    // Heartbeats: every rank re-sends its latest sequence to the ranks it announces to at least every
    // heartbeat_s, from the communication thread (also while idle), so a stopped process is told from a slow one.
    double heartbeat_s = 1;
    Clock::time_point last_sent = Clock::now();
    std::vector<Clock::time_point> last_heard;  // [peer]
    bool finished = false;

    std::vector<int> peers;  // the ranks this one hears from and announces to: all others for rank 0, else 0
    const std::vector<int>& peers_heard() const { return peers; }

    void post_receive(int peer) {
        check_mpi(MPI_Irecv(&incoming[static_cast<std::size_t>(peer)], 1, MPI_UINT64_T, peer, kArrivalTag, notices,
                            &receives[static_cast<std::size_t>(peer)]),
                  "MPI_Irecv");
    }

    void poll_arrivals() {
        for (const int peer : peers_heard()) {
            auto p = static_cast<std::size_t>(peer);
            int done = 0;
            while (receives[p] != MPI_REQUEST_NULL) {
                check_mpi(MPI_Test(&receives[p], &done, MPI_STATUS_IGNORE), "MPI_Test");
                if (!done) {
                    break;
                }
                arrived[p] = std::max(arrived[p], incoming[p]);
                last_heard[p] = Clock::now();
                post_receive(peer);
            }
        }
    }

    // Sends `value` (the latest sequence reached) to every peer.
    void announce(std::uint64_t value) {
        std::erase_if(sends, [](Outgoing& o) {
            int done = 0;
            check_mpi(MPI_Test(&o.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
            return done != 0;
        });
        for (const int peer : peers) {
            Outgoing o;
            o.value = std::make_unique<std::uint64_t>(value);
            check_mpi(MPI_Isend(o.value.get(), 1, MPI_UINT64_T, peer, kArrivalTag, notices, &o.request), "MPI_Isend");
            sends.push_back(std::move(o));
        }
        last_sent = Clock::now();
    }
};

ProcessGroup::Mpi::Mpi(ProcessGroup& group) : state_(std::make_unique<State>()) {
    State& s = *state_;
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.data), "MPI_Comm_dup");
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &s.notices), "MPI_Comm_dup");
    s.rank = group.rank();
    s.size = group.size();
    s.timeout_s = group.timeout_s();
    const auto n = static_cast<std::size_t>(s.size);
    s.arrived.assign(n, 0);
    s.incoming.assign(n, 0);
    s.receives.assign(n, MPI_REQUEST_NULL);
    s.last_heard.assign(n, Clock::now());
    s.heartbeat_s = std::min(1.0, s.timeout_s / 8);
    for (int p = 0; p < s.size; ++p) {
        if (p != s.rank && (s.rank == 0 || p == 0)) {
            s.peers.push_back(p);
        }
    }
    for (const int peer : s.peers_heard()) {
        s.post_receive(peer);
    }
}

ProcessGroup::Mpi::~Mpi() = default;

void ProcessGroup::Mpi::arrive(std::uint64_t sequence, const std::string& what) {
    State& s = *state_;
    s.sequence = sequence;
    s.what = what;
    s.announce(sequence);
}

void ProcessGroup::Mpi::keep_alive() {
    State& s = *state_;
    if (s.finished) {
        return;
    }
    s.poll_arrivals();
    if (std::chrono::duration<double>(Clock::now() - s.last_sent).count() >= s.heartbeat_s) {
        s.announce(s.sequence);
    }
}

double ProcessGroup::Mpi::heartbeat_s() const { return state_->heartbeat_s; }

void ProcessGroup::Mpi::finish() {
    State& s = *state_;
    s.finished = true;
    // Every rank's last announcement (of the final barrier) is on its way: receive up to it, so that no message is
    // left unmatched, then take down the posted receives.
    for (const int peer : s.peers_heard()) {
        auto p = static_cast<std::size_t>(peer);
        while (s.arrived[p] < s.sequence) {
            check_mpi(MPI_Wait(&s.receives[p], MPI_STATUS_IGNORE), "MPI_Wait");
            s.arrived[p] = std::max(s.arrived[p], s.incoming[p]);
            s.post_receive(peer);
        }
        check_mpi(MPI_Cancel(&s.receives[p]), "MPI_Cancel");
        check_mpi(MPI_Wait(&s.receives[p], MPI_STATUS_IGNORE), "MPI_Wait");
    }
    for (State::Outgoing& o : s.sends) {
        check_mpi(MPI_Wait(&o.request, MPI_STATUS_IGNORE), "MPI_Wait");
    }
    s.sends.clear();
    MPI_Comm_free(&s.data);
    MPI_Comm_free(&s.notices);
}

PendingRequest ProcessGroup::Mpi::iallreduce_sum(std::span<float> values) {
    return iallreduce_in_place(state_->data, values.data(), values.size(), MPI_FLOAT, MPI_SUM);
}

PendingRequest ProcessGroup::Mpi::iallreduce_sum(std::span<double> values) {
    return iallreduce_in_place(state_->data, values.data(), values.size(), MPI_DOUBLE, MPI_SUM);
}

PendingRequest ProcessGroup::Mpi::iallreduce_min(std::span<double> values) {
    return iallreduce_in_place(state_->data, values.data(), values.size(), MPI_DOUBLE, MPI_MIN);
}

PendingRequest ProcessGroup::Mpi::iallreduce_max(std::span<double> values) {
    return iallreduce_in_place(state_->data, values.data(), values.size(), MPI_DOUBLE, MPI_MAX);
}

PendingRequest ProcessGroup::Mpi::ibroadcast(std::span<std::byte> bytes) {
    MPI_Request r;
    check_mpi(MPI_Ibcast(bytes.data(), as_count(bytes.size(), "a broadcast"), MPI_BYTE, 0, state_->data, &r),
              "MPI_Ibcast");
    return pending(r);
}

PendingRequest ProcessGroup::Mpi::ialltoall(std::span<const std::byte> send, std::span<std::byte> receive) {
    const auto n = static_cast<std::size_t>(state_->size);
    DOJO_CHECK(send.size() % n == 0 && receive.size() == send.size()) << "all-to-all sizes";
    const int each = as_count(send.size() / n, "an all-to-all");
    MPI_Request r;
    check_mpi(MPI_Ialltoall(send.data(), each, MPI_BYTE, receive.data(), each, MPI_BYTE, state_->data, &r),
              "MPI_Ialltoall");
    return pending(r);
}

PendingRequest ProcessGroup::Mpi::iallgather(std::span<const std::byte> send, std::span<std::byte> receive) {
    DOJO_CHECK(receive.size() == send.size() * static_cast<std::size_t>(state_->size)) << "all-gather sizes";
    const int each = as_count(send.size(), "an all-gather");
    MPI_Request r;
    check_mpi(MPI_Iallgather(send.data(), each, MPI_BYTE, receive.data(), each, MPI_BYTE, state_->data, &r),
              "MPI_Iallgather");
    return pending(r);
}

PendingRequest ProcessGroup::Mpi::ibarrier() {
    MPI_Request r;
    check_mpi(MPI_Ibarrier(state_->data, &r), "MPI_Ibarrier");
    return pending(r);
}

void ProcessGroup::Mpi::wait(PendingRequest p) {
    State& s = *state_;
    MPI_Request request = mpi_request(p);
    // Rank 0 reports first; the others give it a grace period to do so before they report rank 0 itself.
    const double grace_s = s.rank == 0 ? 0.0 : std::min(s.timeout_s, 5.0);
    const auto deadline = Clock::now() + std::chrono::duration<double>(s.timeout_s + grace_s);
    // Progress of a non-blocking collective happens inside MPI_Test (OpenMPI has no progress thread): every protocol
    // step of a transfer waits for the next test, so test without pause, but yield the core between tests so that
    // a training thread that shares it runs. A sleep here instead stalled large all-reduces 2-5x on the
    // development VM (docs/distributed.md). After a second without completion (a rank far behind), sleep: the
    // waiting costs nothing then.
    const auto started = Clock::now();
    for (int round = 0;; ++round) {
        int done = 0;
        check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) {
            return;
        }
        keep_alive();
        if (round > 64) {
            if (Clock::now() - started < std::chrono::seconds(1)) {
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        }
        if (Clock::now() < deadline) {
            continue;
        }
        // Who is to blame: ranks that have sent nothing for several heartbeats (stopped, or the whole process
        // hung), then ranks alive but not at this collective (stuck or slow in their own work).
        std::vector<int> silent;
        std::vector<int> missing;
        double silent_s = 0;
        const auto now = Clock::now();
        for (const int peer : s.peers_heard()) {
            const auto at = static_cast<std::size_t>(peer);
            const double quiet_s = std::chrono::duration<double>(now - s.last_heard[at]).count();
            if (quiet_s > 3 * s.heartbeat_s) {
                silent.push_back(peer);
                silent_s = std::max(silent_s, quiet_s);
            } else if (s.arrived[at] < s.sequence) {
                missing.push_back(peer);
            }
        }
        std::string who;
        if (!silent.empty()) {
            who = fmt::format("{} {} sent nothing for {:.1f} s (stopped, or its process hung)", rank_list(silent),
                              silent.size() == 1 ? "has" : "have", silent_s);
        }
        if (!missing.empty()) {
            who += (who.empty() ? "" : "; ") + rank_list(missing) +
                   " never reached it (stuck, or far slower than the others)";
        }
        if (who.empty()) {
            who = s.rank == 0 ? "every rank reached it and is alive, but it did not complete: the network between "
                                "the ranks may have stopped"
                              : "rank 0 reached it and is alive but did not report the missing ranks";
        }
        const std::string message =
            fmt::format("dojo: rank {}: {} has waited {:.0f} s for the other ranks; {}. Stopping the whole job "
                        "(--timeout sets the limit).\n",
                        s.rank, s.what, s.timeout_s + grace_s, who);
        std::fputs(message.c_str(), stderr);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, kTimeoutExitCode);
        std::_Exit(kTimeoutExitCode);  // MPI_Abort does not return; if it did, the job must still end
    }
}

// ---------------------------------------------------------------------------------------------------------------

std::unique_ptr<ProcessGroup> ProcessGroup::single() { return std::unique_ptr<ProcessGroup>(new ProcessGroup()); }

std::unique_ptr<ProcessGroup> ProcessGroup::from_environment(double timeout_s) {
    if (!(timeout_s > 0) || std::isinf(timeout_s)) {
        throw UsageError(fmt::format("--timeout must be a positive number of seconds, got {}", timeout_s));
    }
    std::unique_ptr<ProcessGroup> group = single();
    group->timeout_s_ = timeout_s;
    if (!launched_by_mpi()) {
        return group;
    }
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    group->initialised_mpi_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        group->initialised_mpi_ = false;
        throw Error("MPI: this MPI library does not allow calls from a communication thread "
                    "(MPI_THREAD_SERIALIZED); use Debian's OpenMPI");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &group->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &group->size_);
    group->local_size_ = std::max(1, env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1));
    group->mpi_ = std::make_unique<Mpi>(*group);
    group->start_thread();
    return group;
}

void ProcessGroup::start_thread() {
    thread_ = std::thread([this] { serve(); });
}

void ProcessGroup::serve() {
    std::uint64_t sequence = 0;
    const auto heartbeat = std::chrono::duration<double>(mpi_->heartbeat_s());
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            if (!changed_.wait_for(lock, heartbeat, [&] { return stopping_ || !queue_.empty(); })) {
                lock.unlock();
                mpi_->keep_alive();  // idle while the training thread computes: tell the others this rank lives
                continue;
            }
            if (queue_.empty()) {
                return;
            }
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            mpi_->arrive(++sequence, job.what);
            job.run(*mpi_);
            job.done.set_value();
        } catch (...) {
            job.done.set_exception(std::current_exception());
        }
    }
}

std::future<void> ProcessGroup::submit(std::string what, std::function<void(Mpi&)> job) {
    if (!mpi_) {
        DOJO_CHECK(false) << "collective '" << what << "' submitted to a group without MPI";
    }
    Job queued{std::move(what), std::move(job), {}};
    std::future<void> done = queued.done.get_future();
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(queued));
    }
    changed_.notify_one();
    return done;
}

ProcessGroup::~ProcessGroup() {
    if (!mpi_) {
        return;
    }
    if (std::uncaught_exceptions() > 0) {
        // Unwinding: the other ranks cannot know, so no orderly goodbye is possible; the caller ends the job
        // (abort_job). Leave MPI as it is rather than wait on peers at a barrier.
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            queue_.clear();
        }
        changed_.notify_one();
        thread_.detach();
        return;
    }
    try {
        submit("the end of the run", [](Mpi& mpi) { mpi.wait(mpi.ibarrier()); }).get();
        submit("", [](Mpi& mpi) { mpi.finish(); }).get();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dojo: rank %d: leaving MPI: %s\n", rank_, e.what());
    }
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_one();
    thread_.join();
    mpi_.reset();
    if (initialised_mpi_) {
        MPI_Finalize();
    }
}

void ProcessGroup::allreduce_sum(std::span<double> values) {
    if (!distributed()) {
        return;
    }
    submit("an all-reduce of the step's figures", [values](Mpi& mpi) { mpi.wait(mpi.iallreduce_sum(values)); }).get();
}

void ProcessGroup::allreduce_min(std::span<double> values) {
    if (!distributed()) {
        return;
    }
    submit("a minimum over the ranks", [values](Mpi& mpi) { mpi.wait(mpi.iallreduce_min(values)); }).get();
}

void ProcessGroup::allreduce_max(std::span<double> values) {
    if (!distributed()) {
        return;
    }
    submit("a maximum over the ranks", [values](Mpi& mpi) { mpi.wait(mpi.iallreduce_max(values)); }).get();
}

void ProcessGroup::broadcast(std::span<std::byte> bytes) {
    if (!distributed()) {
        return;
    }
    submit("a broadcast from rank 0", [bytes](Mpi& mpi) { mpi.wait(mpi.ibroadcast(bytes)); }).get();
}

void ProcessGroup::broadcast(std::span<float> values) { broadcast(std::as_writable_bytes(values)); }

std::vector<std::uint64_t> ProcessGroup::allgather(std::uint64_t value) {
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_), value);
    if (!distributed()) {
        return all;
    }
    submit("an all-gather", [&](Mpi& mpi) {
        mpi.wait(mpi.iallgather(std::as_bytes(std::span(&value, 1)), std::as_writable_bytes(std::span(all))));
    }).get();
    return all;
}

void ProcessGroup::barrier(const std::string& what) {
    if (!distributed()) {
        return;
    }
    submit(what, [](Mpi& mpi) { mpi.wait(mpi.ibarrier()); }).get();
}

void ProcessGroup::abort_job(const std::string& message, int exit_code) {
    if (!initialised_mpi_) {
        return;
    }
    std::fputs(message.c_str(), stderr);
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
}

}  // namespace dojo::runtime
