// The occupancy network end to end at a small size: exported from PyTorch with the store's calibration
// (models/occupancy.py), trained by dojo on the store's occupancy labels, and loaded back into PyTorch, which finds
// the IoU dojo reported.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

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

}  // namespace
}  // namespace dojo::test
