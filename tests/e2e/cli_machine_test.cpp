// `dojo machine list` and `dojo machine show`, run as a user would: text for people, JSON for programs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

TEST(CliMachine, ListNamesEveryPresetWithItsParameters) {
    const CliResult r = run_dojo({"machine", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* name : {"d1 ", "d1-2x2 ", "tile ", "tile-dips ", "v1-matrix ", "cabinet ", "exapod ",
                             "exapod-x7:pods=7 ", "dgx-a100 ", "dgx-h100 ", "superpod-a100:nodes=140 ",
                             "superpod-h100:nodes=128 "}) {
        EXPECT_NE(r.out.find(name), std::string::npos) << name << " missing from\n" << r.out;
    }
}

TEST(CliMachine, ShowPrintsTheTreeTotalsAndAssumptions) {
    const CliResult r = run_dojo({"machine", "show", "exapod"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("1,062,000 node, 3,000 d1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bf16 1.09 EFLOP/s"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("36 TB/s per tile"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(assumed)"), std::string::npos) << "unpublished values are marked";
}

TEST(CliMachine, ShowJsonCarriesSiValuesAndTheOverriddenParameter) {
    const CliResult r = run_dojo({"machine", "show", "superpod-h100:nodes=16", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["parameters"]["nodes"], 16);
    EXPECT_EQ(j["totals"]["units"]["h100-sxm"], 128);
    EXPECT_NEAR(j["totals"]["peak_flops"]["bf16"].get<double>(), 128 * 989.4e12, 1e10);
    EXPECT_EQ(j["zones"]["children"][0]["kind"], "dgx-h100");
    EXPECT_EQ(j["zones"]["children"][0]["count"], 16);
}

}  // namespace
}  // namespace dojo::test
