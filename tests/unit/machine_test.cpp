// Machine descriptions: quantities and units, the presets, and the published figures they must reproduce
// (../shared/spec/dojo-machine.md, those graded H), each to the precision it was published with.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "dojo/machine/machine.h"
#include "dojo/util/error.h"

namespace dojo::machine {
namespace {

namespace fs = std::filesystem;

// A figure published as `published` (in some unit) with its last digit worth `last_digit` is reproduced when the
// derived value, in the same unit, is within one unit of that digit: 22.656 matches "22.6" (last digit 0.1),
// 442.5 MiB matches "440 MB" (last digit 10).
void expect_published(double derived, double published, double last_digit, const char* what) {
    EXPECT_LT(std::fabs(derived - published), last_digit) << what << ": derived " << derived << ", published "
                                                           << published;
}

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;
constexpr double kTiB = kGiB * 1024.0;

Totals preset(const std::string& spec) { return totals(load_machine(spec, default_machines_dir())); }

TEST(Quantity, ParsesUnitsIntoSiAndSaysWhatIsWrong) {
    EXPECT_DOUBLE_EQ(parse_quantity("2 GHz", "t").value, 2e9);
    EXPECT_EQ(parse_quantity("2 GHz", "t").dimension, Dimension::Frequency);
    EXPECT_DOUBLE_EQ(parse_quantity("1.25 MiB", "t").value, 1310720.0);
    EXPECT_DOUBLE_EQ(parse_quantity("512 GB/s", "t").value, 512e9);
    EXPECT_DOUBLE_EQ(parse_quantity("400 Gb/s", "t").value, 50e9);  // bits to bytes
    EXPECT_DOUBLE_EQ(parse_quantity("100ns", "t").value, 100e-9);
    EXPECT_EQ(parse_quantity("312 TFLOP/s", "t").dimension, Dimension::FlopRate);
    EXPECT_EQ(parse_quantity("354", "t").dimension, Dimension::Count);
    try {
        parse_quantity("2 Ghz", "node.clock");
        FAIL() << "accepted an unknown unit";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("node.clock: unknown unit 'Ghz'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("GHz"), std::string::npos) << "lists the accepted units";
    }
    EXPECT_THROW(parse_quantity("fast", "t"), UsageError);
    EXPECT_THROW(parse_quantity("-1 W", "t"), UsageError);
    EXPECT_EQ(format_quantity({362.496e12, Dimension::FlopRate}), "362 TFLOP/s");
    EXPECT_EQ(format_quantity({1310720.0, Dimension::Bytes}), "1.25 MiB");
    EXPECT_EQ(format_quantity({36e12, Dimension::Bandwidth}), "36 TB/s");
}

TEST(Machines, D1ReproducesItsPublishedFigures) {
    const Totals t = preset("d1");
    EXPECT_EQ(t.units.at("node"), 354);
    expect_published(t.peak_flops.at("bf16") / 1e12, 362, 1, "D1 BF16 TFLOPS");
    expect_published(t.peak_flops.at("cfp8") / 1e12, 362, 1, "D1 CFP8 TFLOPS");
    expect_published(t.peak_flops.at("fp32") / 1e12, 22.6, 0.1, "D1 FP32 TFLOPS");
    expect_published(t.sram_bytes / kMiB, 440, 10, "D1 SRAM MB");
    EXPECT_DOUBLE_EQ(t.power_watts, 400);
}

// The 2 x 2 slice the compiler is brought up on is four D1: its totals are four times the chip's.
TEST(Machines, TheTwoByTwoSliceIsFourD1) {
    const Totals d1 = preset("d1");
    const Totals slice = preset("d1-2x2");
    EXPECT_EQ(slice.units.at("d1"), 4);
    EXPECT_EQ(slice.units.at("node"), 4 * 354);
    EXPECT_DOUBLE_EQ(slice.peak_flops.at("bf16"), 4 * d1.peak_flops.at("bf16"));
    EXPECT_DOUBLE_EQ(slice.sram_bytes, 4 * d1.sram_bytes);
    EXPECT_DOUBLE_EQ(slice.power_watts, 4 * d1.power_watts);
    EXPECT_DOUBLE_EQ(slice.device_memory_bytes, 0);  // no interface processors: no DRAM
}

TEST(Machines, TileTrayAndExapodReproduceTheirPublishedFigures) {
    const Totals tile = preset("tile");
    expect_published(tile.peak_flops.at("bf16") / 1e15, 9, 1, "tile PFLOPS");
    expect_published(tile.sram_bytes / kGiB, 11, 1, "tile SRAM GB");
    bool off_tile = false;
    for (const Bandwidth& b : tile.bandwidths) {
        if (b.what == "off-tile") {
            EXPECT_DOUBLE_EQ(b.bytes_per_second, 36e12);
            off_tile = true;
        }
    }
    EXPECT_TRUE(off_tile);

    const Totals tray = preset("v1-matrix");
    expect_published(tray.peak_flops.at("bf16") / 1e15, 54, 1, "tray PFLOPS");
    EXPECT_EQ(tray.units.at("dip"), 20);
    EXPECT_EQ(tray.units.at("host"), 4);

    const Totals pod = preset("exapod");
    EXPECT_EQ(pod.units.at("d1"), 3000);
    EXPECT_EQ(pod.units.at("node"), 1062000);
    EXPECT_EQ(pod.units.at("tile"), 120);
    expect_published(pod.peak_flops.at("bf16") / 1e18, 1.1, 0.1, "ExaPOD EFLOPS");
    expect_published(pod.sram_bytes / kTiB, 1.3, 0.1, "ExaPOD SRAM TB");
    expect_published(pod.device_memory_bytes / kTiB, 13, 1, "ExaPOD DRAM TB");

    const Totals seven = preset("exapod-x7");
    EXPECT_EQ(seven.units.at("d1"), 21000);
    EXPECT_DOUBLE_EQ(seven.peak_flops.at("bf16"), 7 * pod.peak_flops.at("bf16"));
    EXPECT_EQ(preset("exapod-x7:pods=2").units.at("exapod"), 2);
}

TEST(Machines, GpuPresetsAndTheNodeCountParameter) {
    const Totals dgx = preset("dgx-h100");
    EXPECT_EQ(dgx.units.at("h100-sxm"), 8);
    EXPECT_NEAR(dgx.peak_flops.at("bf16"), 8 * 989.4e12, 1e9);
    EXPECT_DOUBLE_EQ(dgx.device_memory_bytes, 8 * 80 * kGiB);
    EXPECT_DOUBLE_EQ(dgx.power_watts, 10.2e3);  // the node's own figure covers its GPUs

    const Totals pod = preset("superpod-h100:nodes=64");
    EXPECT_EQ(pod.units.at("h100-sxm"), 512);
    EXPECT_DOUBLE_EQ(pod.power_watts, 64 * 10.2e3);
    bool bisection = false;
    for (const Bandwidth& b : pod.bandwidths) {
        if (b.what.starts_with("bisection")) {
            EXPECT_DOUBLE_EQ(b.bytes_per_second, 64 * 400e9 / 2);  // half the injection bandwidth
            bisection = true;
        }
    }
    EXPECT_TRUE(bisection);
    EXPECT_EQ(preset("superpod-a100").units.at("dgx-a100"), 140);  // the default, named in the preset
    EXPECT_EQ(preset("dgx-a100").units.at("a100-80gb"), 8);
}

TEST(Machines, ListsPresetsAndRejectsBadSpecsClearly) {
    const std::vector<PresetInfo> presets = list_presets(default_machines_dir());
    std::vector<std::string> names;
    for (const PresetInfo& p : presets) {
        names.push_back(p.name);
    }
    for (const char* required : {"d1", "tile", "v1-matrix", "cabinet", "exapod", "exapod-x7", "dgx-a100", "dgx-h100",
                                 "superpod-a100", "superpod-h100"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
    }
    auto message = [](const std::string& spec) {
        try {
            load_machine(spec, default_machines_dir());
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string("no UsageError");
    };
    EXPECT_NE(message("exapodd").find("presets: cabinet, d1"), std::string::npos) << message("exapodd");
    EXPECT_NE(message("superpod-h100:gpus=4").find("its parameters: nodes (default 128)"), std::string::npos);
    EXPECT_NE(message("superpod-h100:nodes=-3").find("whole number"), std::string::npos);
    EXPECT_NE(message("d1:nodes=3").find("parameters: none"), std::string::npos);
}

TEST(Machines, UserFilesAreCheckedKeyByKey) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-machine-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; };
    write("lib.toml",
          "[kinds.chip]\nclock = \"1 GHz\"\nflop_per_cycle = { fp32 = 64 }\nsram = \"2 MB\"\npower = \"5 W\"\n"
          "[kinds.board]\ncontains = [{ kind = \"chip\", count = \"chips\" }]\n"
          "[kinds.loop]\ncontains = [{ kind = \"loop\" }]\n");
    write("board.toml", "description = \"test board\"\nlibrary = \"lib.toml\"\nroot = \"board\"\n[parameters]\nchips = 4\n");
    const Machine m = load_machine("board:chips=3", dir.string());
    const Totals t = totals(m);
    EXPECT_DOUBLE_EQ(t.peak_flops.at("fp32"), 3 * 64e9);
    EXPECT_DOUBLE_EQ(t.sram_bytes, 6e6);
    EXPECT_DOUBLE_EQ(t.power_watts, 15);  // no power of its own: the chips' add up
    write("loop.toml", "library = \"lib.toml\"\nroot = \"loop\"\n");
    EXPECT_THROW(load_machine("loop", dir.string()), UsageError);
    write("broken.toml", "library = \"lib.toml\"\nroot = [\n");
    EXPECT_THROW(load_machine("broken", dir.string()), UsageError);
    write("wrong-lib.toml", "[kinds.chip]\nsram = \"3 GHz\"\n");
    write("wrong.toml", "library = \"wrong-lib.toml\"\nroot = \"chip\"\n");
    try {
        load_machine("wrong", dir.string());
        FAIL() << "accepted a clock as SRAM";
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("kinds.chip.sram must be a quantity of bytes, got one of frequency"),
                  std::string::npos)
            << e.what();
    }
    write("orphan.toml", "library = \"lib.toml\"\nroot = \"board\"\n");  // board counts chips: no parameter
    EXPECT_THROW(load_machine("orphan", dir.string()), UsageError);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dojo::machine
