// The embedded engine's answer to a job process killed from outside: queued again a bounded number of times, then
// failed with the reason; a server restart (the engine gone and started again) is not the job's doing and never
// counts. The job process is a stand-in executable that waits until it is killed: what is tested is the engine.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "dojo/service/job_spec.h"
#include "dojo/service/runner.h"
#include "dojo/service/store.h"

namespace dojo::service {
namespace {

namespace fs = std::filesystem;

class RunnerKillsTest : public ::testing::Test {
protected:
    fs::path dir = fs::temp_directory_path() / ("dojo-runner-kills-" + std::to_string(getpid()));
    std::string waiter;  // the job's executable: waits, in short sleeps, until it is killed

    void SetUp() override {
        fs::remove_all(dir);
        fs::create_directories(dir);
        waiter = (dir / "waiter").string();
        std::ofstream(waiter) << "#!/bin/sh\nwhile :; do sleep 0.05; done\n";
        chmod(waiter.c_str(), 0755);
    }
    void TearDown() override { fs::remove_all(dir); }

    /// The pid of this process's child running `waiter`, once the engine has started it (ticking it meanwhile).
    std::optional<pid_t> started_job(Runner& runner, double& now) {
        for (int tries = 0; tries < 200; ++tries) {
            runner.tick(now += 1.0);
            for (const auto& entry : fs::directory_iterator("/proc")) {
                const std::string name = entry.path().filename();
                if (name.find_first_not_of("0123456789") != std::string::npos) {
                    continue;
                }
                std::ifstream stat(entry.path() / "stat"), cmdline(entry.path() / "cmdline");
                std::string stat_line, argv;
                std::getline(stat, stat_line);
                std::getline(cmdline, argv);
                const std::size_t close = stat_line.rfind(')');
                if (close == std::string::npos || argv.find(waiter) == std::string::npos) {
                    continue;
                }
                int parent = 0;
                char state = 0;
                if (std::sscanf(stat_line.c_str() + close + 1, " %c %d", &state, &parent) == 2 &&
                    parent == getpid() && state != 'Z') {
                    return static_cast<pid_t>(std::stoi(name));
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return std::nullopt;
    }

    /// Kills the job's process and ticks until the engine has seen it end: the job then (the engine may have started
    /// it again at once when it queued it again).
    Job kill_and_reap(Runner& runner, Store& store, std::int64_t id, pid_t pid, double& now) {
        const int kills_before = store.job(id)->kills;
        kill(pid, SIGKILL);
        for (int tries = 0; tries < 500; ++tries) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            runner.tick(now += 0.01);
            const Job job = *store.job(id);
            if (job.kills > kills_before || job.state == "failed") {
                return job;
            }
        }
        return *store.job(id);
    }
};

TEST_F(RunnerKillsTest, AKilledJobIsQueuedAgainUpToItsLimitThenFailsAndRestartsNeverCount) {
    const std::string state = (dir / "state").string();
    Store store(state);
    const std::string token = store.add_tenant({"alice", false, 1, 4});
    const std::int64_t id =
        store.submit(*store.tenant_by_token(token), parse_job_request(R"({"kind": "sim", "args": {"model": "mlp", "machine": "tile", "batch": 64}})", 1),
                     1.0);
    double now = 10.0;
    {  // a server that stops (its engine goes away) and starts again, twice: the job runs again, no kill counted
        for (int restart = 0; restart < 2; ++restart) {
            store.recover_interrupted();  // as the server does when it starts
            Runner runner(store, state, waiter, 1, 3600);
            ASSERT_TRUE(started_job(runner, now)) << "the engine never started the job";
        }
        EXPECT_EQ(store.recover_interrupted(), 1);  // as the server does when it starts
        EXPECT_EQ(store.job(id)->kills, 0);
        EXPECT_EQ(store.job(id)->attempts, 2);
    }
    Runner runner(store, state, waiter, 1, 3600);
    for (int kill_number = 1; kill_number <= 6; ++kill_number) {
        const std::optional<pid_t> pid = started_job(runner, now);
        ASSERT_TRUE(pid) << "kill " << kill_number << ": the engine did not start the job again";
        const Job after = kill_and_reap(runner, store, id, *pid, now);
        EXPECT_EQ(after.kills, std::min(kill_number, 5)) << "after kill " << kill_number;
        EXPECT_EQ(after.state == "failed", kill_number == 6) << "after kill " << kill_number << ": " << after.state;
    }
    const Job job = *store.job(id);
    EXPECT_EQ(job.kills, 5);
    EXPECT_EQ(job.attempts, 2 + 6);
    EXPECT_NE(job.error.find("after at most 5 kills"), std::string::npos) << job.error;
}

TEST_F(RunnerKillsTest, AStateWrittenBeforeKillsWereCountedOpensWithEveryJobAtZero) {
    const std::string state = (dir / "old-state").string();
    fs::create_directories(state);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((state + "/state.db").c_str(), &db), SQLITE_OK);
    const char* old_schema =
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, spec TEXT NOT NULL, "
        "state TEXT NOT NULL, submitted REAL NOT NULL, started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL "
        "DEFAULT 0, exit_code INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL "
        "DEFAULT '', priority INTEGER NOT NULL, slots INTEGER NOT NULL);"
        "INSERT INTO jobs(tenant, spec, state, submitted, attempts, priority, slots) VALUES('alice', "
        "'{\"kind\": \"sim\", \"args\": {\"model\": \"mlp\"}, \"priority\": \"normal\", \"slots\": 1}', 'queued', 1.0, 3, 1, 1);";
    ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    Store store(state);
    const Job job = *store.job(1);
    EXPECT_EQ(job.attempts, 3);
    EXPECT_EQ(job.kills, 0);
    EXPECT_EQ(job.spec.args["model"], "mlp");
}

}  // namespace
}  // namespace dojo::service
