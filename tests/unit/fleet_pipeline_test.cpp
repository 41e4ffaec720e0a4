// The clip store end to end inside the library: synthesize, then read back through the decoding pipeline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "cli_runner.h"
#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/pipeline.h"
#include "dojo/data/fleet/render.h"
#include "dojo/data/fleet/synth.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/util/error.h"

namespace dojo::data::fleet {
namespace {

namespace fs = std::filesystem;

SynthOptions small_store(const fs::path& dir, int threads) {
    SynthOptions o;
    o.out_dir = dir.string();
    o.scenes = 5;
    o.duration_s = 0.5;  // 18 frames at 36 fps
    o.video.width = 96, o.video.height = 64, o.video.keyframe_interval = 6, o.video.crf = 12;
    o.grid = {16.0, 0.4, 4};
    o.seed = 3;
    o.threads = threads;
    return o;
}

std::string file_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FleetStore : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dojo-fleet-store-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        report_ = synthesize(small_store(dir_, 2), [](int, int) {});
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }
    static fs::path dir_;
    static SynthReport report_;
};
fs::path FleetStore::dir_;
SynthReport FleetStore::report_;

TEST_F(FleetStore, HoldsEveryCameraOfEveryClipAndHoldsOutEveryFifthScene) {
    EXPECT_EQ(report_.clips, 5);
    EXPECT_EQ(report_.frames, 5 * 8 * 18);
    const std::vector<ClipRecord> clips = Manifest(dir_.string(), false).query({});
    ASSERT_EQ(clips.size(), 5u);
    EXPECT_EQ(clips[4].split, "test");
    EXPECT_EQ(clips[0].split, "train");
    for (const ClipRecord& c : clips) {
        ASSERT_EQ(c.streams.size(), 8u);
        EXPECT_EQ(c.streams[7].camera, "rear");
        EXPECT_EQ(c.streams[0].keyframes, (std::vector<int>{0, 6, 12}));
    }
    const std::vector<TarMember> members = list_tar((dir_ / "shard-000000.tar").string());
    EXPECT_EQ(members.size(), 5u * 9u);
    EXPECT_EQ(members[8].name, "clip-000000.labels");
}

TEST_F(FleetStore, IsTheSameForAnyThreadCount) {
    const fs::path other = fs::temp_directory_path() / ("dojo-fleet-store-1-thread-" + std::to_string(::getpid()));
    fs::remove_all(other);
    synthesize(small_store(other, 1), [](int, int) {});
    EXPECT_TRUE(file_bytes(other / "shard-000000.tar") == file_bytes(dir_ / "shard-000000.tar")) << "shards differ";
    EXPECT_THROW(synthesize(small_store(other, 1), [](int, int) {}), UsageError) << "an existing store is kept";
    fs::remove_all(other);
}

TEST_F(FleetStore, CameraFramesAreTheRenderedViewsOfTheirInstant) {
    ClipSampling s;
    s.width = 96, s.height = 64, s.every = 5, s.shuffle_buffer = 1, s.cameras = {"main", "left_repeater"};
    ClipPipeline pipeline(dir_.string(), s);
    ClipSample sample;
    ASSERT_TRUE(pipeline.next(sample));
    ASSERT_TRUE(pipeline.next(sample));  // clip 0, frames 5
    EXPECT_EQ(sample.first_frame, 5);
    const SceneConfig config = scene_config(3, 0, 0.5);
    const Scene scene(config);
    const std::vector<geometry::Camera> rig = geometry::production_rig(96, 64);
    const double t = 5.0 / 36;
    const auto objects = scene.objects_at(t, 160);
    // Mean absolute difference, in grey levels, between the decoded sample's camera `slot` and a fresh render.
    const auto difference = [&](std::size_t slot, int camera) {
        std::vector<std::uint8_t> rgb(96 * 64 * 3);
        RenderScratch scratch;
        render_frame(scene, scene.ego_at(t), objects, rig[static_cast<std::size_t>(camera)], rgb, scratch);
        double sum = 0;
        const std::size_t plane = 96 * 64;
        for (std::size_t ch = 0; ch < 3; ++ch) {
            for (std::size_t p = 0; p < plane; ++p) {
                const double decoded = (sample.pixels[(slot * 3 + ch) * plane + p] * 0.225 + 0.45) * 255;
                sum += std::abs(decoded - rgb[p * 3 + ch]);
            }
        }
        return sum / (3.0 * plane);
    };
    EXPECT_LT(difference(0, 0), 6.0);
    EXPECT_LT(difference(1, 5), 6.0);
    EXPECT_GT(difference(1, 0), 15.0) << "another camera's view is far from this one";
    EXPECT_EQ(sample.labels.occupancy.size(), 80u * 80u * 4u);
}

// The order and content of an epoch's samples, summarised.
std::vector<std::pair<std::string, double>> epoch_of(const std::string& dir, ClipSampling s) {
    ClipPipeline pipeline(dir, s);
    std::vector<std::pair<std::string, double>> out;
    ClipSample sample;
    while (pipeline.next(sample)) {
        double sum = 0;
        for (std::size_t i = 0; i < sample.pixels.size(); i += 7) {
            sum += sample.pixels[i];
        }
        out.emplace_back(sample.clip + "@" + std::to_string(sample.first_frame), sum);
    }
    return out;
}

