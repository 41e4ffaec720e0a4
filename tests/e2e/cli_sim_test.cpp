// `dojo sim` run as a user would: text for people, JSON for programs, clear errors for bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

const char* kSmallGpt = "gpt:layers=2,hidden=256,heads=4,seq=128,vocab=4000";

TEST(CliSim, JsonReportsTheStepAndItsParts) {
    const CliResult r = run_dojo({"sim", kSmallGpt, "--machine", "dgx-h100", "--batch", "16", "--strategy",
                                  "dp=4,tp=2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["strategy"], "dp=4,tp=2,pp=1,mb=1");
    EXPECT_EQ(j["devices_used"], 8);
    EXPECT_GT(j["step_s"].get<double>(), 0.0);
    EXPECT_GT(j["utilization"].get<double>(), 0.0);
    EXPECT_LT(j["utilization"].get<double>(), 1.0);
    EXPECT_GT(j["energy_j"].get<double>(), 0.0);
    EXPECT_TRUE(j["fits"].get<bool>());
    EXPECT_EQ(j["stages"].size(), 1u);
    EXPECT_FALSE(j["collectives"].empty());
}

TEST(CliSim, AutoListsTheAlternativesItTried) {
    const CliResult r = run_dojo({"sim", "resnet18", "--machine", "tile", "--batch", "50"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("step time"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("other strategies tried"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fits"), std::string::npos) << r.out;
}

TEST(CliSim, BadInputGetsAClearError) {
    CliResult r = run_dojo({"sim", kSmallGpt, "--machine", "dgx-h100", "--batch", "16", "--strategy", "dp=3"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("make the batch a multiple of 3"), std::string::npos) << r.err;
    r = run_dojo({"sim", kSmallGpt, "--machine", "dgx-h100", "--batch", "16", "--strategy", "dp=16"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("needs 16 devices"), std::string::npos) << r.err;
    r = run_dojo({"sim", kSmallGpt, "--machine", "tile", "--batch", "16", "--strategy", "tp=50"});
    EXPECT_EQ(r.exit_code, 2);
    r = run_dojo({"sim", kSmallGpt, "--machine", "nosuch", "--batch", "16"});
    EXPECT_EQ(r.exit_code, 2);
    r = run_dojo({"sim", kSmallGpt, "--machine", "tile", "--batch", "16", "--precision", "fp16"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("fp32, bf16, cfp8"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dojo::test
