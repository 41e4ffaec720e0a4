// Spatial placement (compiler/place_spatial.h): layers on rectangles of a D1's cores, each core within its SRAM.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/ir/op.h"
#include "dojo/machine/machine.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"
#include "dojo/util/error.h"
#include "plan_at_widths.h"

namespace dojo::compiler {
namespace {

const char* kSmallGpt = "gpt:layers=4,hidden=512,heads=8,seq=256,vocab=8000";

sim::Topology preset(const std::string& spec) {
    return sim::derive_topology(machine::load_machine(spec, machine::default_machines_dir()));
}

// Every working core of the mesh lies in exactly one region, and each region's cores are its working cells.
void expect_partition(const CoreMesh& mesh, const StagePlacement& stage) {
    std::vector<int> owner(static_cast<std::size_t>(mesh.columns * mesh.rows), -1);
    int cores = 0;
    for (std::size_t r = 0; r < stage.regions.size(); ++r) {
        const Region& region = stage.regions[r];
        ASSERT_GE(region.x, 0);
        ASSERT_GE(region.y, 0);
        ASSERT_LE(region.x + region.width, mesh.columns);
        ASSERT_LE(region.y + region.height, mesh.rows);
        for (int y = region.y; y < region.y + region.height; ++y) {
            for (int x = region.x; x < region.x + region.width; ++x) {
                int& cell = owner[static_cast<std::size_t>(y * mesh.columns + x)];
                EXPECT_EQ(cell, -1) << "cell (" << x << "," << y << ") in two regions";
                cell = static_cast<int>(r);
            }
        }
        EXPECT_GT(region.cores, 0);
        cores += region.cores;
        EXPECT_LE(region.bytes_per_core, mesh.sram_bytes_per_core) << "region " << r;
    }
    EXPECT_EQ(cores, mesh.working_cores);
    for (const int cell : owner) {
        EXPECT_NE(cell, -1) << "a cell of the mesh is in no region";
    }
}

TEST(PlaceSpatial, LenetOnOneD1GivesEachLayerItsOwnRectangleInSram) {
    const sim::Topology d1 = preset("d1");
    const CoreMesh mesh = sim::core_mesh(d1, compiler::Precision::Bf16);
    EXPECT_EQ(mesh.columns * mesh.rows, 360);
    EXPECT_EQ(mesh.working_cores, 354);
    EXPECT_DOUBLE_EQ(mesh.sram_bytes_per_core, 1.25 * 1024 * 1024);
    const Plan plan = make_plan("lenet", 64, Strategy{}, autodiff::SgdConfig{});
    const SpatialPlacement p = place_spatial(plan, mesh, "bf16", LayoutChoice::Spatial);
    ASSERT_EQ(p.stages.size(), 1u);
    const StagePlacement& s = p.stages[0];
    ASSERT_TRUE(s.fits) << s.report;
    EXPECT_EQ(s.residency, "SRAM");
    EXPECT_FALSE(s.temporal);
    ASSERT_EQ(s.layers.size(), 4u);  // conv1, conv2, fc1, fc2
    EXPECT_EQ(s.layers[0].name, "conv1");
    EXPECT_EQ(s.layers[3].name, "fc2");
    EXPECT_EQ(s.regions.size(), 4u);
    expect_partition(mesh, s);
    // Consecutive layers sit in touching rectangles: activations move one hop.
    EXPECT_DOUBLE_EQ(s.mean_hops, 1.0);
    // Cores follow the FLOPs: conv2 does the most work and gets the most cores.
    const Region& conv2 = s.regions[static_cast<std::size_t>(s.layers[1].region)];
    for (const PlacedLayer& l : s.layers) {
        EXPECT_LE(s.regions[static_cast<std::size_t>(l.region)].cores, conv2.cores) << l.name;
    }
    EXPECT_GT(s.balance, 0.8);
    EXPECT_LE(s.balance, 1.0);
}

// Every live node of a stage is placed once, and the layers' bytes add up to what the simulator's memory plan
// holds for the stage: the placement and the simulator count the same tensors.
TEST(PlaceSpatial, LayersHoldWhatTheSimulatorsMemoryPlanHolds) {
    const sim::Topology tile = preset("tile");
    Plan plan = make_plan(kSmallGpt, 16, parse_strategy("dp=2,tp=4,pp=2,mb=4"), autodiff::AdamWConfig{});
    const SpatialPlacement p = place_spatial(plan, sim::core_mesh(tile, compiler::Precision::Bf16), "bf16", LayoutChoice::Spatial);
    const sim::SimResult r = sim::simulate(plan, tile, "bf16");
    ASSERT_EQ(p.stages.size(), 2u);
    const ir::Graph& g = plan.step.graph;
    for (int s = 0; s < 2; ++s) {
        const StagePlacement& stage = p.stages[static_cast<std::size_t>(s)];
        ASSERT_TRUE(stage.fits) << stage.report;
        expect_partition(p.mesh, stage);
        double static_bytes = 0, activation_bytes = 0;
        std::int64_t nodes = 0;
        for (const PlacedLayer& l : stage.layers) {
            static_bytes += l.static_bytes;
            activation_bytes += l.activation_bytes;
            nodes += l.nodes;
        }
        const sim::MemoryUse& m = r.stages[static_cast<std::size_t>(s)].memory;
        EXPECT_NEAR(static_bytes, m.parameters_bytes + m.gradients_bytes + m.optimizer_bytes, 1.0) << "stage " << s;
        EXPECT_NEAR(activation_bytes, m.activations_bytes, 1.0) << "stage " << s;
        std::int64_t live = 0;
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            const ir::OpKind op = g.node(ir::NodeId{i}).op;
            const bool leaf = ir::is_leaf(op);
            live += plan.live[i] && plan.stage[i] == s && !leaf ? 1 : 0;
        }
        EXPECT_EQ(nodes, live) << "stage " << s;
    }
}

// A working set beyond the cores' SRAM never overflows silently: on a bare D1 (no HBM) it is rejected with the
// shortfall; where the chip reaches HBM the weights (and, if need be, the activations) stream from it, and every
// core then fits.
TEST(PlaceSpatial, AWorkingSetBeyondSramSpillsToHbmOrIsRejected) {
    const Plan plan = make_plan("resnet50", 32, Strategy{}, autodiff::SgdConfig{});
    const SpatialPlacement bare = place_spatial(plan, sim::core_mesh(preset("d1"), compiler::Precision::Bf16), "bf16");
    ASSERT_EQ(bare.stages.size(), 1u);
    EXPECT_FALSE(bare.fits());
    EXPECT_FALSE(bare.stages[0].fits);
    EXPECT_NE(bare.stages[0].report.find("reaches no HBM"), std::string::npos) << bare.stages[0].report;
    EXPECT_NE(bare.stages[0].report.find("MB"), std::string::npos) << bare.stages[0].report;
    EXPECT_NE(dump_placement(bare).find("DOES NOT FIT"), std::string::npos);

    const CoreMesh mesh = sim::core_mesh(preset("v1-matrix"), compiler::Precision::Bf16);
    ASSERT_GT(mesh.hbm_bytes, 0);
    const SpatialPlacement streamed = place_spatial(plan, mesh, "bf16", LayoutChoice::Spatial);
    ASSERT_TRUE(streamed.fits()) << streamed.stages[0].report;
    const StagePlacement& s = streamed.stages[0];
    EXPECT_NE(s.residency, "SRAM");
    EXPECT_GT(s.stream_bytes_per_step, 0);
    EXPECT_DOUBLE_EQ(s.stream_s, s.stream_bytes_per_step / mesh.hbm_bandwidth);
    expect_partition(mesh, s);
}

// What fits in SRAM stays there: a placement streams nothing it does not have to.
TEST(PlaceSpatial, AModelThatFitsStreamsNothing) {
    const Plan plan = make_plan("lenet", 64, Strategy{}, autodiff::SgdConfig{});
    const SpatialPlacement p = place_spatial(plan, sim::core_mesh(preset("v1-matrix"), compiler::Precision::Fp32), "fp32");
    ASSERT_TRUE(p.fits());
    EXPECT_EQ(p.stages[0].residency, "SRAM");
    EXPECT_EQ(p.stages[0].stream_bytes_per_step, 0);
}

// Auto takes, per stage, the faster of side by side and in turn by the pass's model; asked for one, it gets it.
TEST(PlaceSpatial, AutoTakesTheFasterLayoutAndEitherCanBeAskedFor) {
    const sim::Topology tile = preset("tile");
    const Plan plan = make_plan(kSmallGpt, 16, parse_strategy("dp=2,tp=4,pp=2,mb=4"), autodiff::AdamWConfig{});
    const CoreMesh mesh = sim::core_mesh(tile, compiler::Precision::Bf16);
    EXPECT_GT(mesh.bisection_bandwidth, 0);
    const SpatialPlacement side = place_spatial(plan, mesh, "bf16", LayoutChoice::Spatial);
    const SpatialPlacement turn = place_spatial(plan, mesh, "bf16", LayoutChoice::Temporal);
    const SpatialPlacement best = place_spatial(plan, mesh, "bf16", LayoutChoice::Auto);
    for (std::size_t s = 0; s < best.stages.size(); ++s) {
        EXPECT_FALSE(side.stages[s].temporal);
        EXPECT_TRUE(turn.stages[s].temporal);
        EXPECT_EQ(turn.stages[s].regions.size(), 1u);
        EXPECT_GT(turn.stages[s].respread_s, 0);
        EXPECT_EQ(side.stages[s].respread_s, 0);
        const auto time = [&](const SpatialPlacement& p) { return p.stages[s].compute_s + p.stages[s].respread_s; };
        EXPECT_LE(time(best), time(side));
        EXPECT_LE(time(best), time(turn));
    }
    EXPECT_THROW(parse_layout_choice("diagonal"), UsageError);
}

TEST(PlaceSpatial, AGpuHasNoMeshToPlaceOn) {
    const Plan plan = make_plan("lenet", 64, Strategy{}, autodiff::SgdConfig{});
    const CoreMesh gpu = sim::core_mesh(preset("dgx-a100"), compiler::Precision::Bf16);
    EXPECT_EQ(gpu.columns, 0);
    EXPECT_THROW(place_spatial(plan, gpu, "bf16"), UsageError);
    EXPECT_THROW(place_spatial(plan, sim::core_mesh(preset("d1"), compiler::Precision::Bf16), "fp8"), UsageError);
}

}  // namespace
}  // namespace dojo::compiler
