// Golden text dumps of spatial placements and of the compiler passes' decisions for small cases
// (compiler/place_spatial.h, compiler/dump.h). A change to the placement
// shows up here as a diff to review; after reviewing it, regenerate the files with
//     DOJO_UPDATE_GOLDEN=1 build/tests/golden_tests
// and commit them with the change.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "dojo/compiler/dump.h"
#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/machine/machine.h"
#include "dojo/sim/topology.h"
#include "golden.h"
#include "plan_at_widths.h"

namespace dojo::compiler {
namespace {

std::string placement_dump(const std::string& model, std::int64_t batch, const std::string& strategy,
                           const std::string& machine_spec, LayoutChoice layout = LayoutChoice::Spatial) {
    const sim::Topology topology =
        sim::derive_topology(machine::load_machine(machine_spec, machine::default_machines_dir()));
    const Plan plan = make_plan(model, batch, parse_strategy(strategy), autodiff::AdamWConfig{});
    return dump_placement(place_spatial(plan, sim::core_mesh(topology, compiler::Precision::Bf16), "bf16", layout));
}

void expect_golden(const std::string& name, const std::string& actual) {
    test::expect_golden(DOJO_GOLDEN_DIR, name, actual, "the placement");
}

TEST(GoldenPlacement, LenetOnOneD1) {
    expect_golden("lenet_d1_placement.txt", placement_dump("lenet", 64, "dp=1", "d1"));
}

TEST(GoldenPlacement, SmallGptTensorAndPipelineParallelOnATile) {
    expect_golden("gpt_tile_tp4_pp2_placement.txt",
                  placement_dump("gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000", 16, "dp=2,tp=4,pp=2,mb=4,sp=1",
                                 "tile"));
}

TEST(GoldenPlacement, Resnet50StreamsFromHbmOnTheV1Matrix) {
    expect_golden("resnet50_v1_matrix_placement.txt", placement_dump("resnet50", 32, "dp=1", "v1-matrix"));
}

// What the pass chooses by itself (the faster layout by its model) for the Stable-Diffusion-style UNet on one tile
// with its interface processors, pipelined over 4 stages.
TEST(GoldenPlacement, UnetOnATileWithItsInterfaceProcessorsAuto) {
    expect_golden("unet_tile_dips_placement.txt",
                  placement_dump("unet", 25, "dp=5,pp=4,mb=5,zero=1", "tile-dips", LayoutChoice::Auto));
}

std::string pass_dumps(const std::string& model, std::int64_t batch, const std::string& strategy) {
    const Plan plan = make_plan(model, batch, parse_strategy(strategy), autodiff::SgdConfig{});
    std::string out;
    for (const std::string& name : dump_pass_names()) {
        out += "--- " + name + "\n" + dump_pass(plan, name);
    }
    return out;
}

TEST(GoldenPasses, MlpTensorParallel) {
    expect_golden("mlp_tp2_passes.txt", pass_dumps("mlp", 8, "tp=2"));
}

TEST(GoldenPasses, SmallGptPipelinedWithRecomputation) {
    expect_golden("gpt_pp2_recompute_passes.txt",
                  pass_dumps("gpt:layers=2,hidden=64,heads=4,seq=16,vocab=100", 8, "dp=2,pp=2,mb=2,recompute=1"));
}

// A small GPT block with tp=4, pp=2 and sequence parallelism, each device's program cut
// into stage programs (which values travel between stages at which local shapes, and how many all-reduces each has).
TEST(GoldenPasses, SmallGptTensorPipelineAndSequenceParallel) {
    const Plan plan = make_plan("gpt:layers=2,hidden=48,heads=4,seq=16,vocab=96", 8, parse_strategy("tp=4,pp=2,sp=1"),
                                autodiff::SgdConfig{});
    expect_golden("gpt_tp4_pp2_sp_programs.txt", dump_pass(plan, "layouts") + dump_pass(plan, "programs"));
}

}  // namespace
}  // namespace dojo::compiler
