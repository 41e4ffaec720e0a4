// `mpirun -np N dojo train ...` as a user runs it: equivalence with one process at the global batch, bit-identical
// runs with the fixed reduction order, rank 0 alone reporting and writing, faults that stop the job naming the rank,
// and resuming after a killed rank. The jobs run on this machine, oversubscribed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_runner.h"
#include "dojo/runtime/checkpoint.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scratch(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-mpi-test-" + std::to_string(::getpid())) / name;
    fs::remove_all(dir);
    fs::create_directories(dir.parent_path());
    return dir;
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

json result_json(const CliResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out);
}

// The largest |a - b| / max |a| over the tensors of two checkpoints.
double relative_difference(const fs::path& a_dir, const fs::path& b_dir) {
    const runtime::Checkpoint a = runtime::read_checkpoint(a_dir.string());
    const runtime::Checkpoint b = runtime::read_checkpoint(b_dir.string());
    EXPECT_EQ(a.tensors.size(), b.tensors.size());
    double worst = 0;
    for (std::size_t t = 0; t < std::min(a.tensors.size(), b.tensors.size()); ++t) {
        double scale = 1e-30;
        double diff = 0;
        for (std::size_t i = 0; i < a.tensors[t].values.size(); ++i) {
            scale = std::max(scale, static_cast<double>(std::abs(a.tensors[t].values[i])));
            diff = std::max(diff, static_cast<double>(std::abs(a.tensors[t].values[i] - b.tensors[t].values[i])));
        }
        worst = std::max(worst, diff / scale);
    }
    return worst;
}

// Ten steps of the MLP (reference kernels, one thread per rank): short enough that summation-order differences
// stay at rounding level (SGD with momentum on this model amplifies them over hundreds of steps).
const std::vector<std::string> kTenSteps{"train",     "mlp",       "--train-limit", "640", "--test-limit", "500",
                                         "--batch",   "64",        "--kernels",     "reference", "--threads", "1",
                                         "--json"};

TEST(MpiTrain, OneRankUnderMpirunIsTheSingleProcessRun) {
    const json single = result_json(run_dojo(kTenSteps));
    const json one = result_json(run_dojo_mpi(1, kTenSteps));
    EXPECT_EQ(one["parameter_digest"], single["parameter_digest"]);
    EXPECT_EQ(one["ranks"], 1);
}

TEST(MpiTrain, RanksMatchOneProcessWithTheGlobalBatchUpToSummationOrder) {
    const fs::path single = scratch("single");
    result_json(run_dojo(with(kTenSteps, {"--checkpoint", single.string()})));
    for (const int ranks : {2, 4}) {
        for (const std::string order : {"any", "fixed"}) {
            const fs::path dir = scratch("ranks" + std::to_string(ranks) + order);
            const json r =
                result_json(run_dojo_mpi(ranks, with(kTenSteps, {"--checkpoint", dir.string(), "--reduce-order", order})));
            EXPECT_EQ(r["ranks"], ranks);
            EXPECT_TRUE(r["data_parallel"]["replicas_agree"].get<bool>());
            // Only the sums over the batch differ in order: rounding-level differences, nothing more.
            EXPECT_LT(relative_difference(single, dir), 1e-5) << ranks << " ranks, " << order << " order";
            EXPECT_GT(r["data_parallel"]["wire_bytes_per_step"].get<double>(), 0.0);
        }
    }
}

TEST(MpiTrain, RanksMatchOneProcessWhenTheDataLeavesAPartialBatch) {
    // 680 samples: ten global batches of 64 and 40 left over, which one process and every rank drop alike.
    std::vector<std::string> args = kTenSteps;
    args[3] = "680";
    const fs::path single = scratch("remainder-single");
    const json one = result_json(run_dojo(with(args, {"--checkpoint", single.string()})));
    for (const int ranks : {2, 4}) {
        const fs::path dir = scratch("remainder" + std::to_string(ranks));
        const json r = result_json(run_dojo_mpi(ranks, with(args, {"--checkpoint", dir.string()})));
        EXPECT_LT(relative_difference(single, dir), 1e-5) << ranks << " ranks";
        EXPECT_NEAR(r["epochs"][0]["train_loss"].get<double>(), one["epochs"][0]["train_loss"].get<double>(), 1e-6);
    }
}

