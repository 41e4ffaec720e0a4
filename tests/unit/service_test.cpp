// The service's parts without a server: tokens, job requests, the scheduler's policy, the SQLite store, and how Slurm's
// answers are read.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "dojo/service/job_spec.h"
#include "dojo/machine/machine.h"
#include "dojo/service/scheduler.h"
#include "dojo/service/sim_durations.h"
#include "dojo/service/slurm.h"
#include "dojo/service/tile_view.h"
#include "dojo/service/store.h"
#include "dojo/service/tokens.h"
#include "dojo/util/error.h"
#include "dojo/util/process.h"

namespace dojo::service {
namespace {

TEST(Tokens, AreRandomHexAndHashToAFixedDigest) {
    const std::string a = new_token(), b = new_token();
    EXPECT_EQ(a.size(), 64u);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(token_hash(a), token_hash(a));
    EXPECT_NE(token_hash(a), token_hash(b));
    // BLAKE2b-256 of the empty string (RFC 7693's algorithm; the digest libsodium's crypto_generichash gives).
    EXPECT_EQ(token_hash(""), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

TEST(JobRequest, TakesTheCliOptionsAsArgsAndBuildsTheCommandLine) {
    const JobSpec spec = parse_job_request(
        R"({"kind": "train", "args": {"model": "mlp", "epochs": 2, "train_limit": 1280, "lr": 0.01,
            "sample_shape": [1, 28, 28]}, "priority": "high", "slots": 2})", 4);
    EXPECT_EQ(spec.kind, "train");
    EXPECT_EQ(spec.priority, Priority::High);
    EXPECT_EQ(spec.slots, 2);
    const std::vector<std::string> argv = job_argv(spec, "/bin/dojo", "/s/jobs/7", true);
    const std::vector<std::string> expected = {"/bin/dojo", "train", "mlp", "--epochs", "2", "--lr", "0.01",
                                               "--sample-shape", "1,28,28", "--train-limit", "1280", "--checkpoint",
                                               "/s/jobs/7/checkpoint", "--metrics", "/s/jobs/7/metrics.jsonl",
                                               "--threads", "2", "--resume", "--json"};
    EXPECT_EQ(argv, expected);
    EXPECT_EQ(job_spec_from_json(to_json(spec)).args, spec.args);
    // Outputs are the service's: a sim job's trace and a trained ONNX model land in the job's artifacts.
    const std::vector<std::string> sim = job_argv(
        parse_job_request(R"({"kind": "sim", "args": {"model": "mlp", "machine": "tile", "batch": 8}})", 1), "/d",
        "/j", false);
    EXPECT_EQ(std::vector<std::string>(sim.end() - 3, sim.end()),
              (std::vector<std::string>{"--trace", "/j/artifacts/trace.json", "--json"}));
    const std::vector<std::string> onnx =
        job_argv(parse_job_request(R"({"kind": "train", "args": {"model": "net.onnx"}})", 1), "/d", "/j", false);
    EXPECT_NE(std::find(onnx.begin(), onnx.end(), "/j/artifacts/model.onnx"), onnx.end());
    // A train job on MPI ranks: mpirun, its ranks dying with it, each rank with slots / ranks threads.
    const JobSpec ranked = parse_job_request(R"({"kind": "train", "args": {"model": "mlp"}, "slots": 4, "ranks": 2})", 4);
    EXPECT_EQ(ranked.ranks, 2);
    EXPECT_EQ(job_spec_from_json(to_json(ranked)).ranks, 2);
    const std::vector<std::string> mpi = job_argv(ranked, "/d", "/j", false);
    EXPECT_EQ(std::vector<std::string>(mpi.begin(), mpi.begin() + 3), (std::vector<std::string>{"mpirun", "-np", "2"}));
    EXPECT_NE(std::find(mpi.begin(), mpi.end(), "DOJO_DIE_WITH_PARENT=1"), mpi.end());
    const auto threads = std::find(mpi.begin(), mpi.end(), "--threads");
    ASSERT_NE(threads, mpi.end());
    EXPECT_EQ(*(threads + 1), "2");
}

TEST(JobRequest, RefusesWhatIsNotAJobNamingTheField) {
    const auto refusal = [](std::string_view body) {
        try {
            parse_job_request(body, 2);
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(refusal("not json").find("JSON object"), std::string::npos);
    // Values the command would refuse, refused with its own parsers' messages.
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp", "precision": "fp64"}})").find("fp64"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "sim", "args": {"model": "mlp", "machine": "d1", "batch": 8, "strategy": "dp=0"}})")
                  .find("dp"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp", "lr": -1}})").find("args.lr"), std::string::npos);
    EXPECT_EQ(refusal(R"({"kind": "sim", "args": {"model": "mlp", "machine": "d1", "batch": 8, "strategy": "auto"}})"),
              "accepted");
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp"}, "slots": 2, "ranks": 3})").find("ranks"),
              std::string::npos);  // more ranks than slots
    EXPECT_NE(refusal(R"({"kind": "sim", "args": {"model": "mlp", "machine": "d1", "batch": 8}, "slots": 2,
                          "ranks": 2})").find("only a train job"), std::string::npos);
    EXPECT_NE(refusal("[1]").find("JSON object"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp"}, "colour": 1})").find("unknown field 'colour'"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "rm", "args": {"model": "mlp"}})").find("kind"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {}})").find("args.model"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "--help"}})").find("args.model"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp", "out": "/etc/x"}})").find("args.out"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp", "epochs": {"a": 1}}})").find("args.epochs"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp", "strict": false}})").find("args.strict"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp"}, "slots": 3})").find("1 to 2"), std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "train", "args": {"model": "mlp"}, "priority": "urgent"})").find("urgent"),
              std::string::npos);
    EXPECT_NE(refusal(R"({"kind": "sim", "args": {"model": "mlp", "batch": 8}})").find("args.machine"),
              std::string::npos);
    EXPECT_NE(refusal(std::string(70000, ' ')).find("bytes"), std::string::npos);
}

