// `dojo tenant add` and `dojo serve` as a client uses them: a real server process on 127.0.0.1, requests over HTTP.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_runner.h"

namespace dojo::test {
namespace {

using nlohmann::json;

// A `dojo serve` process on any free port, stopped (or killed) when the test is done with it.
class Server {
public:
    Server(const std::string& state, int slots) {
        int pipe_fds[2];
        EXPECT_EQ(pipe(pipe_fds), 0);
        pid_ = fork();
        if (pid_ == 0) {
            dup2(pipe_fds[1], STDOUT_FILENO);
            close(pipe_fds[0]);
            const std::string slot_text = std::to_string(slots);
            execl(DOJO_CLI_PATH, DOJO_CLI_PATH, "serve", "--state", state.c_str(), "--listen", "127.0.0.1:0",
                  "--slots", slot_text.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(pipe_fds[1]);
        std::string line;
        char c = 0;
        while (read(pipe_fds[0], &c, 1) == 1 && c != '\n') {
            line += c;
        }
        close(pipe_fds[0]);
        port_ = line.empty() ? -1 : std::stoi(line);
    }
    ~Server() { stop(SIGTERM); }
    void stop(int signal) {
        if (pid_ > 0) {
            kill(pid_, signal);
            int status = 0;
            waitpid(pid_, &status, 0);
            pid_ = -1;
        }
    }
    int port() const { return port_; }

private:
    pid_t pid_ = -1;
    int port_ = -1;
};

struct Reply {
    int status = 0;
    json body;
};

Reply call(int port, const std::string& token, const std::string& method, const std::string& path,
           const std::string& body = "") {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(30, 0);
    const httplib::Headers headers = {{"Authorization", "Bearer " + token}};
    const httplib::Result r = method == "POST" ? client.Post(path.c_str(), headers, body, "application/json")
                                               : client.Get(path.c_str(), headers);
    if (!r) {
        return {};
    }
    const json parsed = json::parse(r->body, nullptr, false);
    return {r->status, parsed.is_discarded() ? json(r->body) : parsed};
}

// Polls job `id` until it leaves queued/running (or 60 s pass); returns the job.
json wait_for(int port, const std::string& token, std::int64_t id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    json job;
    while (std::chrono::steady_clock::now() < deadline) {
        job = call(port, token, "GET", "/v1/jobs/" + std::to_string(id)).body;
        if (job.contains("state") && job["state"] != "queued" && job["state"] != "running") {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return job;
}

// Waits (30 s at most) for train job `id`'s first checkpoint; whether it came.
bool wait_for_checkpoint(const std::string& state, std::int64_t id) {
    const std::string checkpoint = state + "/jobs/" + std::to_string(id) + "/checkpoint/checkpoint.dojo";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!std::filesystem::exists(checkpoint) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::filesystem::exists(checkpoint);
}

// A resumed LeNet job's result (2 epochs on `train_limit` samples) against `dojo train` of the same run, uninterrupted.
void expect_resumed_to_uninterrupted_weights(const json& result, const std::string& train_limit) {
    EXPECT_GT(result["resumed_from_step"].get<int>(), 0);
    const CliResult direct = run_dojo({"train", "lenet", "--epochs", "2", "--train-limit", train_limit, "--test-limit",
                                       "200", "--threads", "1", "--json"});
    ASSERT_EQ(direct.exit_code, 0) << direct.err;
    EXPECT_EQ(result["parameter_digest"], json::parse(direct.out)["parameter_digest"]);
}

class ServiceTest : public ::testing::Test {
protected:
    std::string state = (std::filesystem::temp_directory_path() / ("dojo-service-" + std::to_string(getpid()))).string();
    void SetUp() override { std::filesystem::remove_all(state); }
    void TearDown() override { std::filesystem::remove_all(state); }
    std::string add_tenant(const std::string& name, const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args = {"tenant", "add", name, "--state", state};
        args.insert(args.end(), extra.begin(), extra.end());
        const CliResult r = run_dojo(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return lines_of(r.out).empty() ? "" : lines_of(r.out).front();
    }
};

TEST_F(ServiceTest, ATenantSubmitsJobsThatRunAndSeesOnlyItsOwn) {
    const std::string alice = add_tenant("alice", {"--max-slots", "2"});
    const std::string bob = add_tenant("bob");
    const std::string admin = add_tenant("ops", {"--admin"});
    Server server(state, 2);
    ASSERT_GT(server.port(), 0);
    const int port = server.port();
    const Reply sim = call(port, alice, "POST", "/v1/jobs",
                           R"({"kind": "sim", "args": {"model": "mlp", "machine": "dgx-a100", "batch": 64}})");
    ASSERT_EQ(sim.status, 201) << sim.body;
    const Reply train = call(port, alice, "POST", "/v1/jobs",
                             R"({"kind": "train", "args": {"model": "mlp", "train_limit": 640, "test_limit": 100},
                                 "slots": 2, "priority": "high"})");
    ASSERT_EQ(train.status, 201) << train.body;
    const json sim_job = wait_for(port, alice, sim.body["id"].get<std::int64_t>());
    EXPECT_EQ(sim_job["state"], "succeeded") << sim_job;
    const json train_job = wait_for(port, alice, train.body["id"].get<std::int64_t>());
    EXPECT_EQ(train_job["state"], "succeeded") << train_job;
    EXPECT_EQ(train_job["attempts"], 1);
    const Reply result = call(port, alice, "GET", "/v1/jobs/" + std::to_string(train.body["id"].get<int>()) + "/result");
    ASSERT_EQ(result.status, 200);
    EXPECT_GT(result.body["epochs"][0]["test_accuracy"].get<double>(), 0.5);
    EXPECT_EQ(call(port, alice, "GET", "/v1/jobs").body["jobs"].size(), 2u);
    const json metrics = call(port, alice, "GET", "/v1/jobs/" + std::to_string(train.body["id"].get<int>()) + "/metrics").body;
    ASSERT_FALSE(metrics["progress"].empty()) << metrics;
    EXPECT_EQ(metrics["progress"].back()["batch"], metrics["progress"].back()["batches"]);
    EXPECT_GT(metrics["progress"].back()["loss"].get<double>(), 0.0);
    EXPECT_EQ(metrics["epochs"].size(), 1u);
    // The sim job's trace is an artifact; names that try to leave the job's artifacts are refused.
    const std::string sim_path = "/v1/jobs/" + std::to_string(sim.body["id"].get<int>());
    EXPECT_EQ(call(port, alice, "GET", sim_path + "/artifacts").body["artifacts"], json::array({"trace.json"}));
    const Reply trace = call(port, alice, "GET", sim_path + "/artifacts/trace.json");
    EXPECT_EQ(trace.status, 200);
    EXPECT_TRUE(trace.body.contains("traceEvents"));
    EXPECT_EQ(call(port, alice, "GET", sim_path + "/artifacts/..").status, 404);
    EXPECT_EQ(call(port, alice, "GET", sim_path + "/artifacts/%2e%2e%2fresult.json").status, 404);
    EXPECT_EQ(call(port, alice, "GET", sim_path + "/artifacts/../../../../etc/passwd").status, 404);
    EXPECT_EQ(call(port, bob, "GET", sim_path + "/artifacts/trace.json").status, 404);
    // Another tenant sees nothing of alice's: her job is a 404 to bob, as a missing one is; the admin sees all.
    EXPECT_EQ(call(port, bob, "GET", "/v1/jobs/1").status, 404);
    EXPECT_EQ(call(port, bob, "POST", "/v1/jobs/1/cancel").status, 404);
    EXPECT_EQ(call(port, bob, "GET", "/v1/jobs").body["jobs"].size(), 0u);
    EXPECT_EQ(call(port, admin, "GET", "/v1/jobs").body["jobs"].size(), 2u);
}

TEST_F(ServiceTest, BadRequestsGetAClearErrorAndTheRightStatus) {
    const std::string alice = add_tenant("alice", {"--max-queued", "1"});
    Server server(state, 1);
    ASSERT_GT(server.port(), 0);
    const int port = server.port();
    const Reply no_token = call(port, "", "GET", "/v1/jobs");
    EXPECT_EQ(no_token.status, 401);
    EXPECT_NE(no_token.body["error"].get<std::string>().find("Bearer"), std::string::npos);
    EXPECT_EQ(call(port, alice + "x", "GET", "/v1/jobs").status, 401);
    const Reply malformed = call(port, alice, "POST", "/v1/jobs", "{\"kind\": ");
    EXPECT_EQ(malformed.status, 400);
    EXPECT_NE(malformed.body["error"].get<std::string>().find("JSON"), std::string::npos);
    const Reply unknown = call(port, alice, "POST", "/v1/jobs", R"({"kind": "train", "args": {"model": "mlp", "out": "x"}})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.body["error"].get<std::string>().find("args.out"), std::string::npos);
    EXPECT_EQ(call(port, alice, "GET", "/v1/jobs/99").status, 404);
    EXPECT_EQ(call(port, alice, "GET", "/v1/nothing").status, 404);
    const Reply openapi = call(port, "", "GET", "/openapi.json");
    EXPECT_EQ(openapi.status, 200);
    EXPECT_EQ(openapi.body["openapi"], "3.0.3");
    EXPECT_TRUE(openapi.body["paths"].contains("/v1/jobs/{id}/cancel"));
    // A model or an option value the command would refuse is refused before it is queued; a job that fails anyway
    // (its data is not there) fails with the command's error.
    const Reply no_model = call(port, alice, "POST", "/v1/jobs", R"({"kind": "train", "args": {"model": "nosuchnet"}})");
    EXPECT_EQ(no_model.status, 400);
    EXPECT_NE(no_model.body["error"].get<std::string>().find("nosuchnet"), std::string::npos) << no_model.body;
    EXPECT_EQ(call(port, alice, "POST", "/v1/jobs", R"({"kind": "train", "args": {"model": "/nowhere/x.onnx"}})").status,
              400);
    for (const std::string args : {R"("precision": "fp64")", R"("optimizer": "lamb")", R"("epochs": 0)",
                                   R"("kernels": "turbo")"}) {
        const Reply refused = call(port, alice, "POST", "/v1/jobs",
                                   R"({"kind": "train", "args": {"model": "mlp", )" + args + "}}");
        EXPECT_EQ(refused.status, 400) << args << " " << refused.body;
    }
    const Reply no_machine = call(port, alice, "POST", "/v1/jobs",
                                  R"({"kind": "sim", "args": {"model": "mlp", "machine": "exapodd", "batch": 8}})");
    EXPECT_EQ(no_machine.status, 400);
    EXPECT_NE(no_machine.body["error"].get<std::string>().find("exapodd"), std::string::npos) << no_machine.body;
    const Reply no_data = call(port, alice, "POST", "/v1/jobs",
                               R"({"kind": "train", "args": {"model": "mlp", "data": "idx", "data_dir": "/nowhere"}})");
    ASSERT_EQ(no_data.status, 201);
    const json failed = wait_for(port, alice, no_data.body["id"].get<std::int64_t>());
    EXPECT_EQ(failed["state"], "failed");
    EXPECT_NE(failed["error"].get<std::string>().find("/nowhere"), std::string::npos) << failed;
    const Reply queued = call(port, alice, "POST", "/v1/jobs",
                              R"({"kind": "train", "args": {"model": "lenet", "epochs": 20}, "priority": "low"})");
    ASSERT_EQ(queued.status, 201);
    const Reply over = call(port, alice, "POST", "/v1/jobs", R"({"kind": "train", "args": {"model": "mlp"}})");
    EXPECT_EQ(over.status, 429);
    const Reply cancelled = call(port, alice, "POST", "/v1/jobs/" + std::to_string(queued.body["id"].get<int>()) + "/cancel");
    EXPECT_EQ(cancelled.status, 200);
    EXPECT_EQ(wait_for(port, alice, queued.body["id"].get<std::int64_t>())["state"], "cancelled");
}

// kill -9 of the server while a train job runs: the job's process dies with it, the restarted server queues the job
// again, and it resumes from its last checkpoint to the weights of an uninterrupted run.
TEST_F(ServiceTest, AServerKilledMidJobLosesNothingAndTheJobResumesToTheSameWeights) {
    const std::string alice = add_tenant("alice");
    const std::string job = R"({"kind": "train", "args": {"model": "lenet", "epochs": 2, "train_limit": 6400,
                                "test_limit": 200, "checkpoint_every": 20}})";
    std::int64_t id = 0;
    {
        Server server(state, 1);
        ASSERT_GT(server.port(), 0);
        id = call(server.port(), alice, "POST", "/v1/jobs", job).body["id"].get<std::int64_t>();
        ASSERT_TRUE(wait_for_checkpoint(state, id));
        server.stop(SIGKILL);
    }
    Server restarted(state, 1);
    ASSERT_GT(restarted.port(), 0);
    const json done = wait_for(restarted.port(), alice, id);
    ASSERT_EQ(done["state"], "succeeded") << done;
    EXPECT_EQ(done["attempts"], 2);
    const json result = call(restarted.port(), alice, "GET", "/v1/jobs/" + std::to_string(id) + "/result").body;
    expect_resumed_to_uninterrupted_weights(result, "6400");
}

// One slot: a low-priority train job runs; a high-priority job arrives, the low one is preempted (stopped after a
// checkpoint), the high one runs, then the low one resumes from its checkpoint to the weights of an uninterrupted run.
TEST_F(ServiceTest, AHighPriorityJobPreemptsALowOneWhichResumesToTheSameWeights) {
    const std::string alice = add_tenant("alice");
    const std::string bob = add_tenant("bob");
    Server server(state, 1);
    ASSERT_GT(server.port(), 0);
    const int port = server.port();
    const std::int64_t low = call(port, alice, "POST", "/v1/jobs", R"({"kind": "train", "priority": "low",
        "args": {"model": "lenet", "epochs": 2, "train_limit": 12800, "test_limit": 200, "checkpoint_every": 20}})")
                                 .body["id"].get<std::int64_t>();
    ASSERT_TRUE(wait_for_checkpoint(state, low));
    const std::int64_t high = call(port, bob, "POST", "/v1/jobs", R"({"kind": "sim", "priority": "high",
        "args": {"model": "mlp", "machine": "dgx-a100", "batch": 64}})").body["id"].get<std::int64_t>();
    const json high_done = wait_for(port, bob, high);
    EXPECT_EQ(high_done["state"], "succeeded") << high_done;
    const json low_done = wait_for(port, alice, low);
    ASSERT_EQ(low_done["state"], "succeeded") << low_done;
    EXPECT_EQ(low_done["attempts"], 2) << "preempted once, then resumed";
    EXPECT_LT(high_done["finished"].get<double>(), low_done["finished"].get<double>());
    const json result = call(port, alice, "GET", "/v1/jobs/" + std::to_string(low) + "/result").body;
    expect_resumed_to_uninterrupted_weights(result, "12800");
}

// GET /v1/events: the job's states arrive as server-sent events, in order, while it runs.
TEST_F(ServiceTest, EventsStreamEachJobsStatesAsTheyChange) {
    const std::string alice = add_tenant("alice");
    Server server(state, 1);
    ASSERT_GT(server.port(), 0);
    const Reply submitted = call(server.port(), alice, "POST", "/v1/jobs",
                                 R"({"kind": "sim", "args": {"model": "mlp", "machine": "dgx-a100", "batch": 64}})");
    ASSERT_EQ(submitted.status, 201);
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(30, 0);
    std::string stream;
    client.Get("/v1/events", {{"Authorization", "Bearer " + alice}}, [&](const char* data, std::size_t length) {
        stream.append(data, length);
        return stream.find("\"succeeded\"") == std::string::npos;  // stop once the job has finished
    });
    EXPECT_NE(stream.find("event: job"), std::string::npos) << stream;
    const std::size_t succeeded = stream.find("\"state\":\"succeeded\"");
    ASSERT_NE(succeeded, std::string::npos) << stream;
    EXPECT_LT(stream.find("\"id\":1"), succeeded);
    EXPECT_EQ(call(server.port(), "", "GET", "/v1/events").status, 401);
}

}  // namespace
}  // namespace dojo::test

