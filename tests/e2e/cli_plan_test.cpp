// `dojo plan` run as a user would: the placement drawn for people, JSON for programs, clear errors for bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

TEST(CliPlan, DumpDrawsTheMeshAndListsTheLayers) {
    const CliResult r = run_dojo({"plan", "lenet", "--machine", "d1", "--batch", "64", "--strategy", "dp=1", "--layout",
                                  "spatial", "--dump"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("stage 0 on one d1 (18 x 20 mesh, 354 working cores"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("AAAAAAAA"), std::string::npos) << r.out;  // conv1's rectangle, a row of it
    EXPECT_NE(r.out.find("conv2"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("every core's working set fits its SRAM"), std::string::npos) << r.out;
}

TEST(CliPlan, JsonHoldsEveryStagesLayersAndRectangles) {
    const CliResult r = run_dojo({"plan", "gpt:layers=2,hidden=256,heads=4,seq=128,vocab=4000", "--machine", "tile",
                                  "--batch", "8", "--strategy", "tp=2,pp=2,mb=4", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["strategy"], "dp=1,tp=2,pp=2,mb=4");
    ASSERT_EQ(j["placement"]["stages"].size(), 2u);
    EXPECT_TRUE(j["placement"]["fits"].get<bool>());
    for (const auto& stage : j["placement"]["stages"]) {
        int cores = 0;
        for (const auto& region : stage["regions"]) {
            cores += region["cores"].get<int>();
            EXPECT_LE(region["bytes_per_core"].get<double>(), j["placement"]["mesh"]["sram_bytes_per_core"]);
        }
        EXPECT_EQ(cores, 354);
        EXPECT_FALSE(stage["layers"].empty());
    }
}

TEST(CliPlan, AModelTooLargeForABareChipIsReportedNotCrashed) {
    const CliResult r = run_dojo({"plan", "resnet50", "--machine", "d1", "--batch", "32", "--strategy", "dp=1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("DOES NOT FIT"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("reaches no HBM"), std::string::npos) << r.out;
    // dojo sim says the same of the plan.
    const CliResult s = run_dojo({"sim", "resnet50", "--machine", "d1", "--batch", "32", "--strategy", "dp=1"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_NE(s.out.find("fits             NO"), std::string::npos) << s.out;
}

// --verify runs the plan stage by stage against the whole step: a pipeline split alone is bit-identical.
TEST(CliPlan, VerifyRunsThePartitionedStepAgainstTheWholeOne) {
    const CliResult piped = run_dojo({"plan", "lenet", "--machine", "tile", "--batch", "8", "--strategy", "pp=2",
                                      "--optimizer", "sgd", "--verify"});
    ASSERT_EQ(piped.exit_code, 0) << piped.err;
    EXPECT_NE(piped.out.find("equals the whole step: every parameter bit for bit"), std::string::npos) << piped.out;
    // Spatially placed on one D1: the step also runs layer by layer on the placement's rectangles.
    const CliResult placed = run_dojo({"plan", "lenet", "--machine", "d1", "--batch", "64", "--layout", "temporal",
                                       "--optimizer", "sgd", "--verify", "--json"});
    ASSERT_EQ(placed.exit_code, 0) << placed.err;
    const nlohmann::json sp = nlohmann::json::parse(placed.out)["functional_check"]["spatial"];
    EXPECT_EQ(sp["not_run"], "");
    EXPECT_EQ(sp["layers"], 4);
    EXPECT_TRUE(sp["identical"].get<bool>());
    EXPECT_GT(sp["transfers"].get<int>(), 0);
    const CliResult dp = run_dojo({"plan", "lenet", "--machine", "tile", "--batch", "16", "--strategy",
                                   "dp=2,pp=2,mb=2", "--optimizer", "sgd", "--verify", "--json"});
    ASSERT_EQ(dp.exit_code, 0) << dp.err;
    const nlohmann::json j = nlohmann::json::parse(dp.out)["functional_check"];
    EXPECT_TRUE(j["replicas_agree"].get<bool>());
    EXPECT_EQ(j["all_reduces"], 8);
    EXPECT_GT(j["transfers"].get<int>(), 0);
    EXPECT_LT(j["largest_relative_difference"].get<double>(), 1e-5);
    // Interleaved (vp=2): the step runs as pp * vp chunks in the interleaved order.
    const CliResult vp = run_dojo({"plan", "lenet", "--machine", "tile", "--batch", "8", "--strategy",
                                   "pp=2,vp=2,mb=2", "--optimizer", "sgd", "--verify", "--json"});
    ASSERT_EQ(vp.exit_code, 0) << vp.err;
    const nlohmann::json v = nlohmann::json::parse(vp.out)["functional_check"];
    EXPECT_EQ(v["pipeline_chunks"], 4);
    EXPECT_LT(v["largest_relative_difference"].get<double>(), 1e-5);
    const CliResult tp = run_dojo({"plan", "lenet", "--machine", "tile", "--batch", "8", "--strategy", "tp=2",
                                   "--optimizer", "sgd", "--verify", "--json"});
    ASSERT_EQ(tp.exit_code, 0) << tp.err;
    const nlohmann::json t = nlohmann::json::parse(tp.out)["functional_check"];
    // fc2 (row-parallel) sums its partial outputs; fc1 (column-parallel) sums the gradient of its input.
    EXPECT_EQ(t["all_reduces"], 2);
    EXPECT_LT(t["largest_relative_difference"].get<double>(), 1e-5);
    // A model too large to run twice on this CPU is refused, not left running for hours.
    const CliResult big = run_dojo({"plan", "resnet50", "--machine", "tile", "--batch", "32", "--strategy", "pp=2",
                                    "--verify"});
    EXPECT_EQ(big.exit_code, 2);
    EXPECT_NE(big.err.find("GFLOP"), std::string::npos) << big.err;
    // A GPT block with tp=2 runs device by device; with pipeline stages and sequence parallelism too.
    const CliResult gpt = run_dojo({"plan", "gpt:layers=1,hidden=64,heads=4,seq=16,vocab=100", "--machine", "tile",
                                    "--batch", "4", "--strategy", "tp=2", "--optimizer", "sgd", "--verify"});
    ASSERT_EQ(gpt.exit_code, 0) << gpt.err;
    EXPECT_NE(gpt.out.find("matches the whole step"), std::string::npos) << gpt.out;
    const CliResult mixed = run_dojo({"plan", "gpt:layers=2,hidden=48,heads=4,seq=16,vocab=96", "--machine", "tile",
                                      "--batch", "8", "--strategy", "tp=4,pp=2,sp=1", "--optimizer", "sgd",
                                      "--precision", "fp32", "--verify", "--json"});
    ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
    const nlohmann::json m = nlohmann::json::parse(mixed.out)["functional_check"];
    EXPECT_TRUE(m["replicas_agree"].get<bool>());
    EXPECT_GT(m["transfers"].get<int>(), 0);
    EXPECT_LT(m["largest_relative_difference"].get<double>(), 1e-6);
    // A layout the devices cannot hold is refused, naming the node: sp=1 holds a quarter of each micro-batch's
    // samples per device, and a micro-batch of 2 has no quarter.
    const CliResult odd = run_dojo({"plan", "gpt:layers=1,hidden=48,heads=4,seq=16,vocab=96", "--machine", "tile",
                                    "--batch", "4", "--strategy", "tp=4,mb=2,sp=1", "--verify"});
    EXPECT_EQ(odd.exit_code, 2);
    EXPECT_NE(odd.err.find("which tp does not divide"), std::string::npos) << odd.err;
}

// The Stable Diffusion demonstration of AI Day 2022: the catalog's SD-style UNet compiles onto one training tile
// (25 D1, with the interface processors of one edge for DRAM) with model parallelism (tensor 5 x data 5), fits and
// simulates, every stage placed on the cores; the search finds a plan that fits the tile too.
TEST(CliPlan, TheStableDiffusionUnetCompilesOntoOneTileWithModelParallelism) {
    const CliResult r = run_dojo({"sim", "unet", "--machine", "tile-dips", "--batch", "25", "--strategy",
                                  "dp=5,tp=5,zero=1,recompute=full", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["fits"].get<bool>()) << j["fit_report"];
    EXPECT_EQ(j["devices_used"].get<int>(), 25);
    for (const auto& stage : j["stages"]) {
        EXPECT_TRUE(stage["core_fits"].get<bool>());
        EXPECT_FALSE(stage["core_placement"].get<std::string>().empty());
    }
    const CliResult searched = run_dojo({"sim", "unet", "--machine", "tile-dips", "--batch", "25", "--json"});
    ASSERT_EQ(searched.exit_code, 0) << searched.err;
    const nlohmann::json s = nlohmann::json::parse(searched.out);
    EXPECT_TRUE(s["fits"].get<bool>()) << s["fit_report"];
    EXPECT_LE(s["devices_used"].get<int>(), 25);
    EXPECT_LE(s["step_s"].get<double>(), j["step_s"].get<double>());
    // Data parallel alone cannot hold it: a replica needs more than a D1's SRAM and HBM share.
    const CliResult dp = run_dojo({"sim", "unet", "--machine", "tile-dips", "--batch", "25", "--strategy", "dp=25",
                                   "--json"});
    ASSERT_EQ(dp.exit_code, 0) << dp.err;
    EXPECT_FALSE(nlohmann::json::parse(dp.out)["fits"].get<bool>());
}

TEST(CliPlan, DumpPassPrintsWhatEachPassDecided) {
    const CliResult r = run_dojo({"plan", "mlp", "--machine", "tile", "--batch", "8", "--strategy", "tp=2",
                                  "--dump-pass", "layouts,programs"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("--- layouts"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("node 'fc2' (#15 MatMul) f32[8, 10]: partial -> all-reduce"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rank 1:"), std::string::npos) << r.out;
    const CliResult bad = run_dojo({"plan", "mlp", "--machine", "tile", "--batch", "8", "--strategy", "tp=2",
                                    "--dump-pass", "layouts,colouring"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("unknown pass 'colouring'"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("transfers"), std::string::npos) << bad.err;
}

// The CPU lowering of the step at the precision: cfp8's roundings are in it, each with the kernel that runs it.
TEST(CliPlan, DumpPassExecPlanShowsTheCpuLoweringAtThePrecision) {
    const CliResult r = run_dojo({"plan", "lenet", "--machine", "dev-vm", "--batch", "16", "--strategy", "dp=1",
                                  "--precision", "cfp8", "--dump-pass", "exec-plan"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("--- exec-plan\nexec plan: kernels fast"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("node 'conv1' (#5 Conv2d) f32[16, 6, 28, 28]: onednn"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(RoundGrad) f32[16, 6, 28, 28]: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("vectorised"), std::string::npos) << r.out;
    const CliResult fp32 = run_dojo({"plan", "lenet", "--machine", "dev-vm", "--batch", "16", "--strategy", "dp=1",
                                     "--precision", "fp32", "--dump-pass", "exec-plan"});
    ASSERT_EQ(fp32.exit_code, 0) << fp32.err;
    EXPECT_EQ(fp32.out.find("RoundTo"), std::string::npos) << fp32.out;
}

TEST(CliPlan, GpusHaveNoMeshAndBadInputIsAUsageError) {
    const CliResult gpu = run_dojo({"plan", "lenet", "--machine", "dgx-a100", "--batch", "64", "--strategy", "dp=8"});
    ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
    EXPECT_NE(gpu.out.find("has no mesh of cores"), std::string::npos) << gpu.out;
    const CliResult batch = run_dojo({"plan", "lenet", "--machine", "d1", "--batch", "0"});
    EXPECT_EQ(batch.exit_code, 2);
    EXPECT_NE(batch.err.find("--batch"), std::string::npos) << batch.err;
    const CliResult too_many = run_dojo({"plan", "lenet", "--machine", "d1", "--batch", "64", "--strategy", "dp=2"});
    EXPECT_EQ(too_many.exit_code, 2);
    EXPECT_NE(too_many.err.find("needs 2"), std::string::npos) << too_many.err;
    const CliResult model = run_dojo({"plan", "no-such-model", "--machine", "d1", "--batch", "8", "--strategy", "dp=1"});
    EXPECT_EQ(model.exit_code, 2);
    const CliResult layout = run_dojo({"plan", "lenet", "--machine", "d1", "--batch", "8", "--strategy", "dp=1",
                                       "--layout", "diagonal"});
    EXPECT_EQ(layout.exit_code, 2);
    EXPECT_NE(layout.err.find("spatial"), std::string::npos) << layout.err;
}

}  // namespace
}  // namespace dojo::test
