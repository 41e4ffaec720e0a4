// Models exported the way many users export them, traced at a fixed batch without dynamic_axes (the batch baked
// into Reshape and Expand shape values: x.view(64, -1), a class token expanded to the batch, attention's head
// split), train at another batch with the same weights, bit for bit, as the dynamic export, and simulate.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;

class FixedBatchExport : public ::testing::TestWithParam<std::string> {};

std::string export_model(const std::string& model, const fs::path& out, const std::string& options) {
    const CliResult r = run_shell("/usr/bin/python3 " + shell_quoted(std::string(DOJO_MODELS_DIR) + "/export_model.py") +
                                  " --model " + model + " --out " + shell_quoted(out.string()) + " " + options);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out.string();
}

std::string digest_of(const std::string& model) {
    const CliResult r = run_dojo({"train", model, "--train-limit", "640", "--test-limit", "100", "--batch", "32",
                                  "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out)["parameter_digest"].get<std::string>() : "";
}

TEST_P(FixedBatchExport, TrainsAtAnotherBatchAsTheDynamicExportDoes) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-fixed-" + GetParam() + "-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string fixed = export_model(GetParam(), dir / "fixed.onnx", "--fixed-batch 64");
    const std::string dynamic = export_model(GetParam(), dir / "dynamic.onnx", "");
    const std::string digest = digest_of(fixed);
    EXPECT_FALSE(digest.empty());
    EXPECT_EQ(digest, digest_of(dynamic)) << "the fixed-batch export trained at batch 32 (evaluated at 500)";
    const CliResult simulated = run_dojo({"sim", fixed, "--machine", "d1", "--batch", "16", "--strategy", "dp=1"});
    EXPECT_EQ(simulated.exit_code, 0) << simulated.err;
    fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, FixedBatchExport, testing::Values("mlp_view", "vit", "gpt"));

}  // namespace
}  // namespace dojo::test