std::vector<std::int64_t> pick(const std::vector<QueuedJob>& queued, const std::vector<RunningShare>& running,
                               int slots, const std::map<std::string, int>& limits = {}) {
    return jobs_to_start(queued, running, slots, limits);
}

TEST(Scheduler, HigherPriorityFirstThenTheTenantHoldingLessThenSubmissionOrder) {
    const std::vector<QueuedJob> queued = {{1, "a", Priority::Low, 1, 1.0},
                                           {2, "a", Priority::Normal, 1, 2.0},
                                           {3, "b", Priority::High, 1, 3.0},
                                           {4, "a", Priority::Normal, 1, 4.0},
                                           {5, "b", Priority::Normal, 1, 5.0}};
    // Three slots: b's high job, then normal jobs alternating by what each tenant holds (b holds one: a goes first).
    EXPECT_EQ(pick(queued, {}, 3), (std::vector<std::int64_t>{3, 2, 4}));
    // With a running on two slots already, b's normal job comes before a's second.
    EXPECT_EQ(pick(queued, {{"a", 2}}, 5), (std::vector<std::int64_t>{3, 5, 2}));
}

// Fair share by recent use: the tenant that used less lately goes first within a class, whatever it holds now.
TEST(Scheduler, WithinAClassTheTenantThatUsedLessLatelyGoesFirst) {
    const std::vector<QueuedJob> queued = {{1, "a", Priority::Normal, 1, 1.0},
                                           {2, "b", Priority::Normal, 1, 2.0},
                                           {3, "b", Priority::High, 1, 3.0}};
    constexpr double kHour = 3600;
    // a ran 4 slots for the last hour; b ran 4 slots a day ago for an hour: a's use weighs more (half-life 1 hour).
    const RecentUse use = recent_use({{"a", 4, 9 * kHour, 10 * kHour}, {"b", 4, -15 * kHour, -14 * kHour}},
                                     10 * kHour, kHour);
    EXPECT_GT(use.at("a"), 1000 * use.at("b"));
    EXPECT_NEAR(use.at("a"), 4 * kHour / std::log(2.0) * 0.5, 1e-6 * use.at("a"));  // the closed form
    EXPECT_EQ(jobs_to_start(queued, {}, 3, {}, Policy::Priority, use), (std::vector<std::int64_t>{3, 2, 1}));
    EXPECT_EQ(jobs_to_start(queued, {}, 3, {}, Policy::Priority, {}), (std::vector<std::int64_t>{3, 1, 2}));
    // The same use kept up to date event by event gives the closed form's figures.
    RecentUse stepped;
    advance_use(stepped, {{"b", 4, 0, Priority::Normal, 0}}, -15 * kHour, -14.5 * kHour, kHour);
    advance_use(stepped, {{"b", 4, 0, Priority::Normal, 0}}, -14.5 * kHour, -14 * kHour, kHour);
    advance_use(stepped, {{"a", 4, 0, Priority::Normal, 0}}, -14 * kHour, -14 * kHour, kHour);
    advance_use(stepped, {}, -14 * kHour, 9 * kHour, kHour);
    advance_use(stepped, {{"a", 4, 0, Priority::Normal, 0}}, 9 * kHour, 10 * kHour, kHour);
    EXPECT_NEAR(stepped.at("a"), use.at("a"), 1e-9 * use.at("a"));
    EXPECT_NEAR(stepped.at("b"), use.at("b"), 1e-9 * use.at("b") + 1e-12);
}