TEST_F(FleetStore, SamplingIsTheSameForAnyThreadCountAndShardsAcrossRanks) {
    ClipSampling s;
    s.width = 32, s.height = 24, s.sequence = 2, s.stride = 3, s.every = 6, s.cameras = {"wide"}, s.augment = true;
    s.shuffle_buffer = 5, s.seed = 11;
    s.threads = 1;
    const auto one = epoch_of(dir_.string(), s);
    s.threads = 3;
    const auto three = epoch_of(dir_.string(), s);
    EXPECT_EQ(one, three);
    // 18 frames, windows of frames {start, start + 3}, starting every 6: 0, 6, 12 -> 3 per clip.
    EXPECT_EQ(one.size(), 15u);
    std::set<std::string> all, ranked;
    for (const auto& [id, sum] : one) {
        all.insert(id);
    }
    for (int rank = 0; rank < 2; ++rank) {
        s.rank = rank, s.ranks = 2;
        for (const auto& [id, sum] : epoch_of(dir_.string(), s)) {
            EXPECT_TRUE(ranked.insert(id).second) << id << " read by two ranks";
        }
    }
    EXPECT_EQ(ranked, all);
    s.rank = 0, s.ranks = 1, s.seed = 12;
    EXPECT_NE(epoch_of(dir_.string(), s), one) << "another seed, another order";
}

TEST_F(FleetStore, Bf16SamplesAreTheFloatSamplesRoundedToNearestEven) {
    ClipSampling s;
    s.width = 32, s.height = 24, s.every = 9, s.cameras = {"main", "rear"}, s.shuffle_buffer = 1;
    ClipPipeline floats(dir_.string(), s);
    s.bf16 = true;
    ClipPipeline halves(dir_.string(), s);
    ClipSample f, h;
    ASSERT_TRUE(floats.next(f));
    ASSERT_TRUE(halves.next(h));
    EXPECT_TRUE(h.pixels.empty());
    ASSERT_EQ(h.pixels_bf16.size(), f.pixels.size());
    for (std::size_t i = 0; i < f.pixels.size(); ++i) {
        std::uint32_t bits = 0;
        std::memcpy(&bits, &f.pixels[i], 4);
        // Round to nearest even on the top 16 bits (the values are finite).
        const std::uint32_t rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16;
        ASSERT_EQ(h.pixels_bf16[i], static_cast<std::uint16_t>(rounded)) << "value " << i << " = " << f.pixels[i];
    }
}

TEST_F(FleetStore, TrainsAsAClassificationDatasetOfSceneKinds) {
    ClipSampling s;
    s.width = 32, s.height = 24, s.every = 9, s.cameras = {"main", "rear"};
    std::vector<SkippedClip> skipped;
    const Dataset train = load_clip_dataset(dir_.string(), s, "train", skipped);
    EXPECT_EQ(train.size(), 4u * 2u);
    EXPECT_EQ(train.sample_shape, (ir::Shape{6, 24, 32}));
    EXPECT_EQ(train.classes, 3);
    const std::vector<ClipRecord> clips = Manifest(dir_.string(), false).query({});
    EXPECT_EQ(train.labels[2], static_cast<std::uint32_t>(clips[1].kind));
    EXPECT_TRUE(skipped.empty());
    const Dataset test = load_clip_dataset(dir_.string(), s, "test", skipped);
    EXPECT_EQ(test.size(), 2u);
}

TEST_F(FleetStore, OccupancyTargetsArePooledGridsOfTheLastFrame) {
    ClipSampling s;
    s.width = 32, s.height = 24, s.every = 9, s.cameras = {"main"};
    s.target = ClipSampling::Target::Occupancy;
    s.occupancy_grid = {16, 16, 2};  // the store's 80 x 80 x 4 voxels in 5 x 5 x 2 blocks
    std::vector<SkippedClip> skipped;
    const Dataset train = load_clip_dataset(dir_.string(), s, "train", skipped);
    ASSERT_TRUE(train.binary);
    EXPECT_EQ(train.classes, 2);
    EXPECT_EQ(train.labels_per_sample, 512u);
    ASSERT_EQ(train.size(), 8u);
    // Sample 1 is clip 0's window at frame 9: its labels, pooled here with the rule written out.
    const ClipRecord clip = Manifest(dir_.string(), false).query({}).front();
    const ClipLabels labels = decode_labels(
        read_range((dir_ / clip.shard).string(), clip.labels_offset, clip.labels_bytes), "clip 0");
    const std::vector<std::uint8_t>& cells = labels.frames.at(9).occupancy;
    std::size_t occupied = 0;
    for (int z = 0; z < 2; ++z) {
        for (int y = 0; y < 16; ++y) {
            for (int x = 0; x < 16; ++x) {
                bool any = false;
                for (int dz = 0; dz < 2; ++dz) {
                    for (int dy = 0; dy < 5; ++dy) {
                        for (int dx = 0; dx < 5; ++dx) {
                            any = any || cells[((2 * z + dz) * 80 + 5 * y + dy) * 80 + 5 * x + dx] != 0;
                        }
                    }
                }
                EXPECT_EQ(train.labels[512 + (z * 16 + y) * 16 + x], any ? 1u : 0u) << z << " " << y << " " << x;
                occupied += any;
            }
        }
    }
    EXPECT_GT(occupied, 0u) << "a scene with nothing around the car would test nothing";
    s.occupancy_grid = {15, 16, 2};
    EXPECT_THROW(load_clip_dataset(dir_.string(), s, "train", skipped), UsageError);
}

