// The fleet clip store's parts (data/fleet/): cameras, scenes and occupancy, labels, shards, video, manifest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "cli_runner.h"
#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/scene.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/data/fleet/video.h"
#include "dojo/util/error.h"

namespace dojo::data::fleet {
namespace {

std::filesystem::path fresh_directory(const std::string& name) {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dojo-fleet-unit-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

TEST(Cameras, PointsAlongTheOpticalAxisProjectToThePrincipalPoint) {
    const std::vector<geometry::Camera> rig = geometry::production_rig(640, 480);
    ASSERT_EQ(rig.size(), 8u);
    for (const geometry::Camera& c : rig) {
        // 20 m along the camera's axis: yaw about z, pitch down.
        const geometry::Vec3 axis{std::cos(c.yaw_rad) * std::cos(c.pitch_rad), std::sin(c.yaw_rad) * std::cos(c.pitch_rad),
                        -std::sin(c.pitch_rad)};
        double u = 0, v = 0;
        ASSERT_TRUE(c.project({c.position.x + 20 * axis.x, c.position.y + 20 * axis.y, c.position.z + 20 * axis.z}, u, v))
            << c.name;
        EXPECT_NEAR(u + 0.5, 320, 1e-6) << c.name;
        EXPECT_NEAR(v + 0.5, 240, 1e-6) << c.name;
        EXPECT_FALSE(c.project({c.position.x - 20 * axis.x, c.position.y - 20 * axis.y, c.position.z}, u, v)) << c.name;
    }
}

TEST(Cameras, TheMainCameraSeesTheLeftOnTheLeftAndTheGroundBelowTheHorizon) {
    const geometry::Camera main = geometry::production_rig(640, 480)[0];
    double u = 0, v = 0;
    ASSERT_TRUE(main.project({30, 5, 0}, u, v));  // ahead, to the left, on the ground
    EXPECT_LT(u, 320);
    EXPECT_GT(v, 240);
    // 50° horizontal field: level, a point 25° to the left sits on the image's left edge.
    geometry::Camera level = main;
    level.pitch_rad = 0;
    ASSERT_TRUE(level.project({main.position.x + 10, main.position.y + 10 * std::tan(25 * std::numbers::pi / 180),
                               main.position.z}, u, v));
    EXPECT_NEAR(u + 0.5, 0, 1e-6);
    EXPECT_NEAR(v + 0.5, 240, 1e-6);
    EXPECT_THROW(geometry::rig_camera_index("roof"), UsageError);
    EXPECT_EQ(geometry::rig_camera_index("rear"), 7);
}

TEST(Cameras, ARayThroughAPixelProjectsBackToIt) {
    for (const geometry::Camera& c : geometry::production_rig(320, 240)) {
        for (const auto& [u, v] : {std::pair{10.0, 20.0}, {160.0, 120.0}, {300.0, 230.0}}) {
            const geometry::Vec3 d = c.ray(u, v);
            double pu = 0, pv = 0;
            ASSERT_TRUE(c.project({c.position.x + 7 * d.x, c.position.y + 7 * d.y, c.position.z + 7 * d.z}, pu, pv));
            EXPECT_NEAR(pu, u, 1e-9) << c.name;
            EXPECT_NEAR(pv, v, 1e-9) << c.name;
        }
    }
}

TEST(Scene, IsAPureFunctionOfItsSeed) {
    const Scene a({SceneKind::Urban, 42, 5}), b({SceneKind::Urban, 42, 5}), c({SceneKind::Urban, 43, 5});
    ASSERT_EQ(a.objects().size(), b.objects().size());
    for (std::size_t i = 0; i < a.objects().size(); ++i) {
        EXPECT_EQ(a.objects()[i].x, b.objects()[i].x);
        EXPECT_EQ(a.objects()[i].cls, b.objects()[i].cls);
    }
    EXPECT_NE(a.objects().size() == c.objects().size() && a.objects()[0].x == c.objects()[0].x, true);
}

TEST(Scene, TheEgoCarDrivesForwardAtItsSpeed) {
    for (const SceneKind kind : {SceneKind::Highway, SceneKind::Urban, SceneKind::Rural}) {
        const Scene scene({kind, 7, 10});
        const EgoState a = scene.ego_at(2.0), b = scene.ego_at(2.01);
        EXPECT_GT(a.speed_mps, 5) << scene_kind_name(kind);
        EXPECT_NEAR((b.x - a.x) / 0.01, a.speed_mps * std::cos(a.yaw_rad), 0.2) << scene_kind_name(kind);
        EXPECT_LT(a.y, 0) << "traffic keeps right";
    }
}

TEST(Scene, TownsHavePedestriansAndHighwaysHaveBarriers) {
    int pedestrians = 0, barriers = 0;
    const Scene town({SceneKind::Urban, 1, 10}), highway({SceneKind::Highway, 1, 10});
    for (const WorldObject& o : town.objects()) {
        pedestrians += o.cls == ObjectClass::Pedestrian;
    }
    for (const WorldObject& o : highway.objects()) {
        barriers += o.cls == ObjectClass::Barrier;
    }
    EXPECT_GT(pedestrians, 5);
    EXPECT_GT(barriers, 5);
}

TEST(Occupancy, AnAlignedBoxFillsExactlyItsVoxels) {
    OccupancyGrid grid;  // 0.4 m voxels, ±40 m, 8 layers
    ObjectState box;
    box.cls = ObjectClass::Truck;
    box.x = 10.2, box.y = -5.2, box.z = 0;  // on the grid's cell edges: x 9.2..11.2, y -5.6..-4.8
    box.length = 2.0, box.width = 0.8, box.height = 1.2;
    std::vector<std::uint8_t> cells;
    rasterize_occupancy({box}, grid, cells);
    ASSERT_EQ(static_cast<std::int64_t>(cells.size()), 200 * 200 * 8);
    long filled = 0;
    for (const std::uint8_t c : cells) {
        if (c) {
            EXPECT_EQ(c, 1 + static_cast<int>(ObjectClass::Truck));
            ++filled;
        }
    }
    EXPECT_EQ(filled, 5 * 2 * 3);  // 2.0 / 0.4 along x, 0.8 / 0.4 across, 1.2 / 0.4 up
    const int n = grid.cells_xy();
    const int xi = static_cast<int>((10.2 + 40) / 0.4), yi = static_cast<int>((-5.0 + 40) / 0.4);
    EXPECT_NE(cells[(static_cast<std::size_t>(0) * n + yi) * n + xi], 0);
    EXPECT_EQ(cells[(static_cast<std::size_t>(3) * n + yi) * n + xi], 0) << "above the box's 1.2 m";
}

TEST(Occupancy, ARotatedBoxFillsItsFootprint) {
    OccupancyGrid grid;
    ObjectState box;
    // Turned a quarter: 1.8 m along x (4 voxel centres inside), 4 m across (10), 1.6 m high (4).
    box.length = 4, box.width = 1.8, box.height = 1.6, box.yaw_rad = std::numbers::pi / 2;
    std::vector<std::uint8_t> cells;
    rasterize_occupancy({box}, grid, cells);
    long filled = 0;
    for (const std::uint8_t c : cells) {
        filled += c != 0;
    }
    EXPECT_EQ(filled, 4 * 10 * 4);
    EXPECT_THROW((OccupancyGrid{40, 0.01, 8}.validate()), UsageError);
}

ClipLabels sample_labels() {
    ClipLabels labels;
    labels.clip = "clip-000001";
    labels.kind = SceneKind::Rural;
    labels.seed = 99;
    labels.fps = 36;
    labels.width = 64;
    labels.height = 48;
    labels.grid = {8.0, 0.4, 4};
    labels.cameras = geometry::production_rig(64, 48);
    const Scene scene({SceneKind::Rural, 99, 1});
    for (int f = 0; f < 3; ++f) {
        FrameLabels frame;
        frame.ego = scene.ego_at(f / 36.0);
        frame.objects = scene.objects_at(f / 36.0, 30);
        rasterize_occupancy(frame.objects, labels.grid, frame.occupancy);
        labels.frames.push_back(frame);
    }
    return labels;
}

TEST(Labels, RoundTrip) {
    const ClipLabels in = sample_labels();
    const ClipLabels out = decode_labels(encode_labels(in), "test");
    EXPECT_EQ(out.clip, in.clip);
    EXPECT_EQ(out.kind, in.kind);
    EXPECT_EQ(out.cameras.size(), 8u);
    EXPECT_EQ(out.cameras[3].name, "left_pillar");
    EXPECT_DOUBLE_EQ(out.cameras[3].fx, in.cameras[3].fx);
    ASSERT_EQ(out.frames.size(), 3u);
    EXPECT_EQ(out.frames[2].occupancy, in.frames[2].occupancy);
    ASSERT_EQ(out.frames[1].objects.size(), in.frames[1].objects.size());
    EXPECT_FLOAT_EQ(static_cast<float>(out.frames[1].objects[0].x), static_cast<float>(in.frames[1].objects[0].x));
    const std::vector<bool> only_second{false, true, false};
    const ClipLabels partial = decode_labels(encode_labels(in), "test", &only_second);
    EXPECT_TRUE(partial.frames[0].occupancy.empty());
    EXPECT_EQ(partial.frames[1].occupancy, in.frames[1].occupancy);
}

TEST(Labels, DamageIsNamed) {
    const std::string good = encode_labels(sample_labels());
    std::string flipped = good;
    flipped[good.size() / 2] ^= 0x10;
    try {
        decode_labels(flipped, "shard-0.tar: clip-1.labels");
        FAIL();
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("clip-1.labels"), std::string::npos);
    }
    EXPECT_THROW(decode_labels(good.substr(0, good.size() - 7), "t"), IoError);
    EXPECT_THROW(decode_labels("not labels at all, clearly", "t"), IoError);
    std::string future = good;
    future[8] = 2;  // version 2
    try {
        decode_labels(future, "t");
        FAIL();
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
    }
}

TEST(Tar, MembersAreWhereTheWriterSaysAndTarListsThem) {
    const std::filesystem::path dir = fresh_directory("tar");
    const std::string path = (dir / "shard.tar").string();
    TarWriter writer(path);
    const TarMember a = writer.add("clip-1.main.mp4", std::string(1000, 'a'));
    const TarMember b = writer.add("clip-1.labels", "labels!");
    EXPECT_FALSE(std::filesystem::exists(path)) << "only complete shards exist under their name";
    writer.close();
    EXPECT_EQ(a.offset, 512u);
    EXPECT_EQ(b.offset, 512u + 1024u + 512u);
    EXPECT_EQ(read_range(path, b.offset, b.size), "labels!");
    const std::vector<TarMember> listed = list_tar(path);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[1].name, "clip-1.labels");
    EXPECT_EQ(listed[1].offset, b.offset);
    const test::CliResult tar = test::run_shell("tar tvf " + path);
    EXPECT_EQ(tar.exit_code, 0) << tar.err;
    EXPECT_NE(tar.out.find("clip-1.main.mp4"), std::string::npos);
    EXPECT_NE(tar.out.find(" 1000 "), std::string::npos) << tar.out;
    EXPECT_EQ(test::run_shell("tar xOf " + path + " clip-1.labels").out, "labels!");
}

TEST(Tar, TruncationAndDamageAreNamed) {
    const std::filesystem::path dir = fresh_directory("tar-bad");
    const std::string path = (dir / "shard.tar").string();
    {
        TarWriter writer(path);
        writer.add("a", std::string(3000, 'x'));
        writer.close();
    }
    std::filesystem::resize_file(path, 2000);
    EXPECT_THROW(list_tar(path), IoError);
    EXPECT_THROW(read_range(path, 512, 3000), IoError);
    {
        TarWriter abandoned((dir / "other.tar").string());
        abandoned.add("b", "y");
    }  // never closed
    EXPECT_FALSE(std::filesystem::exists(dir / "other.tar"));
    EXPECT_FALSE(std::filesystem::exists(dir / "other.tar.partial"));
}

// Frame k of the test video: a grey level of 8 * k on the left half, black on the right.
std::vector<std::uint8_t> test_frame(int k, int w, int h) {
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w) * h * 3, 0);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w / 2; ++x) {
            for (int c = 0; c < 3; ++c) {
                rgb[(static_cast<std::size_t>(y) * w + x) * 3 + c] = static_cast<std::uint8_t>(8 * k);
            }
        }
    }
    return rgb;
}