TEST(MpiTrain, Cfp8RanksMatchOneProcessUpToSummationOrder) {
    // The ranks agree on each batch tensor's max-abs and draw at global indices, so each rounds its shard exactly as
    // one process rounds the whole batch; only the sums over the batch differ in order, so the bound is fp32's
    // (measured: 1.2e-7 on 2 ranks, 1.8e-7 on 4). Rounding each shard on its own is far off.
    const std::vector<std::string> cfp8 = with(kTenSteps, {"--precision", "cfp8"});
    const fs::path single = scratch("cfp8-single");
    result_json(run_dojo(with(cfp8, {"--checkpoint", single.string()})));
    for (const int ranks : {1, 2, 4}) {
        const fs::path dir = scratch("cfp8-ranks" + std::to_string(ranks));
        const json r = result_json(run_dojo_mpi(ranks, with(cfp8, {"--checkpoint", dir.string()})));
        EXPECT_TRUE(r["data_parallel"]["replicas_agree"].get<bool>());
        EXPECT_EQ(r["data_parallel"]["rounding_scope"], "global");
        const double difference = relative_difference(single, dir);
        EXPECT_LT(difference, 1e-5) << ranks << " ranks";
    }
    const fs::path per_rank = scratch("cfp8-per-rank");
    result_json(run_dojo_mpi(2, with(cfp8, {"--checkpoint", per_rank.string(), "--rounding-scope", "rank"})));
    EXPECT_GT(relative_difference(single, per_rank), 1e-2);  // measured: 0.2
}

TEST(MpiTrain, Cfp8RanksRoundingTheirOwnShardsTrainAsWellAsOneProcess) {
    // --rounding-scope rank: each rank's per-tensor bias and random draws see its shard only, so the weights are
    // not one process's up to summation order; the training is as good: accuracy and loss agree closely.
    const std::vector<std::string> args{"train", "mlp", "--precision", "cfp8", "--train-limit", "19200",
                                        "--test-limit", "2000", "--lr", "0.02", "--json"};
    const json single = result_json(run_dojo(args));
    for (const int ranks : {2, 4}) {
        const json r = result_json(run_dojo_mpi(ranks, with(args, {"--rounding-scope", "rank"})));
        EXPECT_NEAR(r["epochs"][0]["test_accuracy"].get<double>(), single["epochs"][0]["test_accuracy"].get<double>(),
                    0.015)
            << ranks << " ranks";
        EXPECT_NEAR(r["epochs"][0]["train_loss"].get<double>(), single["epochs"][0]["train_loss"].get<double>(), 0.01);
    }
}

TEST(MpiTrain, FixedOrderRunsAreBitIdentical) {
    const std::vector<std::pair<std::string, std::string>> precision_and_wire{
        {"fp32", "none"}, {"fp32", "bf16"}, {"fp32", "cfp8"}, {"cfp8", "none"}};
    for (const auto& [precision, compression] : precision_and_wire) {
        const std::vector<std::string> args = with(
            kTenSteps, {"--reduce-order", "fixed", "--grad-compression", compression, "--precision", precision});
        const json a = result_json(run_dojo_mpi(4, args));
        const json b = result_json(run_dojo_mpi(4, args));
        EXPECT_EQ(a["parameter_digest"], b["parameter_digest"]) << precision << ", wire " << compression;
        EXPECT_TRUE(a["data_parallel"]["replicas_agree"].get<bool>()) << precision << ", wire " << compression;
    }
}

