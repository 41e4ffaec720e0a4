// Machine descriptions: every physical quantity is checked when the file is loaded, with its file, line and key;
// counts are bounded, so no command loops or forks without end on a typo.
#include <gtest/gtest.h>

#include "error_case.h"

namespace dojo::test {
namespace {

TEST(MachineErrors, NegativeBandwidthIsNamedWithFileAndLine) {
    const auto dir = machines_with(scratch_directory("negative-bw"), "lib/dojo-v1.toml",
                                   "edge_bandwidth = \"2 TB/s\"", "edge_bandwidth = \"-2 TB/s\"");
    for (const std::string command : {"sim", "plan"}) {
        expect_rejected({{command, "mlp", "--machine", "tile", "--batch", "64", "--machines-dir", dir.string()},
                         "dojo-v1.toml:"});
    }
    expect_rejected({{"machine", "show", "tile", "--machines-dir", dir.string()}, "edge_bandwidth"});
    expect_rejected({{"validate", "--machines-dir", dir.string()}, "edge_bandwidth", kExitUsage, "", {}, 600});
}

TEST(MachineErrors, ZeroClockIsRefused) {
    const auto dir = machines_with(scratch_directory("zero-clock"), "lib/dojo-v1.toml", "clock = \"2 GHz\"",
                                   "clock = \"0 GHz\"");
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--machines-dir", dir.string()},
                     "clock = \"0 GHz\": a frequency must be positive"});
}

TEST(MachineErrors, NegativeSramIsRefused) {
    const auto dir = machines_with(scratch_directory("negative-sram"), "lib/dojo-v1.toml", "sram = \"1.25 MiB\"",
                                   "sram = \"-1.25 MiB\"");
    expect_rejected({{"machine", "show", "d1", "--machines-dir", dir.string()}, "kinds.node.sram"});
}

TEST(MachineErrors, HugeCountsAreRefusedAtLoad) {
    for (const std::string count : {"10000000", "99999999999999999"}) {
        const auto dir = machines_with(scratch_directory("count-" + count), "lib/dojo-v1.toml",
                                       "{ kind = \"node\", count = 354 }",
                                       "{ kind = \"node\", count = " + count + " }");
        expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--machines-dir", dir.string()},
                         "count", kExitUsage, "", {}, 60});
    }
}

TEST(MachineErrors, AMillionNodeSuperPodIsRefusedNotExhaustingMemory) {
    expect_rejected({{"sim", "gpt", "--machine", "superpod-a100:nodes=1000000", "--batch", "1048576"},
                     "beyond the flow-level network simulation", kExitUsage, "", {}, 60});
}

TEST(MachineErrors, ASearchOverAMillionCabinetsEndsWithABound) {
    const auto dir = machines_with(scratch_directory("cabinets"), "lib/dojo-v1.toml",
                                   "{ kind = \"cabinet\", count = 10 }", "{ kind = \"cabinet\", count = 1000000 }");
    expect_rejected({{"sim", "mlp", "--machine", "exapod", "--batch", "1048576", "--machines-dir", dir.string()},
                     "beyond the flow-level network simulation", kExitUsage, "", {}, 60});
}

}  // namespace
}  // namespace dojo::test
