// `dojo data` and `dojo train --data clips:` as a user runs them: a store that tar and ffprobe read, queries,
// pictures, training from the store, and damaged or wrong input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fresh(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-cli-data-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

std::string bytes_of(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One small store for the tests that only read it: 5 scenes of 0.5 s at 64x48 (the fifth held out).
class CliStore : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fresh("store");
        const CliResult r = run_dojo({"data", "synth", "--out", dir_.string(), "--scenes", "5", "--duration", "0.5",
                                      "--size", "64x48", "--keyframe-interval", "6", "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        summary_ = json::parse(r.out);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }
    static fs::path dir_;
    static json summary_;
};
fs::path CliStore::dir_;
json CliStore::summary_;

TEST_F(CliStore, TarListsItAndFfprobeReadsItsStreams) {
    EXPECT_EQ(summary_["clips"], 5);
    EXPECT_EQ(summary_["camera_frames"], 5 * 8 * 18);
    const CliResult tar = run_shell("tar tf " + (dir_ / "shard-000000.tar").string());
    ASSERT_EQ(tar.exit_code, 0) << tar.err;
    const std::vector<std::string> members = lines_of(tar.out);
    EXPECT_EQ(members.size(), 45u);
    EXPECT_EQ(members[0], "clip-000000.main.mp4");
    EXPECT_EQ(members[8], "clip-000000.labels");
    const fs::path into = fresh("probe");
    fs::create_directories(into);
    ASSERT_EQ(run_shell("tar xf " + (dir_ / "shard-000000.tar").string() + " -C " + into.string() +
                        " clip-000002.rear.mp4").exit_code, 0);
    const fs::path mp4 = into / "clip-000002.rear.mp4";
    const CliResult probe = run_shell("ffprobe -v error -select_streams v:0 -count_frames -show_entries "
                                      "stream=codec_name,width,height,nb_read_frames -of json " + mp4.string());
    ASSERT_EQ(probe.exit_code, 0) << probe.err;
    const json stream = json::parse(probe.out)["streams"][0];
    EXPECT_EQ(stream["codec_name"], "h264");
    EXPECT_EQ(stream["width"], 64);
    EXPECT_EQ(stream["nb_read_frames"], "18");
    fs::remove_all(into);
}

TEST_F(CliStore, QueryStatsAndInspect) {
    const CliResult all = run_dojo({"data", "query", dir_.string(), "--json"});
    ASSERT_EQ(all.exit_code, 0) << all.err;
    const json clips = json::parse(all.out);
    ASSERT_EQ(clips.size(), 5u);
    EXPECT_EQ(clips[4]["split"], "test");
    EXPECT_EQ(clips[0]["streams"].size(), 8u);
    const std::string scene = clips[0]["scene"];
    const CliResult some = run_dojo({"data", "query", dir_.string(), "scene=" + scene, "split=train", "--json"});
    ASSERT_EQ(some.exit_code, 0) << some.err;
    for (const json& c : json::parse(some.out)) {
        EXPECT_EQ(c["scene"], scene);
        EXPECT_EQ(c["split"], "train");
    }
    const CliResult stats = run_dojo({"data", "stats", dir_.string(), "--json"});
    ASSERT_EQ(stats.exit_code, 0) << stats.err;
    EXPECT_EQ(json::parse(stats.out)["clips"], 5);

    const fs::path picture = fresh("inspect");
    const CliResult inspect = run_dojo({"data", "inspect", dir_.string(), "clip-000001", "--frame", "7", "--image",
                                        picture.string(), "--json"});
    ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
    const json doc = json::parse(inspect.out);
    EXPECT_EQ(doc["frame"], 7);
    EXPECT_EQ(doc["cameras"].size(), 8u);
    EXPECT_EQ(bytes_of(picture.string() + "-cameras.ppm").substr(0, 12), "P6\n1280 480\n");
    EXPECT_EQ(bytes_of(picture.string() + "-occupancy.ppm").substr(0, 2), "P6");
    fs::remove(picture.string() + "-cameras.ppm");
    fs::remove(picture.string() + "-occupancy.ppm");
}

TEST_F(CliStore, TrainsFromTheStore) {
    const CliResult r = run_dojo({"train", "mlp", "--data", "clips:" + dir_.string() + ",cameras=main+rear,size=32x24,every=6",
                                  "--epochs", "1", "--batch", "4", "--lr", "0.001", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("clips: 12 training and 3 held-out samples of shape [6, 24, 32]"), std::string::npos) << r.err;
    const json doc = json::parse(r.out);
    EXPECT_TRUE(std::isfinite(doc["epochs"].back()["train_loss"].get<double>()));
    EXPECT_FALSE(doc["epochs"].back().contains("test_iou")) << "scene kinds are classes";

    // Occupancy: a sigmoid output per pooled voxel (the store's 200 x 200 x 8 grid in 40 x 40 x 4 cells), scored by IoU.
    const CliResult occupancy = run_dojo({"train", "mlp", "--data", "clips:" + dir_.string() +
                                          ",cameras=main,size=32x24,every=6,target=occupancy",
                                          "--epochs", "1", "--batch", "4", "--lr", "0.001", "--optimizer", "adamw", "--json"});
    ASSERT_EQ(occupancy.exit_code, 0) << occupancy.err;
    const json epoch = json::parse(occupancy.out)["epochs"].back();
    ASSERT_TRUE(epoch.contains("test_iou")) << epoch.dump();
    EXPECT_GE(epoch["test_iou"].get<double>(), 0.0);
    EXPECT_LE(epoch["test_iou"].get<double>(), 1.0);
    const CliResult text = run_dojo({"train", "mlp", "--data", "clips:" + dir_.string() +
                                     ",cameras=main,size=32x24,every=6,target=occupancy,grid=40x40x4", "--epochs", "1",
                                     "--batch", "4"});
    EXPECT_NE(text.out.find("test IoU"), std::string::npos) << text.out << text.err;
    const CliResult bad = run_dojo({"train", "mlp", "--data", "clips:" + dir_.string() +
                                    ",cameras=main,size=32x24,target=occupancy,grid=30x40x4"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("does not divide the store's occupancy grid of 200x200x8"), std::string::npos) << bad.err;
}

TEST_F(CliStore, WrongRequestsAreRefusedAndTheStoreKept) {
    const std::string before = bytes_of(dir_ / "manifest.sqlite");
    const CliResult again = run_dojo({"data", "synth", "--out", dir_.string(), "--scenes", "1", "--duration", "0.2",
                                      "--size", "64x48"});
    EXPECT_EQ(again.exit_code, 2);
    EXPECT_NE(again.err.find("already holds a clip store"), std::string::npos) << again.err;
    EXPECT_EQ(bytes_of(dir_ / "manifest.sqlite"), before);
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"data", "query", dir_.string(), "colour=red"}, "unknown clip filter 'colour'"},
        {{"data", "query", dir_.string(), "min-unicorn=2"}, "unknown object class 'unicorn'"},
        {{"data", "inspect", dir_.string(), "clip-999"}, "no clip 'clip-999'"},
        {{"data", "inspect", dir_.string(), "clip-000001", "--frame", "18"}, "has frames 0..17"},
        {{"data", "synth", "--out", fresh("odd").string(), "--size", "641x480"}, "must be even"},
        {{"data", "synth", "--out", fresh("huge").string(), "--size", "4096x2160"}, "at most 1280x960"},
        {{"data", "synth", "--out", fresh("codec").string(), "--codec", "vp9"}, "unknown codec 'vp9'"},
        {{"data", "synth", "--out", fresh("preset").string(), "--preset", "bogus"}, "encoder preset 'bogus'"},
        {{"data", "synth", "--out", fresh("short").string(), "--duration", "0"}, "--duration 0: expected"},
        {{"train", "mlp", "--data", "clips:" + dir_.string() + ",target=occupancy,grid=0x0x0"}, "at least 1 each way"},
        {{"train", "mlp", "--data", "clips:" + dir_.string() + ",target=voxels"}, "expected scene or occupancy"},
        {{"train", "mlp", "--data", "clips:" + dir_.string() + ",cameras=roof"}, "unknown camera 'roof'"},
        {{"train", "mlp", "--data", "clips:" + dir_.string() + ",size=32"}, "expected WIDTHxHEIGHT"},
        {{"train", "mlp", "--data", "clips:" + dir_.string() + ",scene=moon"}, "unknown scene kind 'moon'"},
    };
    for (const auto& [args, message] : cases) {
        const CliResult r = run_dojo(args);
        EXPECT_EQ(r.exit_code, 2) << dojo_command(args) << "\n" << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << dojo_command(args) << "\n" << r.err;
        EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
    }
    const CliResult missing = run_dojo({"train", "mlp", "--data", "clips:/nonexistent/fleet"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("no clip store in /nonexistent/fleet"), std::string::npos) << missing.err;
}

TEST_F(CliStore, DamagedClipsAreNamedInTheRunAndStrictRefusesThem) {
    const fs::path dir = fresh("damaged");
    fs::copy(dir_, dir);
    const json clips = json::parse(run_dojo({"data", "query", dir.string(), "--json"}).out);
    // The tail of clip 1's wide camera stream (its MP4 index) zeroed.
    const json& wide = clips[1]["streams"][2];
    {
        std::fstream f(dir / "shard-000000.tar", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(wide["offset"].get<std::int64_t>() + wide["bytes"].get<std::int64_t>() - 100);
        const std::string zeros(100, '\0');
        f.write(zeros.data(), 100);
    }
    const std::string data = "clips:" + dir.string() + ",cameras=main+wide,size=32x24,every=6";
    const CliResult lenient = run_dojo({"train", "mlp", "--data", data, "--epochs", "1", "--batch", "3", "--lr", "0.001"});
    EXPECT_EQ(lenient.exit_code, 0) << lenient.err;
    EXPECT_NE(lenient.err.find("1 clip skipped as damaged"), std::string::npos) << lenient.err;
    EXPECT_NE(lenient.err.find("shard-000000.tar clip-000001 camera wide"), std::string::npos) << lenient.err;
    const CliResult strict = run_dojo({"train", "mlp", "--data", data, "--strict", "--epochs", "1"});
    EXPECT_EQ(strict.exit_code, 1);
    EXPECT_NE(strict.err.find("shard shard-000000.tar, clip clip-000001, camera wide"), std::string::npos) << strict.err;
    fs::remove_all(dir);
}

TEST(CliData, HevcStoresToo) {
    const fs::path dir = fresh("hevc");
    const CliResult r = run_dojo({"data", "synth", "--out", dir.string(), "--scenes", "1", "--duration", "0.3",
                                  "--size", "64x48", "--codec", "hevc"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const CliResult stats = run_dojo({"data", "stats", dir.string(), "--json"});
    EXPECT_EQ(json::parse(stats.out)["settings"]["codec"], "hevc");
    const CliResult bench = run_dojo({"data", "bench", dir.string(), "--size", "32x24", "--accesses", "3", "--json"});
    ASSERT_EQ(bench.exit_code, 0) << bench.err;
    EXPECT_GT(json::parse(bench.out)["pipeline_frames_per_s"].get<double>(), 0);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dojo::test
