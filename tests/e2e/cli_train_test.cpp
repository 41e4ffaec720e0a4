// `dojo train` as a user runs it: real Fashion-MNIST training to the accuracy, JSON, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

using nlohmann::json;

// The bars, MLP 784-256-10 on Fashion-MNIST, 1 epoch, batch 64, same seed: fp32 test accuracy >= 0.83;
// bf16 within 0.5 point of fp32; cfp8 within 1.0 point. About 10 s per run on the 2-core CI machine.
TEST(CliTrain, MlpReachesTheAccuracyBarsInFp32Bf16AndCfp8) {
    double accuracy[3] = {};
    const char* precisions[3] = {"fp32", "bf16", "cfp8"};
    for (int i = 0; i < 3; ++i) {
        const CliResult r = run_dojo({"train", "mlp", "--data", "fashion-mnist", "--epochs", "1", "--batch", "64",
                                      "--optimizer", "sgd", "--lr", "0.05", "--seed", "0", "--precision",
                                      precisions[i], "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const json doc = json::parse(r.out);
        EXPECT_EQ(doc["precision"], precisions[i]);
        EXPECT_EQ(doc["parameters"], 784 * 256 + 256 + 256 * 10 + 10);
        ASSERT_EQ(doc["epochs"].size(), 1u);
        accuracy[i] = doc["epochs"][0]["test_accuracy"].get<double>();
        EXPECT_NE(r.err.find("epoch 1/1 ["), std::string::npos) << "progress is reported on stderr";
    }
    EXPECT_GE(accuracy[0], 0.83);
    EXPECT_LE(std::fabs(accuracy[1] - accuracy[0]), 0.005) << "bf16 " << accuracy[1] << " vs fp32 " << accuracy[0];
    EXPECT_LE(std::fabs(accuracy[2] - accuracy[0]), 0.010) << "cfp8 " << accuracy[2] << " vs fp32 " << accuracy[0];
}

TEST(CliTrain, TextOutputAndAdamW) {
    const CliResult r = run_dojo({"train", "mlp:hidden=64", "--optimizer", "adamw", "--train-limit", "4000",
                                  "--epochs", "2", "--seed", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("model mlp:hidden=64"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("epoch 2  train loss"), std::string::npos) << r.out;
}

TEST(CliTrain, ErrorsExplainThemselves) {
    const CliResult unknown = run_dojo({"train", "resnet9"});
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.err.find("unknown model 'resnet9'; the catalog has: mlp"), std::string::npos) << unknown.err;
    const CliResult missing = run_dojo({"train", "mlp", "--data-dir", "/nonexistent"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("dataset-fashion-mnist"), std::string::npos) << missing.err;
    const CliResult optimizer = run_dojo({"train", "mlp", "--optimizer", "lion"});
    EXPECT_EQ(optimizer.exit_code, 2);
    EXPECT_NE(optimizer.err.find("unknown optimizer 'lion'"), std::string::npos);
    const CliResult precision = run_dojo({"train", "mlp", "--precision", "fp8"});
    EXPECT_EQ(precision.exit_code, 2);
    EXPECT_NE(precision.err.find("unknown precision 'fp8'; expected fp32, bf16 or cfp8"), std::string::npos);
    const CliResult dataset = run_dojo({"train", "mlp", "--data", "cifar10"});
    EXPECT_EQ(dataset.exit_code, 2);
    const CliResult diverged = run_dojo({"train", "mlp", "--lr", "1e9", "--train-limit", "2000"});
    EXPECT_EQ(diverged.exit_code, 1);
    EXPECT_NE(diverged.err.find("training diverged"), std::string::npos) << diverged.err;
}

}  // namespace
}  // namespace dojo::test
