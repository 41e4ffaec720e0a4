// `dojo data synth`: scenes rendered, encoded, labelled, packed into shards and indexed (synth.h).
#include "dojo/data/fleet/synth.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/render.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/util/error.h"
#include "dojo/util/ordered_pool.h"
#include "dojo/util/random.h"

namespace dojo::data::fleet {
namespace {

// Objects farther than this are not drawn: haze has hidden them.
constexpr double kRenderRadius_m = 160.0;

// One scene, rendered and encoded, waiting to be written.
struct SceneFiles {
    ClipRecord record;
    std::vector<std::string> mp4;  // per camera
    std::string labels;
};

std::string clip_name(int index) {
    char name[32];
    std::snprintf(name, sizeof name, "clip-%06d", index);
    return name;
}

SceneFiles make_scene(const SynthOptions& o, int index) {
    const SceneConfig config = scene_config(o.seed, index, o.duration_s);
    const Scene scene(config);
    const int width = o.video.width, height = o.video.height;
    const std::vector<geometry::Camera> rig = geometry::production_rig(width, height);
    const int frames = std::max(1, static_cast<int>(std::lround(o.duration_s * o.video.fps)));

    std::vector<std::unique_ptr<VideoEncoder>> encoders;
    for (std::size_t c = 0; c < rig.size(); ++c) {
        encoders.push_back(std::make_unique<VideoEncoder>(o.video));
    }
    ClipLabels labels;
    labels.clip = clip_name(index);
    labels.kind = config.kind;
    labels.seed = config.seed;
    labels.fps = o.video.fps;
    labels.width = width;
    labels.height = height;
    labels.grid = o.grid;
    labels.cameras = rig;
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
    std::vector<RenderScratch> scratch(rig.size());  // one per camera: each caches its ground rays
    std::array<std::set<std::uint32_t>, kObjectClasses> seen;
    double speed_sum = 0, speed_max = 0;
    for (int f = 0; f < frames; ++f) {
        const double t = static_cast<double>(f) / o.video.fps;
        const EgoState ego = scene.ego_at(t);
        const std::vector<ObjectState> visible = scene.objects_at(t, kRenderRadius_m);
        for (std::size_t c = 0; c < rig.size(); ++c) {
            render_frame(scene, ego, visible, rig[c], rgb, scratch[c]);
            encoders[c]->add_frame(rgb);
        }
        FrameLabels frame;
        frame.ego = ego;
        frame.objects = scene.objects_at(t, o.grid.range_m);
        rasterize_occupancy(frame.objects, o.grid, frame.occupancy);
        for (const ObjectState& object : frame.objects) {
            seen[static_cast<int>(object.cls)].insert(object.id);
        }
        speed_sum += ego.speed_mps;
        speed_max = std::max(speed_max, ego.speed_mps);
        labels.frames.push_back(std::move(frame));
    }

    SceneFiles files;
    ClipRecord& r = files.record;
    r.clip = labels.clip;
    r.kind = config.kind;
    r.split = index % o.hold_out_every == o.hold_out_every - 1 ? "test" : "train";
    r.seed = config.seed;
    r.frames = frames;
    r.fps = o.video.fps;
    r.width = width;
    r.height = height;
    r.keyframe_interval = o.video.keyframe_interval;
    r.ego_speed_mean_mps = speed_sum / frames;
    r.ego_speed_max_mps = speed_max;
    for (int k = 0; k < kObjectClasses; ++k) {
        r.objects[k] = static_cast<int>(seen[k].size());
    }
    for (std::size_t c = 0; c < rig.size(); ++c) {
        files.mp4.push_back(encoders[c]->finish());
        r.streams.push_back({rig[c].name, 0, files.mp4.back().size(), frames, encoders[c]->keyframes()});
    }
    files.labels = encode_labels(labels);
    return files;
}

// Writes scenes in index order into shards of at most shard_bytes (a clip is never split across shards).
class StoreWriter {
public:
    StoreWriter(const SynthOptions& o) : o_(o), manifest_(o.out_dir, true) {
        manifest_.set_setting("fps", std::to_string(o.video.fps));
        manifest_.set_setting("width", std::to_string(o.video.width));
        manifest_.set_setting("height", std::to_string(o.video.height));
        manifest_.set_setting("keyframe_interval", std::to_string(o.video.keyframe_interval));
        manifest_.set_setting("codec", o.video.codec == Codec::H264 ? "h264" : "hevc");
        manifest_.set_setting("grid", std::to_string(o.grid.range_m) + " " + std::to_string(o.grid.voxel_m) + " " +
                                          std::to_string(o.grid.heights));
        manifest_.set_setting("seed", std::to_string(o.seed));
    }