TEST(Scheduler, AJobStartsWithAllItsSlotsOrNotAndSmallerJobsOfItsClassBackfill) {
    const std::vector<QueuedJob> queued = {{1, "a", Priority::Normal, 4, 1.0},
                                           {2, "b", Priority::Normal, 1, 2.0},
                                           {3, "c", Priority::Low, 1, 3.0}};
    // Two slots free: the 4-slot job waits; the 1-slot normal job backfills; the low job waits behind the normal one.
    EXPECT_EQ(pick(queued, {{"x", 2}}, 4), (std::vector<std::int64_t>{2}));
    EXPECT_EQ(pick(queued, {}, 4), (std::vector<std::int64_t>{1}));
}

TEST(Scheduler, ATenantStaysWithinItsSlotsWithoutHoldingBackOthers) {
    const std::vector<QueuedJob> queued = {{1, "a", Priority::High, 2, 1.0}, {2, "b", Priority::Low, 1, 2.0}};
    EXPECT_EQ(pick(queued, {{"a", 1}}, 8, {{"a", 2}}), (std::vector<std::int64_t>{2}));
    EXPECT_EQ(pick(queued, {}, 8, {{"a", 2}}), (std::vector<std::int64_t>{1, 2}));
}

class StoreTest : public ::testing::Test {
protected:
    std::string dir = (std::filesystem::temp_directory_path() / ("dojo-store-" + std::to_string(getpid()))).string();
    void SetUp() override { std::filesystem::remove_all(dir); }
    void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(StoreTest, TenantsAreFoundByTokenAndJobsSurviveReopening) {
    std::string token;
    std::int64_t id = 0;
    {
        Store store(dir);
        token = store.add_tenant({"team-a", false, 2, 2});
        EXPECT_THROW(store.add_tenant({"team-a", false, 1, 1}), UsageError);
        EXPECT_THROW(store.add_tenant({"no spaces", false, 1, 1}), UsageError);
        const Tenant t = *store.tenant_by_token(token);
        EXPECT_EQ(t.name, "team-a");
        EXPECT_FALSE(store.tenant_by_token(token + "0"));
        id = store.submit(t, parse_job_request(R"({"kind": "train", "args": {"model": "mlp"}})", 2), 10.0);
        store.submit(t, parse_job_request(R"({"kind": "train", "args": {"model": "lenet"}})", 2), 11.0);
        EXPECT_THROW(store.submit(t, parse_job_request(R"({"kind": "train", "args": {"model": "mlp"}})", 2), 12.0),
                     UsageError);  // max_queued 2
        store.mark_running(id, 20.0);
    }
    Store reopened(dir);  // as after kill -9: what was committed is there
    EXPECT_EQ(reopened.job(id)->state, "running");
    EXPECT_EQ(reopened.recover_interrupted(), 1);
    const Job job = *reopened.job(id);
    EXPECT_EQ(job.state, "queued");
    EXPECT_EQ(job.attempts, 1);
    EXPECT_EQ(job.spec.args["model"], "mlp");
    EXPECT_EQ(reopened.jobs("team-a").size(), 2u);
    EXPECT_EQ(reopened.jobs("other").size(), 0u);
    EXPECT_EQ(reopened.cancel_if_queued(id, 30.0), "cancelled");
    EXPECT_EQ(reopened.jobs_in_state("queued").size(), 1u);
}

}  // namespace
}  // namespace dojo::service