TEST(MpiTrain, CompressionShrinksTheTraffic) {
    const json fp32 = result_json(run_dojo_mpi(2, kTenSteps));
    const json bf16 = result_json(run_dojo_mpi(2, with(kTenSteps, {"--grad-compression", "bf16"})));
    const json cfp8 = result_json(run_dojo_mpi(2, with(kTenSteps, {"--grad-compression", "cfp8"})));
    const double bytes = fp32["data_parallel"]["wire_bytes_per_step"].get<double>();
    EXPECT_NEAR(bf16["data_parallel"]["wire_bytes_per_step"].get<double>() / bytes, 0.5, 0.01);
    EXPECT_NEAR(cfp8["data_parallel"]["wire_bytes_per_step"].get<double>() / bytes, 0.25, 0.01);
    EXPECT_NE(bf16["parameter_digest"], fp32["parameter_digest"]);  // the gradients really went through BF16
}

TEST(MpiTrain, OnlyRankZeroReportsAndWritesCheckpoints) {
    const fs::path dir = scratch("rank0");
    const CliResult r = run_dojo_mpi(
        2, {"train", "mlp", "--train-limit", "640", "--test-limit", "500", "--checkpoint", dir.string(),
            "--checkpoint-every", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<std::string> lines = lines_of(r.out);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return l.rfind("parameter digest", 0) == 0; }),
              1);
    EXPECT_NE(r.out.find("data parallel: 2 ranks x 32 samples"), std::string::npos) << r.out;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        files.push_back(entry.path().filename().string());
    }
    EXPECT_EQ(files, std::vector<std::string>{runtime::kCheckpointFile});  // no second writer's temporary files
}

TEST(MpiTrain, ABatchThatDoesNotSplitOverTheRanksIsAUsageError) {
    const CliResult r = run_dojo_mpi(3, {"train", "mlp", "--batch", "64", "--train-limit", "640"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("does not split evenly over 3 ranks"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("use a multiple of 3"), std::string::npos) << r.err;
}

// The training windows a `dojo train --data clips:...` run decoded, as its log says (each rank's line on several).
std::vector<int> decoded_training_samples(const std::string& log) {
    std::vector<int> counts;
    std::istringstream lines(log);
    const std::regex summary(R"(clips: (\d+) training and )");
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_search(line, m, summary)) {
            counts.push_back(std::stoi(m[1].str()));
        }
    }
    return counts;
}

TEST(MpiTrain, EachRankDecodesOnlyItsOwnTrainingClipsAndTheRanksAgree) {
    const fs::path store = scratch("clips-store");
    ASSERT_EQ(run_dojo({"data", "synth", "--out", store.string(), "--scenes", "8", "--duration", "0.5", "--size",
                        "64x48"}).exit_code, 0);
    const std::vector<std::string> args{
        "train",   "occupancy:channels=8,voxels=10x10x2", "--data",
        "clips:" + store.string() + ",size=32x24,every=3,target=occupancy,grid=10x10x2", "--epochs", "2",
        "--batch", "4",  "--threads", "1", "--lr", "0.01", "--optimizer", "adamw", "--reduce-order", "fixed", "--json"};
    const CliResult one = run_dojo(args);
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const std::vector<int> all = decoded_training_samples(one.err);
    ASSERT_EQ(all.size(), 1u) << one.err;

    const CliResult two = run_dojo_mpi(2, args);
    const json r = result_json(two);
    const std::vector<int> shards = decoded_training_samples(two.err);
    ASSERT_EQ(shards.size(), 2u) << two.err;
    // The ranks decoded disjoint shares of the training clips: together, exactly what one process decodes.
    EXPECT_EQ(shards[0] + shards[1], all[0]);
    EXPECT_GT(std::min(shards[0], shards[1]), 0);
    EXPECT_LT(std::max(shards[0], shards[1]), all[0]);
    EXPECT_NE(two.err.find("rank 1 of 2: its own training clips"), std::string::npos) << two.err;
    EXPECT_TRUE(r["data_parallel"]["replicas_agree"].get<bool>());
    // An epoch is as many global batches as the smaller shard fills, two samples of it a rank per step.
    EXPECT_EQ(r["epochs"][0]["step_seconds"].size(), static_cast<std::size_t>(std::min(shards[0], shards[1]) / 2));
    // Seeded per rank and reduced in a fixed order: the same run twice ends with the same weights.
    EXPECT_EQ(result_json(run_dojo_mpi(2, args))["parameter_digest"], r["parameter_digest"]);
}