    void write(SceneFiles& files) {
        std::uint64_t size = files.labels.size() + 1024;
        for (const std::string& m : files.mp4) {
            size += m.size() + 1024;
        }
        if (shard_ && shard_->bytes() + size > o_.shard_bytes) {
            finish_shard();
        }
        if (!shard_) {
            char name[32];
            std::snprintf(name, sizeof name, "shard-%06d.tar", report_.shards);
            shard_name_ = name;
            shard_ = std::make_unique<TarWriter>(o_.out_dir + "/" + shard_name_);
        }
        ClipRecord& r = files.record;
        r.shard = shard_name_;
        for (std::size_t c = 0; c < files.mp4.size(); ++c) {
            const TarMember m = shard_->add(r.clip + "." + r.streams[c].camera + ".mp4", files.mp4[c]);
            r.streams[c].offset = m.offset;
            report_.frames += r.streams[c].frames;
        }
        const TarMember labels = shard_->add(r.clip + ".labels", files.labels);
        r.labels_offset = labels.offset;
        r.labels_bytes = labels.size;
        pending_.push_back(std::move(r));  // indexed once its shard is complete
        ++report_.clips;
    }

    SynthReport finish() {
        if (shard_) {
            finish_shard();
        }
        manifest_.commit();
        return report_;
    }

private:
    void finish_shard() {
        shard_->close();
        report_.bytes += shard_->bytes();
        ++report_.shards;
        shard_.reset();
        for (const ClipRecord& r : pending_) {
            manifest_.add(r);
        }
        pending_.clear();
    }

    const SynthOptions& o_;
    Manifest manifest_;
    std::unique_ptr<TarWriter> shard_;
    std::string shard_name_;
    std::vector<ClipRecord> pending_;
    SynthReport report_;
};

void prepare_directory(const std::string& dir) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error || !std::filesystem::is_directory(dir)) {
        throw IoError("cannot create the store directory " + dir + ": " + (error ? error.message() : "not a directory"));
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name == kManifestName || (name.starts_with("shard-") && name.ends_with(".tar"))) {
            throw UsageError("the directory " + dir + " already holds a clip store (" + name +
                             "); choose another --out directory, or remove the store first");
        }
    }
}

}  // namespace

void SynthOptions::validate() const {
    if (out_dir.empty()) {
        throw UsageError("dojo data synth needs --out DIR, the directory of the new clip store");
    }
    if (scenes < 1 || scenes > 100000) {
        throw UsageError("--scenes " + std::to_string(scenes) + ": expected 1..100000");
    }
    if (!(duration_s >= 0.1 && duration_s <= 600)) {
        char shown[32];
        std::snprintf(shown, sizeof shown, "%g", duration_s);
        throw UsageError(std::string("--duration ") + shown + ": expected 0.1..600 seconds per clip");
    }
    video.validate();
    if (video.width > 1280 || video.height > 960) {
        throw UsageError("--size " + std::to_string(video.width) + "x" + std::to_string(video.height) +
                         ": the synthetic fleet renders at most 1280x960");
    }
    if (shard_bytes < (1ull << 20) || shard_bytes > (64ull << 30)) {
        throw UsageError("--shard-size: expected 1 MB .. 64 GB");
    }
    grid.validate();
    if (threads < 0 || threads > 1024) {
        throw UsageError("--threads " + std::to_string(threads) + ": expected 0 (one per core) .. 1024");
    }
    if (hold_out_every < 2) {
        throw UsageError("hold_out_every must be at least 2");
    }
}

SceneConfig scene_config(std::uint64_t seed, int index, double duration_s) {
    SplitMix64 random(seed ^ (0xD1B54A32D192ED03ULL * static_cast<std::uint64_t>(index + 1)));
    SceneConfig config;
    config.seed = random.next();
    config.kind = static_cast<SceneKind>(random.below(kSceneKinds));
    config.duration_s = duration_s;
    return config;
}

SynthReport synthesize(const SynthOptions& o, const std::function<void(int, int)>& progress) {
    o.validate();
    prepare_directory(o.out_dir);
    const auto start = std::chrono::steady_clock::now();
    StoreWriter writer(o);
    const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    // At most 2 scenes per thread wait in memory for their turn to be written.
    OrderedPool<SceneFiles> scenes(o.scenes, threads, 2 * threads, [&](int index) { return make_scene(o, index); });
    SceneFiles files;
    for (int written = 0; scenes.next(files);) {
        writer.write(files);
        progress(++written, o.scenes);
    }
    SynthReport report = writer.finish();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.footage_seconds = o.scenes * o.duration_s;
    return report;
}

}  // namespace dojo::data::fleet