namespace dojo::test {
namespace {

// dojo cluster: a trace written for a machine, replayed under two policies, with its JSON report and plot.
TEST(CliCluster, TraceAndReplayReportUtilizationPerClassAndAPlot) {
    const std::string dir =
        (std::filesystem::temp_directory_path() / ("dojo-cluster-" + std::to_string(getpid()))).string();
    std::filesystem::create_directories(dir);
    const CliResult trace = run_dojo({"cluster", "trace", "--machine", "dgx-a100", "--jobs", "300", "--load", "1.5",
                                      "--out", dir + "/t.csv"});
    ASSERT_EQ(trace.exit_code, 0) << trace.err;
    const CliResult priority = run_dojo({"cluster", "replay", dir + "/t.csv", "--machine", "dgx-a100", "--policy",
                                         "priority", "--svg", dir + "/r.svg", "--json"});
    ASSERT_EQ(priority.exit_code, 0) << priority.err;
    const json p = json::parse(priority.out);
    EXPECT_EQ(p["devices"], 8);
    EXPECT_EQ(p["jobs"], 300);
    EXPECT_GT(p["utilization"].get<double>(), 0.5);
    EXPECT_TRUE(p["classes"].contains("high"));
    EXPECT_GT(p["preemptions"].get<int>(), 0);
    std::ifstream svg(dir + "/r.svg");
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("<svg"), std::string::npos);
    const CliResult fifo = run_dojo({"cluster", "replay", dir + "/t.csv", "--machine", "dgx-a100", "--policy", "fifo"});
    ASSERT_EQ(fifo.exit_code, 0) << fifo.err;
    EXPECT_NE(fifo.out.find("0 preemptions"), std::string::npos) << fifo.out;
    const CliResult bad = run_dojo({"cluster", "replay", dir + "/t.csv", "--machine", "dgx-a100", "--policy", "lottery"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("lottery"), std::string::npos) << bad.err;
    const CliResult missing = run_dojo({"cluster", "replay", dir + "/none.csv", "--machine", "dgx-a100"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("none.csv"), std::string::npos) << missing.err;
    // The same jobs in Philly's JSON job log replay to the same figures.
    ASSERT_EQ(run_dojo({"cluster", "trace", "--machine", "dgx-a100", "--jobs", "300", "--load", "1.5", "--layout",
                        "philly", "--out", dir + "/t.json"}).exit_code, 0);
    const CliResult philly = run_dojo({"cluster", "replay", dir + "/t.json", "--machine", "dgx-a100", "--policy",
                                       "priority", "--json"});
    ASSERT_EQ(philly.exit_code, 0) << philly.err;
    EXPECT_EQ(json::parse(philly.out)["utilization"], p["utilization"]);
    EXPECT_EQ(json::parse(philly.out)["preemptions"], p["preemptions"]);
    // Durations from dojo sim: jobs that say what they train; a trace without models is refused for it.
    ASSERT_EQ(run_dojo({"cluster", "trace", "--machine", "dgx-a100", "--jobs", "100", "--models", "mlp;lenet", "--out",
                        dir + "/m.csv"}).exit_code, 0);
    const CliResult simulated = run_dojo({"cluster", "replay", dir + "/m.csv", "--machine", "dgx-a100", "--durations",
                                          "sim", "--json"});
    ASSERT_EQ(simulated.exit_code, 0) << simulated.err;
    EXPECT_NE(simulated.err.find("100 jobs timed by dojo sim"), std::string::npos) << simulated.err;
    const CliResult untold = run_dojo({"cluster", "replay", dir + "/t.csv", "--machine", "dgx-a100", "--durations",
                                       "sim"});
    EXPECT_EQ(untold.exit_code, 2);
    EXPECT_NE(untold.err.find("--durations sim needs a model"), std::string::npos) << untold.err;
    const CliResult layout = run_dojo({"cluster", "trace", "--machine", "dgx-a100", "--layout", "swf", "--out",
                                       dir + "/t.swf"});
    EXPECT_EQ(layout.exit_code, 2);
    EXPECT_NE(layout.err.find("swf"), std::string::npos) << layout.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dojo::test