// A copy of the store with `damage` done to it.
fs::path damaged_copy(const fs::path& from, const std::string& name) {
    const fs::path to = fs::temp_directory_path() / ("dojo-fleet-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(to);
    fs::copy(from, to);
    return to;
}

void overwrite(const fs::path& path, std::uint64_t offset, const std::string& bytes) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_F(FleetStore, DamagedClipsAreSkippedAndNamedOrWithStrictRefused) {
    const fs::path dir = damaged_copy(dir_, "damaged");
    const std::vector<ClipRecord> clips = Manifest(dir.string(), false).query({});
    // Clip 1: the tail (the MP4 index) of its narrow camera's stream zeroed; clip 2: a byte of its labels flipped.
    const StreamRecord& narrow = clips[1].streams[1];
    overwrite(dir / clips[1].shard, narrow.offset + narrow.bytes - 200, std::string(200, '\0'));
    overwrite(dir / clips[2].shard, clips[2].labels_offset + clips[2].labels_bytes / 2, "\x55\xAA");
    // Clip 4 (the last): the shard cut short inside its streams.
    fs::resize_file(dir / clips[4].shard, clips[4].streams[3].offset + 10);
    // Clip 3: its rear camera missing from the store (the manifest rewritten without that stream).
    fs::remove(dir / kManifestName);
    {
        Manifest rewritten(dir.string(), true);
        for (ClipRecord c : clips) {
            if (c.clip == "clip-000003") {
                c.streams.pop_back();
            }
            rewritten.add(c);
        }
        rewritten.commit();
    }

    ClipSampling s;
    s.width = 32, s.height = 24, s.every = 6;
    std::vector<std::pair<std::string, double>> samples;
    ClipPipeline pipeline(dir.string(), s);
    ClipSample sample;
    std::set<std::string> delivered;
    while (pipeline.next(sample)) {
        delivered.insert(sample.clip);
    }
    EXPECT_EQ(delivered, (std::set<std::string>{"clip-000000"}));
    std::map<std::string, SkippedClip> skipped;
    for (const SkippedClip& k : pipeline.skipped()) {
        skipped[k.clip] = k;
    }
    ASSERT_EQ(skipped.size(), 4u);
    EXPECT_EQ(skipped["clip-000001"].camera, "narrow");
    EXPECT_EQ(skipped["clip-000003"].camera, "rear");
    EXPECT_NE(skipped["clip-000003"].reason.find("missing"), std::string::npos) << skipped["clip-000003"].reason;
    EXPECT_EQ(skipped["clip-000002"].camera, "");
    EXPECT_NE(skipped["clip-000002"].reason.find("checksum"), std::string::npos) << skipped["clip-000002"].reason;
    EXPECT_NE(skipped["clip-000004"].reason.find("truncated"), std::string::npos) << skipped["clip-000004"].reason;

    s.strict = true;
    ClipPipeline strict(dir.string(), s);
    try {
        while (strict.next(sample)) {
        }
        FAIL() << "strict read a damaged store";
    } catch (const IoError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("shard-000000.tar"), std::string::npos) << what;
        EXPECT_NE(what.find("clip-00000"), std::string::npos) << what;
    }
    fs::remove_all(dir);
}

TEST(ClipSource, ParsesOptionsAndNamesBadOnes) {
    const ClipSource source = parse_clip_source("fleet/,cameras=main+rear,size=64x48,sequence=2,every=9,scene=urban");
    EXPECT_EQ(source.dir, "fleet/");
    EXPECT_EQ(source.sampling.cameras, (std::vector<std::string>{"main", "rear"}));
    EXPECT_EQ(source.sampling.width, 64);
    EXPECT_EQ(source.sampling.sequence, 2);
    EXPECT_EQ(source.sampling.filter.kind, SceneKind::Urban);
    EXPECT_THROW(parse_clip_source(",size=64x48"), UsageError);
    EXPECT_THROW(parse_clip_source("d,cameras=main+roof"), UsageError);
    EXPECT_THROW(parse_clip_source("d,size=64"), UsageError);
    EXPECT_THROW(parse_clip_source("d,sequence=0"), UsageError);
    EXPECT_THROW(parse_clip_source("d,colour=red"), UsageError);
    EXPECT_THROW(ClipPipeline("/nonexistent-store", ClipSampling{}), IoError);
}

}  // namespace
}  // namespace dojo::data::fleet