struct FaultOutcome {
    std::string exit;
    double seconds_after_fault = -1;
    std::string err;
};

// Runs `args` on `ranks` ranks through tests/mpi/fault.sh, which stops or kills rank `rank` at `trigger`.
FaultOutcome run_with_fault(const std::string& mode, int rank, const std::string& trigger, int ranks,
                            const std::vector<std::string>& args, const std::string& name) {
    const fs::path out = scratch(name);
    const std::string command = shell_quoted(DOJO_FAULT_SCRIPT) + " " + mode + " " + std::to_string(rank) + " " +
                                shell_quoted(trigger) + " " + shell_quoted(out.string()) + " -- " + DOJO_MPIRUN +
                                " -np " + std::to_string(ranks) + " " + dojo_command(args);
    const CliResult r = run_shell(command);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    FaultOutcome outcome;
    std::ifstream result(out / "result");
    for (std::string key; result >> key;) {
        if (key == "exit") {
            result >> outcome.exit;
        } else if (key == "seconds_after_fault") {
            result >> outcome.seconds_after_fault;
        }
    }
    std::ifstream err(out / "stderr");
    std::stringstream text;
    text << err.rdbuf();
    outcome.err = text.str();
    return outcome;
}

const std::vector<std::string> kLongRun{"train", "lenet", "--batch", "63", "--epochs", "5", "--timeout", "3"};

TEST(MpiFaults, AHungRankStopsTheJobWithinTheTimeoutNamingIt) {
    const FaultOutcome o = run_with_fault("stop", 1, "3", 3, kLongRun, "hang");
    EXPECT_EQ(o.exit, "4") << o.err;  // runtime::kTimeoutExitCode
    EXPECT_NE(o.err.find("rank 1 has sent nothing"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("--timeout sets the limit"), std::string::npos) << o.err;
    // The 3 s deadline (+ a step in flight, + mpirun's teardown): well under a minute, never a hang.
    EXPECT_GT(o.seconds_after_fault, 0.0);
    EXPECT_LT(o.seconds_after_fault, 15.0) << o.err;
}

TEST(MpiFaults, ADeadRankStopsTheJobNamingIt) {
    const FaultOutcome o = run_with_fault("kill", 1, "3", 3, kLongRun, "dead");
    EXPECT_NE(o.exit, "0") << o.err;
    EXPECT_NE(o.err.find("rank 1"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("signal 9"), std::string::npos) << o.err;
    EXPECT_LT(o.seconds_after_fault, 15.0) << o.err;
}

TEST(MpiFaults, ResumingAfterAKilledRankEndsWithTheUninterruptedWeights) {
    const fs::path whole = scratch("whole");
    const fs::path broken = scratch("broken");
    const std::vector<std::string> args{"train", "mlp", "--train-limit", "25600", "--test-limit", "500",
                                        "--epochs", "2", "--reduce-order", "fixed", "--checkpoint-every", "20",
                                        "--threads", "1"};
    const json uninterrupted = result_json(run_dojo_mpi(2, with(args, {"--checkpoint", whole.string(), "--json"})));

    // Kill rank 1 once the first checkpoint exists, then resume on two ranks from what rank 0 wrote.
    const FaultOutcome o = run_with_fault("kill", 1, (broken / runtime::kCheckpointFile).string(), 2,
                                          with(args, {"--checkpoint", broken.string()}), "resume-kill");
    ASSERT_NE(o.exit, "0") << "the run ended before the fault: " << o.err;
    const runtime::Checkpoint saved = runtime::read_checkpoint(broken.string());  // whole, never half-written
    EXPECT_GT(saved.global_step, 0u);
    const json resumed =
        result_json(run_dojo_mpi(2, with(args, {"--checkpoint", broken.string(), "--resume", "--json"})));
    EXPECT_GT(resumed["resumed_from_step"].get<int>(), 0);
    EXPECT_EQ(resumed["parameter_digest"], uninterrupted["parameter_digest"]);
}

}  // namespace
}  // namespace dojo::test
