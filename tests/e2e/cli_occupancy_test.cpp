// The occupancy network end to end at a small size: exported from PyTorch with the store's calibration
// (models/occupancy.py), trained by dojo on the store's occupancy labels, and loaded back into PyTorch, which finds
// the IoU dojo reported.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_runner.h"
#include "dojo/frontend/catalog.h"
#include "dojo/frontend/model.h"
#include "dojo/ir/interpreter.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(CliOccupancy, TrainsFromTheStoreAndLoadsBackIntoPyTorchWithTheSameIoU) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-cli-occupancy-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "export");
    const std::string store = (dir / "store").string();
    ASSERT_EQ(run_dojo({"data", "synth", "--out", store, "--scenes", "8", "--duration", "1", "--size", "64x48"})
                  .exit_code, 0);
    const std::string dojo = DOJO_CLI_PATH;
    const std::string models = DOJO_MODELS_DIR;
    const std::string cameras = "main,left_pillar,right_pillar,rear";
    const std::string onnx = (dir / "occupancy.onnx").string(), trained = (dir / "trained.onnx").string();
    const CliResult exported = run_shell("/usr/bin/python3 " + models + "/occupancy.py --dojo " + dojo + " --store " +
                                         store + " --cameras " + cameras + " --size 32x24 --grid 20x20x2 --channels 8 --out " +
                                         onnx);
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const std::string data = "clips:" + store + ",cameras=main+left_pillar+right_pillar+rear,size=32x24,every=2,"
                             "target=occupancy,grid=20x20x2";
    const CliResult trained_run = run_dojo({"train", onnx, "--data", data, "--epochs", "8", "--batch", "8", "--lr",
                                            "0.01", "--optimizer", "adamw", "--out", trained, "--json"});
    ASSERT_EQ(trained_run.exit_code, 0) << trained_run.err;
    const double dojo_iou = json::parse(trained_run.out)["epochs"].back()["test_iou"].get<double>();
    // Above an empty prediction's 0, so that the comparison below compares predictions (0.14 when written).
    EXPECT_GT(dojo_iou, 0.05);

    ASSERT_EQ(run_dojo({"data", "export", store, "--clips", data.substr(data.find(',') + 1), "--out",
                        (dir / "export").string()}).exit_code, 0);
    const CliResult check = run_shell("/usr/bin/python3 " + models + "/occupancy_train.py --dojo " + dojo +
                                      " --store " + store + " --data " + (dir / "export").string() + " --cameras " +
                                      cameras + " --size 32x24 --grid 20x20x2 --channels 8 --onnx " + trained + " --json");
    ASSERT_EQ(check.exit_code, 0) << check.err;
    // The same weights and samples; float32 kernels that differ in summation order can flip a logit next to 0.
    EXPECT_NEAR(json::parse(check.out)["test_iou"].get<double>(), dojo_iou, 0.01) << check.out;
    fs::remove_all(dir);
}

// The catalog's `occupancy` and models/occupancy.py are the same network: given the PyTorch export's weights by name,
// the catalog's graph computes the same logits for the same frames (so the lifting by the production rig's
// calibration at the store's rendered size is the one PyTorch computes from the store's labels). Both backbones: the
// small stem, and a ResNet trunk with its feature pyramid.
struct Twin {
    std::string catalog_spec;  // without the sample's size: the data's
    std::string python_args;
    ir::Shape sample;          // [3 x cameras, H, W]
    int cells;
};