TEST(Video, SeeksDecodeAtMostOneKeyframeIntervalAndGiveTheRightFrame) {
    EncoderOptions o;
    o.width = 64, o.height = 48, o.fps = 30, o.keyframe_interval = 10, o.crf = 10;
    VideoEncoder encoder(o);
    for (int k = 0; k < 30; ++k) {
        encoder.add_frame(test_frame(k, 64, 48));
    }
    const std::string mp4 = encoder.finish();
    EXPECT_EQ(encoder.keyframes(), (std::vector<std::int32_t>{0, 10, 20}));
    VideoDecoder decoder(mp4, "test.mp4");
    EXPECT_EQ(decoder.info().frames, 30);
    EXPECT_EQ(decoder.info().codec, "h264");
    EXPECT_DOUBLE_EQ(decoder.info().fps, 30);
    std::vector<int> seen;
    const int wanted[2] = {27, 28};
    decoder.read(wanted, 32, 24, [&](int frame, std::span<const std::uint8_t> rgb) {
        seen.push_back(frame);
        EXPECT_NEAR(rgb[12 * 32 + 4], 8 * frame, 4) << "R, left half, frame " << frame;  // plane R, row 12, col 4
        EXPECT_NEAR(rgb[2 * 32 * 24 + 12 * 32 + 28], 0, 4) << "B, right half";
    });
    EXPECT_EQ(seen, (std::vector<int>{27, 28}));
    EXPECT_EQ(decoder.frames_decoded(), 9) << "from keyframe 20 to frame 28";
    const int back[1] = {3};
    decoder.read(back, 32, 24, [](int, std::span<const std::uint8_t>) {});
    EXPECT_EQ(decoder.frames_decoded(), 9 + 4) << "a seek back to keyframe 0";
}

