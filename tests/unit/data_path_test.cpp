// The input pipeline at machine scale (sim/data_path.h), on a DGX A100 whose host figures are in its preset.
#include <gtest/gtest.h>

#include "dojo/machine/machine.h"
#include "dojo/sim/data_path.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

TEST(DataPath, EachResourceGivesTheRateItSustainsAndTheLeastBounds) {
    const machine::Machine dgx = machine::load_machine("dgx-a100", machine::default_machines_dir());
    VideoInput in = VideoInput::parse("cameras=8,stored=1280x960,bitrate=8Mbps,fps=36");
    EXPECT_EQ(in.frames_per_sample, 8);
    EXPECT_DOUBLE_EQ(in.stored_bytes_per_frame, 8e6 / 8 / 36);
    in.sample_bytes = 1e6;
    // The DGX's figures: 128 host cores at 5e8 pixels/s each, 126 GB/s to the GPUs, 50 GB/s from storage.
    const double pixels_per_sample = 1280.0 * 960 * 8;
    const DataPathReport slow = data_path(dgx, 1000, in);
    EXPECT_DOUBLE_EQ(slow.frames_per_s, 8000);
    ASSERT_EQ(slow.resources.size(), 4u);
    EXPECT_NEAR(*slow.resources[1].samples_per_s, 128 * 5e8 / pixels_per_sample, 1e-6);  // 6,510 samples/s
    EXPECT_NEAR(*slow.resources[1].needed, 1000 * pixels_per_sample / 5e8, 1e-9);         // 19.7 cores
    EXPECT_NEAR(*slow.resources[2].samples_per_s, 126e9 / 1e6, 1e-6);
    EXPECT_NEAR(*slow.resources[3].samples_per_s, 50e9 / (8 * 8e6 / 8 / 36), 1e-3);
    EXPECT_EQ(slow.bound, "compute");
    EXPECT_DOUBLE_EQ(slow.samples_per_s, 1000);
    const DataPathReport fast = data_path(dgx, 1e5, in);
    EXPECT_EQ(fast.bound, "decode");
    EXPECT_NEAR(fast.samples_per_s, 128 * 5e8 / pixels_per_sample, 1e-6);
}

TEST(DataPath, AMachineWithoutHostFiguresReportsThemUnknown) {
    const machine::Machine d1 = machine::load_machine("d1", machine::default_machines_dir());
    VideoInput in = VideoInput::parse("");
    in.sample_bytes = 1e6;
    const DataPathReport r = data_path(d1, 50, in);
    EXPECT_FALSE(r.resources[1].samples_per_s.has_value());
    EXPECT_FALSE(r.resources[1].needed.has_value());  // no decode rate: the cores it needs are unknown, not none
    EXPECT_FALSE(r.resources[3].capacity.has_value());
    EXPECT_EQ(r.bound, "compute");
    EXPECT_THROW(VideoInput::parse("cameras=0"), UsageError);
    EXPECT_THROW(VideoInput::parse("lens=fisheye"), UsageError);
    EXPECT_THROW(VideoInput::parse("stored=1280"), UsageError);
}

TEST(DataPath, AStorageSystemCapsWhatTheHostsLinksCouldRead) {
    // Tesla's 2021 cluster: 50 GB/s of storage links per node, the NVMe tier's 1.6 TB/s for all of them.
    VideoInput in = VideoInput::parse("");
    in.sample_bytes = 1e6;
    const auto storage = [&](int nodes) {
        const machine::Machine m =
            machine::load_machine("tesla-gpu-2021:nodes=" + std::to_string(nodes), machine::default_machines_dir());
        return *data_path(m, 1000, in).resources[3].capacity;
    };
    EXPECT_DOUBLE_EQ(storage(2), 2 * 50e9);  // the links bound a small cluster
    EXPECT_DOUBLE_EQ(storage(720), 1.6e12);  // the storage system bounds the whole one
}

}  // namespace
}  // namespace dojo::sim