void expect_same_logits(const Twin& twin) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-catalog-occupancy-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    const std::string store = (dir / "store").string(), onnx = (dir / "occupancy.onnx").string();
    ASSERT_EQ(run_dojo({"data", "synth", "--out", store, "--scenes", "1", "--duration", "0.2", "--size", "64x48"})
                  .exit_code, 0);
    const CliResult exported = run_shell("/usr/bin/python3 " + std::string(DOJO_MODELS_DIR) + "/occupancy.py --dojo " +
                                         DOJO_CLI_PATH + " --store " + store + " " + twin.python_args + " --out " + onnx);
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const frontend::Model pytorch = frontend::load_model(onnx, 2, twin.sample, twin.cells);
    const frontend::Model catalog = frontend::build_catalog_model(twin.catalog_spec, 2, twin.sample, twin.cells);

    std::map<std::string, std::vector<float>> weights;  // the export's parameters and states, by name
    for (const auto& [id, values] : pytorch.values) {
        weights[pytorch.graph.node(id).name] = values;
    }
    std::mt19937 random(7);
    std::uniform_real_distribution<float> pixel(-1.0F, 1.0F);
    std::vector<float> frames(static_cast<std::size_t>(2 * twin.sample.numel()));
    for (float& v : frames) {
        v = pixel(random);
    }
    ir::Bindings<float> catalog_leaves, pytorch_leaves;
    catalog_leaves[catalog.input] = ir::Buffer<float>(catalog.graph.type(catalog.input).shape, frames);
    pytorch_leaves[pytorch.input] = ir::Buffer<float>(pytorch.graph.type(pytorch.input).shape, frames);
    for (const auto& [id, values] : pytorch.values) {
        pytorch_leaves[id] = ir::Buffer<float>(pytorch.graph.type(id).shape, values);
    }
    std::vector<ir::NodeId> leaves = catalog.graph.parameters();
    leaves.insert(leaves.end(), catalog.graph.states().begin(), catalog.graph.states().end());
    for (const ir::NodeId id : leaves) {
        const std::string& name = catalog.graph.node(id).name;
        ASSERT_TRUE(weights.count(name)) << "the PyTorch export has no tensor named " << name;
        ASSERT_EQ(weights[name].size(), static_cast<std::size_t>(catalog.graph.type(id).shape.numel())) << name;
        catalog_leaves[id] = ir::Buffer<float>(catalog.graph.type(id).shape, weights[name]);
    }
    EXPECT_EQ(leaves.size(), weights.size()) << "the two networks hold different tensors";

    const auto ours = ir::evaluate(catalog.graph, catalog_leaves)[catalog.logits.index];
    const auto theirs = ir::evaluate(pytorch.graph, pytorch_leaves)[pytorch.logits.index];
    ASSERT_EQ(ours.shape, theirs.shape);
    double largest = 0, differs = 0;
    for (std::size_t i = 0; i < ours.data.size(); ++i) {
        largest = std::max(largest, std::abs(static_cast<double>(theirs.data[i])));
        differs = std::max(differs, std::abs(static_cast<double>(ours.data[i]) - theirs.data[i]));
    }
    EXPECT_GT(largest, 0.01) << "the logits are all near zero: the comparison would prove nothing";
    EXPECT_LT(differs, 1e-4 * std::max(1.0, largest)) << "largest logit " << largest;
    fs::remove_all(dir);
}

TEST(CliOccupancy, TheCatalogsNetworkIsTheOnePyTorchExports) {
    // The first four cameras of the rig at 32x24; 20 x 16 x 2 cells.
    expect_same_logits({"occupancy:stored=64x48,voxels=20x16x2,channels=8",
                        "--cameras main,narrow,wide,left_pillar --size 32x24 --grid 20x16x2 --channels 8",
                        ir::Shape{12, 24, 32}, 640});
}

TEST(CliOccupancy, TheCatalogsPyramidNetworkIsTheOnePyTorchExports) {
    // Two cameras at 64x32 through ResNet-18 and the feature pyramid; 10 x 10 x 2 cells.
    expect_same_logits({"occupancy:stored=64x48,voxels=10x10x2,channels=8,resnet=18",
                        "--cameras main,narrow --size 64x32 --grid 10x10x2 --channels 8 --resnet 18",
                        ir::Shape{6, 32, 64}, 200});
}

}  // namespace
}  // namespace dojo::test
