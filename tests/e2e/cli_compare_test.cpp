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