TEST(Video, ATruncatedFileIsAnErrorNamingIt) {
    EncoderOptions o;
    o.width = 32, o.height = 32, o.keyframe_interval = 5;
    VideoEncoder encoder(o);
    for (int k = 0; k < 10; ++k) {
        encoder.add_frame(test_frame(k, 32, 32));
    }
    const std::string mp4 = encoder.finish();
    try {
        VideoDecoder decoder(std::string_view(mp4).substr(0, mp4.size() / 2), "shard-0.tar: c.main.mp4");
        const int all[3] = {0, 5, 9};
        decoder.read(all, 32, 32, [](int, std::span<const std::uint8_t>) {});
        FAIL() << "half a file decoded";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("c.main.mp4"), std::string::npos) << e.what();
    }
    EXPECT_THROW((EncoderOptions{31, 32}.validate()), UsageError);
}

TEST(Manifest, QueriesSelectByScenarioAndRefuseBadTerms) {
    const std::filesystem::path dir = fresh_directory("manifest");
    {
        Manifest m(dir.string(), true);
        for (int i = 0; i < 4; ++i) {
            ClipRecord r;
            r.clip = "clip-" + std::to_string(i);
            r.shard = "shard-000000.tar";
            r.kind = i % 2 ? SceneKind::Urban : SceneKind::Highway;
            r.split = i == 3 ? "test" : "train";
            r.frames = 36, r.fps = 36, r.keyframe_interval = 12;
            r.ego_speed_mean_mps = 10.0 * i;
            r.objects[static_cast<int>(ObjectClass::Pedestrian)] = i;
            r.streams.push_back({"main", 512, 100, 36, {0, 12, 24}});
            m.add(r);
        }
        EXPECT_THROW(Manifest(dir.string(), false), IoError) << "not committed yet";
        m.commit();
    }
    const Manifest m(dir.string(), false);
    ClipFilter urban;
    urban.set("scene=urban");
    EXPECT_EQ(m.query(urban).size(), 2u);
    ClipFilter busy;
    busy.set("min-pedestrian=2");
    busy.set("split=train");
    const auto busy_clips = m.query(busy);
    ASSERT_EQ(busy_clips.size(), 1u);
    EXPECT_EQ(busy_clips[0].clip, "clip-2");
    EXPECT_EQ(busy_clips[0].streams.at(0).keyframes, (std::vector<int>{0, 12, 24}));
    ClipFilter fast;
    fast.set("min-speed=15");
    fast.set("limit=1");
    EXPECT_EQ(m.query(fast).at(0).clip, "clip-2");
    ClipFilter bad;
    EXPECT_THROW(bad.set("scene=moon"), UsageError);
    EXPECT_THROW(bad.set("min-unicorn=1"), UsageError);
    EXPECT_THROW(bad.set("min-speed=-1"), UsageError);
    EXPECT_THROW(bad.set("colour=red"), UsageError);
    EXPECT_THROW(Manifest(dir.string(), true), UsageError) << "a store is never overwritten";
    std::ofstream((dir / "other" ).string()) << "x";
    EXPECT_THROW(Manifest((dir / "nowhere").string(), false), IoError);
}

}  // namespace
}  // namespace dojo::data::fleet
