// torchvision models as users export them (training mode, dropout included, opset 13): MobileNet v2 (ReLU6 as Clip,
// depthwise convolutions, 1x1 feature maps at 32x32 inputs) and SqueezeNet 1.1 (ceil-mode max-pooling, Concat)
// import, train a few steps with both kernel sets and simulate.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;

class TorchvisionZoo : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionZoo, ImportsTrainsAndSimulates) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-zoo-" + GetParam() + "-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string model = (dir / (GetParam() + ".onnx")).string();
    const CliResult exported = run_shell("/usr/bin/python3 " + shell_quoted(std::string(DOJO_MODELS_DIR) +
                                         "/export_model.py") + " --model " + GetParam() + " --out " +
                                         shell_quoted(model));
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    for (const std::string kernels : {"fast", "reference"}) {
        const CliResult trained =
            run_dojo({"train", model, "--data", "synthetic", "--sample-shape", "3,32,32", "--train-limit", "64",
                      "--test-limit", "16", "--batch", "16", "--eval-batch", "16", "--kernels", kernels, "--json"});
        ASSERT_EQ(trained.exit_code, 0) << kernels << ": " << trained.err;
        const nlohmann::json result = nlohmann::json::parse(trained.out);
        const double loss = result["epochs"][0]["train_loss"].get<double>();
        EXPECT_TRUE(std::isfinite(loss) && loss > 0) << kernels << ": train loss " << loss;
    }
    const CliResult simulated = run_dojo({"sim", model, "--machine", "d1", "--batch", "8", "--strategy", "dp=1"});
    EXPECT_EQ(simulated.exit_code, 0) << simulated.err;
    EXPECT_NE(simulated.out.find("step time"), std::string::npos) << simulated.out;
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionZoo, testing::Values("mobilenet_v2", "squeezenet1_1"));

}  // namespace
}  // namespace dojo::test