namespace dojo::service {
namespace {

TEST(Scheduler, AWaitingHighPriorityJobPreemptsTheLowestNewestJobsItNeeds) {
    const std::vector<RunningShare> running = {{"a", 1, 10, Priority::Low, 1.0},
                                               {"b", 1, 11, Priority::Low, 2.0},
                                               {"c", 1, 12, Priority::Normal, 0.5}};
    // One slot needed: the newest low job goes.
    EXPECT_EQ(jobs_to_preempt({{1, "d", Priority::High, 1, 5.0}}, running, 3, {}), (std::vector<std::int64_t>{11}));
    // Three needed: both low jobs and the normal one.
    EXPECT_EQ(jobs_to_preempt({{1, "d", Priority::High, 3, 5.0}}, running, 3, {}),
              (std::vector<std::int64_t>{11, 10, 12}));
    // A normal job may stop only the low ones; two slots are enough.
    EXPECT_EQ(jobs_to_preempt({{1, "d", Priority::Normal, 2, 5.0}}, running, 3, {}),
              (std::vector<std::int64_t>{11, 10}));
    // Nothing to gain: room enough, no lower job, or not enough even with all of them.
    EXPECT_TRUE(jobs_to_preempt({{1, "d", Priority::High, 1, 5.0}}, running, 4, {}).empty());
    EXPECT_TRUE(jobs_to_preempt({{1, "d", Priority::Low, 1, 5.0}}, running, 3, {}).empty());
    EXPECT_TRUE(jobs_to_preempt({{1, "d", Priority::Normal, 3, 5.0}}, running, 3, {}).empty());
    // A job waiting on its own tenant's quota stops no one.
    EXPECT_TRUE(jobs_to_preempt({{1, "a", Priority::High, 1, 5.0}}, running, 3, {{"a", 1}}).empty());
}

}  // namespace
}  // namespace dojo::service

#include <fstream>

#include "dojo/service/replay.h"
#include "dojo/service/trace.h"

