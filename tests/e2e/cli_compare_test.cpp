// `dojo compare` run as a user would: machines side by side, GPU-equivalents consistent with their own nodes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

TEST(CliCompare, MachinesSideBySideWithGpuEquivalents) {
    const CliResult r = run_dojo({"compare", "lenet", "--machines", "tile,dgx-a100,dgx-h100,superpod-h100:nodes=2",
                                  "--batch", "256", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["machines"].size(), 4u);
    EXPECT_EQ(j["machines"][3]["machine"], "superpod-h100:nodes=2");
    EXPECT_EQ(j["machines"][3]["devices_total"], 16);
    // A DGX is its own 8 GPUs' worth.
    EXPECT_NEAR(j["machines"][1]["a100_equivalents"].get<double>(), 8.0, 1e-9);
    EXPECT_NEAR(j["machines"][2]["h100_equivalents"].get<double>(), 8.0, 1e-9);
    for (const auto& m : j["machines"]) {
        EXPECT_GT(m["samples_per_s"].get<double>(), 0.0) << m.dump();
        EXPECT_NEAR(m["a100_equivalents"].get<double>(),
                    m["samples_per_s"].get<double>() / j["a100_samples_per_s_each"].get<double>(), 1e-6);
        EXPECT_GT(m["energy_per_sample_j"].get<double>(), 0.0);
        // An H100 does more per GPU than an A100, so fewer of them match the same machine.
        EXPECT_LT(m["h100_equivalents"].get<double>(), m["a100_equivalents"].get<double>());
    }
}

// --software runs every GPU with the stack, the reference DGXs included: a DGX H100 stays its own 8 H100s' worth,
// a Dojo tile's rate does not change, and its GPU-equivalents are against the references running the stack.
TEST(CliCompare, SoftwareStacksRunOnEveryGpuTheReferencesToo) {
    const std::vector<std::string> args = {"compare", "gpt:layers=2,hidden=512,heads=8,seq=256,vocab=4000",
                                           "--machines", "tile,dgx-h100", "--batch", "64", "--json"};
    std::vector<std::string> with_te = args;
    with_te.insert(with_te.end(), {"--software", "nemo-te-2023"});
    const CliResult plain = run_dojo(args), te = run_dojo(with_te);
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    ASSERT_EQ(te.exit_code, 0) << te.err;
    const nlohmann::json a = nlohmann::json::parse(plain.out), b = nlohmann::json::parse(te.out);
    EXPECT_EQ(b["software"], "nemo-te-2023");
    EXPECT_DOUBLE_EQ(b["machines"][0]["samples_per_s"].get<double>(), a["machines"][0]["samples_per_s"].get<double>());
    EXPECT_NEAR(b["machines"][1]["h100_equivalents"].get<double>(), 8.0, 1e-9);
    EXPECT_NE(b["h100_samples_per_s_each"].get<double>(), a["h100_samples_per_s_each"].get<double>());
    EXPECT_NE(run_dojo({"compare", "mlp", "--machines", "dgx-h100", "--batch", "64"}).out.find("bf16:"),
              std::string::npos);
}

TEST(CliCompare, TextHasATableAndBadInputIsNamed) {
    CliResult r = run_dojo({"compare", "mlp", "--machines", "d1,dgx-h100", "--batch", "64"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("A100-eq"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("dgx-h100"), std::string::npos) << r.out;
    r = run_dojo({"compare", "mlp", "--machines", "tile,,dgx-h100", "--batch", "64"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("comma-separated list of presets"), std::string::npos) << r.err;
    r = run_dojo({"compare", "mlp", "--machines", "tile,nosuch", "--batch", "64"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
    r = run_dojo({"compare", "mlp", "--machines", "tile", "--batch", "0"});
    EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace dojo::test