namespace dojo::service {
namespace {

TraceJob job(const std::string& id, const std::string& user, int devices, double submit, double duration,
             Priority priority = Priority::Normal) {
    return TraceJob{id, user, devices, submit, duration, priority};
}

TEST(Replay, FifoBlocksBehindTheHeadWhereBackfillDoesNot) {
    // 4 devices: a 3-wide job runs 0..100; a 4-wide job waits for it; a 1-wide job could use the free device.
    const std::vector<TraceJob> jobs = {job("a", "u", 3, 0, 100), job("b", "u", 4, 1, 50), job("c", "u", 1, 2, 10)};
    const ReplayResult fifo = replay(jobs, {4, Policy::Fifo, 1800});
    const ReplayResult backfill = replay(jobs, {4, Policy::FairShare, 1800});
    // FIFO: c waits behind b (starts at 150, after b's 100..150); fair share backfills c at once (2..12).
    EXPECT_DOUBLE_EQ(fifo.classes.at(Priority::Normal).completion_p99_s, 158.0);  // c: submitted 2, ends 160
    EXPECT_DOUBLE_EQ(fifo.span_s, 160.0);
    EXPECT_DOUBLE_EQ(backfill.span_s, 150.0);
    // Busy device-seconds 3*100 + 4*50 + 1*10 = 510 over 4 devices and the whole span.
    EXPECT_DOUBLE_EQ(fifo.utilization_with_drain, 510.0 / (4 * 160.0));
    EXPECT_DOUBLE_EQ(backfill.utilization_with_drain, 510.0 / (4 * 150.0));
}

TEST(Replay, APreemptedJobLosesTheWorkSinceItsLastCheckpoint) {
    // 2 devices: a low job of 2 runs from 0 for 1000 s; at 250 a high job of 2 arrives and preempts it. With a
    // checkpoint every 100 s the low job keeps 200 s of work and loses 50 s on 2 devices; it runs its 800 s left
    // after the high job's 300 s (250..550): done at 1350.
    const std::vector<TraceJob> jobs = {job("low", "a", 2, 0, 1000, Priority::Low),
                                        job("high", "b", 2, 250, 300, Priority::High)};
    const ReplayResult r = replay(jobs, {2, Policy::Priority, 100});
    EXPECT_EQ(r.preemptions, 1);
    EXPECT_DOUBLE_EQ(r.lost_device_s, 100.0);
    EXPECT_DOUBLE_EQ(r.classes.at(Priority::High).wait_p50_s, 0.0);
    EXPECT_DOUBLE_EQ(r.classes.at(Priority::Low).completion_p50_s, 1350.0);
    // Without preemption (fair share) the high job waits for the low one.
    EXPECT_DOUBLE_EQ(replay(jobs, {2, Policy::FairShare, 100}).classes.at(Priority::High).wait_p50_s, 750.0);
    EXPECT_EQ(replay({job("wide", "a", 3, 0, 10)}, {2, Policy::Priority, 100}).too_large, 1);
}

TEST(Trace, ReadsTheHeliosLayoutAndGeneratesItsOwn) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("dojo-trace-" + std::to_string(getpid()) + ".csv")).string();
    std::ofstream(path) << "job_id,user,vc,gpu_num,submit_time,duration,state\n"
                           "j1,alice,vc1,8,2020-04-01 08:00:10,600,COMPLETED\n"
                           "j2,bob,vc2,0,2020-04-01 08:00:00,60,COMPLETED\n"  // no GPU: left out
                           "j3,bob,vc2,2,2020-04-01 08:00:00,30,COMPLETED\n";
    const std::vector<TraceJob> jobs = read_trace(path);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].id, "j3");  // in submission order, from the first
    EXPECT_DOUBLE_EQ(jobs[0].submit_s, 0.0);
    EXPECT_DOUBLE_EQ(jobs[1].submit_s, 10.0);
    EXPECT_EQ(jobs[1].devices, 8);
    EXPECT_EQ(jobs[1].priority, Priority::Normal);
    std::ofstream(path) << "job_id,user,submit_time\nj1,a,0\n";
    EXPECT_THROW(read_trace(path), UsageError);  // no gpu_num, no duration
    std::ofstream(path) << generate_trace({400, 3000, 1.2, 0.84, 7});
    const std::vector<TraceJob> generated = read_trace(path);
    std::filesystem::remove(path);
    ASSERT_EQ(generated.size(), 400u);
    const auto high = std::count_if(generated.begin(), generated.end(),
                                    [](const TraceJob& j) { return j.priority == Priority::High; });
    EXPECT_NEAR(static_cast<double>(high) / 400, 0.84, 0.05);
    double work = 0;
    for (const TraceJob& j : generated) {
        work += j.devices * j.duration_s;
    }
    EXPECT_NEAR(work / (generated.back().submit_s * 3000), 1.2, 0.2);  // the offered load, over the arrivals
    EXPECT_EQ(generate_trace({50, 100, 1.0, 0.5, 3}), generate_trace({50, 100, 1.0, 0.5, 3}));
}

// Philly's job log (Microsoft's cluster_job_log layout): GPUs from the first attempt's machines, run time summed
// over the attempts, jobs that never ran left out; a generated Philly trace holds the Helios one's jobs.
TEST(Trace, ReadsThePhillyLayoutAndGeneratesItsOwn) {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("dojo-philly-" + std::to_string(getpid()) + ".json")).string();
    std::ofstream(path) << R"([
      {"status": "Pass", "vc": "11cb48", "jobid": "application_1", "user": "e9f6bf",
       "submitted_time": "2017-10-07 03:11:19",
       "attempts": [{"start_time": "2017-10-07 03:11:24", "end_time": "2017-10-07 03:15:33",
                     "detail": [{"ip": "m2", "gpus": ["gpu0", "gpu1", "gpu2", "gpu3", "gpu4", "gpu5", "gpu6", "gpu7"]},
                                {"ip": "m3", "gpus": ["gpu0", "gpu1"]}]},
                    {"start_time": "2017-10-07 04:00:00", "end_time": "2017-10-07 04:01:00", "detail": []}]},
      {"status": "Killed", "vc": "11cb48", "jobid": "application_2", "user": "a", "submitted_time": "2017-10-07 03:11:00",
       "attempts": []},
      {"status": "Failed", "vc": "2", "jobid": "application_3", "user": "b", "submitted_time": "2017-10-07 03:10:19",
       "attempts": [{"start_time": "2017-10-07 03:10:30", "end_time": "2017-10-07 03:10:40",
                     "detail": [{"ip": "m1", "gpus": ["gpu0"]}]}]}
    ])";
    const std::vector<TraceJob> jobs = read_trace(path);
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].id, "application_3");
    EXPECT_DOUBLE_EQ(jobs[1].submit_s, 60.0);
    EXPECT_EQ(jobs[1].devices, 10);
    EXPECT_DOUBLE_EQ(jobs[1].duration_s, 249.0 + 60.0);
    EXPECT_EQ(jobs[1].user, "e9f6bf");
    std::ofstream(path) << "[{\"jobid\": 1}]";
    EXPECT_THROW(read_trace(path), UsageError);  // no attempts
    std::ofstream(path) << "[1, 2";
    EXPECT_THROW(read_trace(path), UsageError);  // not JSON
    const TraceMix mix{300, 3000, 1.2, 0.84, 5};
    std::ofstream(path) << generate_trace(mix, TraceLayout::Philly);
    const std::vector<TraceJob> philly = read_trace(path);
    std::ofstream(path) << generate_trace(mix, TraceLayout::Helios);
    const std::vector<TraceJob> helios = read_trace(path);
    std::filesystem::remove(path);
    ASSERT_EQ(philly.size(), helios.size());
    for (std::size_t k = 0; k < philly.size(); ++k) {
        EXPECT_EQ(philly[k].devices, helios[k].devices) << k;
        EXPECT_DOUBLE_EQ(philly[k].duration_s, helios[k].duration_s) << k;
        EXPECT_DOUBLE_EQ(philly[k].submit_s, helios[k].submit_s) << k;
        EXPECT_EQ(philly[k].priority, helios[k].priority) << k;
        EXPECT_EQ(philly[k].user, helios[k].user) << k;
    }
}

// Durations from the simulator: more samples take proportionally longer, more devices less; a job must say what it
// trains.
TEST(Trace, DurationsFromTheSimulatorFollowTheWorkAndTheDevices) {
    const sim::Topology dgx = sim::derive_topology(machine::load_machine("dgx-a100", machine::default_machines_dir()));
    const auto job = [](const std::string& id, const std::string& model, int devices, double samples) {
        TraceJob j;
        j.id = id;
        j.devices = devices;
        j.duration_s = 1;
        j.model = model;
        j.samples = samples;
        j.batch_per_device = 64;
        return j;
    };
    std::vector<TraceJob> jobs = {job("one", "mlp", 1, 64 * 1000), job("double", "mlp", 1, 64 * 2000),
                                  job("r1", "resnet50", 1, 64 * 100), job("r8", "resnet50", 8, 64 * 800),
                                  job("huge", "mlp", 64, 64)};
    const SimDurations timed = durations_from_sim(jobs, dgx);
    EXPECT_EQ(timed.jobs, 4);  // the 64-device job is larger than the DGX: left as it was
    EXPECT_EQ(timed.simulations, 3);
    EXPECT_NEAR(jobs[1].duration_s, 2 * jobs[0].duration_s, 1e-9 * jobs[1].duration_s);
    EXPECT_GT(jobs[0].duration_s, 0.0);
    // Eight GPUs do eight times ResNet-50's work in more than one GPU's time (the all-reduce), far less than 8x.
    EXPECT_GT(jobs[3].duration_s, jobs[2].duration_s);
    EXPECT_LT(jobs[3].duration_s, 1.5 * jobs[2].duration_s);
    EXPECT_DOUBLE_EQ(jobs[4].duration_s, 1.0);
    std::vector<TraceJob> untold = {job("a", "mlp", 1, 64)};
    untold[0].model.clear();
    try {
        durations_from_sim(untold, dgx);
        FAIL() << "a job without a model was timed";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
    }
}

// A plan of 2 replicas x 30 stages on an ExaPOD fills its first 60 dies: tiles 0 and 1 whole, 10 dies of tile 2.
TEST(TileView, APlansDevicesFillTheTilesInReplicaStageOrder) {
    const nlohmann::json view =
        tile_view({{"machine", "exapod"}, {"strategy", "dp=2,tp=1,pp=30,mb=60"}}, machine::default_machines_dir());
    EXPECT_EQ(view["tiles"], 120);
    EXPECT_EQ(view["devices_per_tile"], 25);
    EXPECT_EQ(view["devices_used"], 60);
    ASSERT_EQ(view["tiles_used"].size(), 3u);
    EXPECT_EQ(view["tiles_used"][0]["devices"], 25);
    EXPECT_EQ(view["tiles_used"][0]["stages"].size(), 25u);  // replica 0's stages 0-24
    EXPECT_EQ(view["tiles_used"][1]["replicas"], nlohmann::json({0, 1}));  // replica 0's last stages, replica 1's first
    EXPECT_EQ(view["tiles_used"][2]["devices"], 10);
    EXPECT_THROW(tile_view({{"machine", "dgx-a100"}, {"strategy", "dp=8"}}, machine::default_machines_dir()),
                 UsageError);  // no tiles
    EXPECT_THROW(tile_view({{"step_s", 1}}, machine::default_machines_dir()), UsageError);
}

// Two jobs as Slurm 22.05's `scontrol show job --oneliner` prints them (fields cut down), one preempted and requeued.
TEST(Slurm, ReadsScontrolsJobsAndMapsTheirStates) {
    const std::string text =
        "JobId=7 JobName=dojo-1a2b-3 UserId=root(0) Priority=1 JobState=PENDING Reason=BeginTime Dependency=(null) "
        "Requeue=1 Restarts=1 BatchFlag=1 ExitCode=0:0 Partition=low NumNodes=1 NumCPUs=2 NumTasks=1\n"
        "JobId=8 JobName=dojo-1a2b-4 JobState=FAILED Reason=NonZeroExitCode Restarts=0 ExitCode=2:0 Partition=high "
        "NumCPUs=1\n"
        "JobId=9 JobName=wrap JobState=CANCELLED Reason=None ExitCode=0:15 NumCPUs=1\n";
    const std::vector<SlurmJob> jobs = parse_scontrol_jobs(text);
    ASSERT_EQ(jobs.size(), 3u);
    EXPECT_EQ(jobs[0].id, 7);
    EXPECT_EQ(jobs[0].name, "dojo-1a2b-3");
    EXPECT_EQ(jobs[0].reason, "BeginTime");
    EXPECT_EQ(jobs[0].restarts, 1);
    EXPECT_EQ(jobs[0].cpus, 2);
    EXPECT_EQ(jobs[0].partition, "low");
    EXPECT_EQ(jobs[1].exit_code, 2);
    EXPECT_EQ(jobs[2].exit_code, 128 + 15);  // ended by SIGTERM
    EXPECT_TRUE(parse_scontrol_jobs("No jobs in the system\n").empty());

    EXPECT_EQ(store_state_of(jobs[0], false), "preempted");  // it ran before: Slurm requeued it
    SlurmJob fresh = jobs[0];
    fresh.restarts = 0;
    EXPECT_EQ(store_state_of(fresh, false), "queued");
    EXPECT_EQ(store_state_of(jobs[1], true), "failed");
    EXPECT_EQ(store_state_of(jobs[2], true), "cancelled");
    for (const auto& [slurm, ours] : std::map<std::string, std::string>{{"RUNNING", "running"},
                                                                        {"COMPLETING", "running"},
                                                                        {"COMPLETED", "succeeded"},
                                                                        {"TIMEOUT", "timed_out"},
                                                                        {"PREEMPTED", "preempted"},
                                                                        {"REQUEUED", "preempted"},
                                                                        {"NODE_FAIL", "failed"},
                                                                        {"OUT_OF_MEMORY", "failed"}}) {
        SlurmJob job;
        job.state = slurm;
        EXPECT_EQ(store_state_of(job, true), ours) << slurm;
    }
}

TEST(RunProgram, ReturnsStatusAndBothOutputsAndStopsAtItsTimeLimit) {
    const ProgramResult r = run_program({"sh", "-c", "echo out; echo err >&2; exit 3"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    EXPECT_FALSE(r.timed_out);
    const ProgramResult slow = run_program({"sleep", "10"}, 0.2);
    EXPECT_TRUE(slow.timed_out);
    EXPECT_EQ(slow.exit_code, 128 + 9);
    EXPECT_EQ(run_program({"/nonexistent/program"}).exit_code, 127);
}

}  // namespace
}  // namespace dojo::service
