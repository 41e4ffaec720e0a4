// `dojo data ...` (data_command.h): thin: parse, call data/fleet, print.
#include "data_command.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/pipeline.h"
#include "dojo/data/fleet/render.h"
#include "dojo/data/fleet/synth.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/data/fleet/video.h"
#include "dojo/data/idx.h"
#include "dojo/util/error.h"
#include "dojo/util/text.h"
#include "dojo/util/files.h"
#include "dojo/util/random.h"

namespace dojo::cli {
namespace {

using namespace dojo::data::fleet;

// A progress line on stderr: redrawn in place on a terminal, printed at quarter steps otherwise.
class ProgressLine {
public:
    explicit ProgressLine(std::string what) : what_(std::move(what)), tty_(::isatty(STDERR_FILENO) == 1) {}
    void operator()(int done, int total, const std::string& detail = "") {
        const int quarter = done * 4 / std::max(total, 1);
        if (!tty_ && quarter == last_quarter_ && done != total) {
            return;
        }
        last_quarter_ = quarter;
        constexpr int kWidth = 24;
        const int filled = done * kWidth / std::max(total, 1);
        std::cerr << (tty_ ? "\r" : "") << fmt::format("{} [{}{}] {}/{} {}", what_, std::string(filled, '#'),
                                                        std::string(kWidth - filled, '.'), done, total, detail)
                  << (tty_ ? "\033[K" : "\n") << (tty_ && done == total ? "\n" : "") << std::flush;
    }

private:
    std::string what_;
    bool tty_;
    int last_quarter_ = -1;
};

std::uint64_t parse_bytes(const std::string& text) {
    std::size_t used = 0;
    const double value = leading_number(text, used);
    const std::string unit = text.substr(used);
    const double scale = unit == "" || unit == "B" ? 1 : unit == "KB" ? 1e3 : unit == "MB" ? 1e6 : unit == "GB" ? 1e9 : -1;
    if (used == 0 || scale < 0 || !(value > 0) || value * scale > 1e15) {
        throw UsageError("size '" + text + "': expected a number with B, KB, MB or GB, e.g. 256MB");
    }
    return static_cast<std::uint64_t>(value * scale);
}

// ---- synth ------------------------------------------------------------------------------------------------------

struct SynthCommand {
    SynthOptions options;
    std::string size = "640x480", codec = "h264", shard_size = "256MB";
    bool json = false;
};

void run_synth(SynthCommand& c) {
    parse_size(c.size, c.options.video.width, c.options.video.height);
    c.options.video.codec = parse_codec(c.codec);
    c.options.shard_bytes = parse_bytes(c.shard_size);
    ProgressLine progress("synth");
    const auto start = std::chrono::steady_clock::now();
    const SynthReport r = synthesize(c.options, [&](int done, int total) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress(done, total, fmt::format("scenes  {:.2f}x real time", done * c.options.duration_s / s));
    });
    const double realtime = r.footage_seconds / r.seconds;
    if (c.json) {
        std::cout << nlohmann::json{{"store", c.options.out_dir}, {"clips", r.clips}, {"shards", r.shards},
                                    {"camera_frames", r.frames}, {"bytes", r.bytes}, {"seconds", r.seconds},
                                    {"footage_seconds", r.footage_seconds}, {"real_time_factor", realtime}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::cout << fmt::format("{}: {} clips of {} s from 8 cameras at {}x{}, {} fps, in {} shard{} ({:.1f} MB)\n"
                             "made in {:.1f} s: {:.2f}x real time ({:.0f} camera frames/s)\n",
                             c.options.out_dir, r.clips, c.options.duration_s, c.options.video.width,
                             c.options.video.height, c.options.video.fps, r.shards, r.shards == 1 ? "" : "s",
                             static_cast<double>(r.bytes) / 1e6, r.seconds, realtime,
                             static_cast<double>(r.frames) / r.seconds);
}

void add_synth(CLI::App& data) {
    auto c = std::make_shared<SynthCommand>();
    CLI::App* cmd = data.add_subcommand("synth", "Make a clip store of synthetic multi-camera driving scenes with "
                                                 "ground truth (H.264 shards + SQLite manifest).");
    cmd->add_option("--out", c->options.out_dir, "directory of the new store (created; must not hold a store)")->required();
    cmd->add_option("--scenes", c->options.scenes, "clips to make, one scene each (default 20)");
    cmd->add_option("--duration", c->options.duration_s, "seconds per clip (default 5)");
    cmd->add_option("--size", c->size, "pixels per camera, WxH (default 640x480, at most 1280x960)");
    cmd->add_option("--fps", c->options.video.fps, "frames per second (default 36)");
    cmd->add_option("--keyframe-interval", c->options.video.keyframe_interval,
                    "frames between keyframes (default 36): random access decodes at most this many");
    cmd->add_option("--codec", c->codec, "h264 (libx264, default) or hevc (libx265)");
    cmd->add_option("--crf", c->options.video.crf, "quality: x264/x265 constant rate factor, 0..51 (default 23)");
    cmd->add_option("--preset", c->options.video.preset, "encoder speed preset: ultrafast .. veryslow (default superfast)");
    cmd->add_option("--shard-size", c->shard_size, "largest shard, e.g. 256MB (default), 1GB");
    cmd->add_option("--range", c->options.grid.range_m, "occupancy grid: metres each way from the car (default 40)");
    cmd->add_option("--voxel", c->options.grid.voxel_m, "occupancy grid: voxel side in metres (default 0.4)");
    cmd->add_option("--heights", c->options.grid.heights, "occupancy grid: voxel layers above the ground (default 8)");
    cmd->add_option("--seed", c->options.seed, "seed of the scenes (default 0): same seed, same store");
    cmd->add_option("--threads", c->options.threads, "scenes rendered side by side (default 0: one per core)");
    cmd->add_flag("--json", c->json, "print the summary as JSON");
    cmd->callback([c] { run_synth(*c); });
}

// ---- query and stats ----------------------------------------------------------------------------------------------

nlohmann::json clip_json(const ClipRecord& r) {
    nlohmann::json objects;
    for (int k = 0; k < kObjectClasses; ++k) {
        objects[object_class_name(static_cast<ObjectClass>(k))] = r.objects[k];
    }
    nlohmann::json streams = nlohmann::json::array();
    for (const StreamRecord& s : r.streams) {
        streams.push_back({{"camera", s.camera}, {"offset", s.offset}, {"bytes", s.bytes}, {"frames", s.frames},
                           {"keyframes", s.keyframes}});
    }
    return {{"clip", r.clip}, {"shard", r.shard}, {"scene", scene_kind_name(r.kind)}, {"split", r.split},
            {"frames", r.frames}, {"fps", r.fps}, {"width", r.width}, {"height", r.height},
            {"keyframe_interval", r.keyframe_interval}, {"ego_speed_mean_mps", r.ego_speed_mean_mps},
            {"ego_speed_max_mps", r.ego_speed_max_mps}, {"objects", objects}, {"streams", streams}};
}

struct QueryCommand {
    std::string dir;
    std::vector<std::string> terms;
    bool json = false;
};

void run_query(const QueryCommand& c) {
    ClipFilter filter;
    for (const std::string& term : c.terms) {
        filter.set(term);
    }
    const std::vector<ClipRecord> clips = Manifest(c.dir, false).query(filter);
    if (c.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const ClipRecord& r : clips) {
            out.push_back(clip_json(r));
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("{:<12} {:<16} {:<8} {:<5} {:>6} {:>9}  {:>4} {:>5} {:>4} {:>4} {:>4} {:>4} {:>5}\n", "clip",
                             "shard", "scene", "split", "frames", "speed m/s", "car", "truck", "ped", "cyc", "cone",
                             "barr", "struct");
    for (const ClipRecord& r : clips) {
        std::cout << fmt::format("{:<12} {:<16} {:<8} {:<5} {:>6} {:>9.1f}  {:>4} {:>5} {:>4} {:>4} {:>4} {:>4} {:>5}\n",
                                 r.clip, r.shard, scene_kind_name(r.kind), r.split, r.frames, r.ego_speed_mean_mps,
                                 r.objects[0], r.objects[1], r.objects[2], r.objects[3], r.objects[4], r.objects[5],
                                 r.objects[6]);
    }
    std::cout << fmt::format("{} clip{}\n", clips.size(), clips.size() == 1 ? "" : "s");
}

void add_query(CLI::App& data) {
    auto c = std::make_shared<QueryCommand>();
    CLI::App* cmd = data.add_subcommand("query", "Select clips by scenario: scene=highway|urban|rural, "
                                                 "split=train|test, min-speed=M/S, max-speed=M/S, min-CLASS=N "
                                                 "(car, truck, pedestrian, cyclist, cone, barrier, structure), limit=N.");
    cmd->add_option("store", c->dir, "clip store directory")->required();
    cmd->add_option("filters", c->terms, "KEY=VALUE terms, all of which must hold");
    cmd->add_flag("--json", c->json, "print the clips (with their streams and keyframes) as JSON");
    cmd->callback([c] { run_query(*c); });
}

struct StatsCommand {
    std::string dir;
    bool json = false;
};

void run_stats(const StatsCommand& c) {
    const Manifest manifest(c.dir, false);
    const std::vector<ClipRecord> clips = manifest.query({});
    std::map<std::string, int> by_scene, by_split;
    std::array<long, kObjectClasses> objects{};
    long frames = 0;
    double footage_s = 0, camera_s = 0, bytes = 0, speed_sum = 0;
    for (const ClipRecord& r : clips) {
        ++by_scene[scene_kind_name(r.kind)];
        ++by_split[r.split];
        frames += static_cast<long>(r.frames) * static_cast<long>(r.streams.size());
        footage_s += static_cast<double>(r.frames) / r.fps;
        camera_s += static_cast<double>(r.frames) / r.fps * static_cast<double>(r.streams.size());
        speed_sum += r.ego_speed_mean_mps;
        for (int k = 0; k < kObjectClasses; ++k) {
            objects[k] += r.objects[k];
        }
        for (const StreamRecord& s : r.streams) {
            bytes += static_cast<double>(s.bytes);
        }
    }
    nlohmann::json object_json;
    for (int k = 0; k < kObjectClasses; ++k) {
        object_json[object_class_name(static_cast<ObjectClass>(k))] = objects[k];
    }
    const nlohmann::json out{{"store", c.dir}, {"settings", manifest.settings()}, {"clips", clips.size()},
                             {"by_scene", by_scene}, {"by_split", by_split}, {"camera_frames", frames},
                             {"footage_seconds", footage_s}, {"video_bytes", bytes},
                             {"video_megabits_per_camera_second", camera_s > 0 ? bytes * 8 / 1e6 / camera_s : 0},
                             {"mean_ego_speed_mps", clips.empty() ? 0 : speed_sum / static_cast<double>(clips.size())}, {"objects", object_json}};
    if (c.json) {
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("{}: {} clips ({:.1f} min of 8-camera footage), {} camera frames, {:.1f} MB of video "
                             "({:.2f} Mbit/s per camera)\n",
                             c.dir, clips.size(), footage_s / 60, frames, bytes / 1e6,
                             out["video_megabits_per_camera_second"].get<double>());
    std::cout << "scenes: " << nlohmann::json(by_scene).dump() << "  splits: " << nlohmann::json(by_split).dump() << "\n";
    std::cout << "objects (distinct, within the grid): " << object_json.dump() << "\n";
    std::cout << "settings: " << nlohmann::json(manifest.settings()).dump() << "\n";
}

void add_stats(CLI::App& data) {
    auto c = std::make_shared<StatsCommand>();
    CLI::App* cmd = data.add_subcommand("stats", "Summarise a clip store: clips by scene and split, footage, bytes, "
                                                 "objects by class.");
    cmd->add_option("store", c->dir, "clip store directory")->required();
    cmd->add_flag("--json", c->json, "print as JSON");
    cmd->callback([c] { run_stats(*c); });
}

// ---- export ------------------------------------------------------------------------------------------------------

struct ExportCommand {
    std::string dir, options, out;
};

// A split as IDX files: images float32 [N, channels, height, width], labels bytes [N] (classes) or [N, outputs]
// (binary targets).
void export_split(const data::Dataset& d, const std::string& out, const std::string& split) {
    data::IdxArray images;
    images.is_float = true;
    images.dims = {static_cast<std::int64_t>(d.size())};
    for (const std::int64_t dim : d.sample_shape.dims()) {
        images.dims.push_back(dim);
    }
    images.floats = d.samples;
    data::IdxArray labels;
    labels.dims = {static_cast<std::int64_t>(d.size())};
    if (d.labels_per_sample > 1) {
        labels.dims.push_back(static_cast<std::int64_t>(d.labels_per_sample));
    }
    labels.values.assign(d.labels.begin(), d.labels.end());
    write_output_file(out + "/" + split + "-images.idx", data::encode_idx(images), "exported images");
    write_output_file(out + "/" + split + "-labels.idx", data::encode_idx(labels), "exported labels");
}

void run_export(const ExportCommand& c) {
    const ClipSource source = parse_clip_source(c.dir + (c.options.empty() ? "" : "," + c.options));
    require_output_path(c.out + "/train-images.idx", "exported images");
    for (const char* split : {"train", "test"}) {
        std::vector<SkippedClip> skipped;
        const data::Dataset d = load_clip_dataset(source.dir, source.sampling, split, skipped);
        export_split(d, c.out, split);
        std::cout << fmt::format("{}: {} {} samples of {} with {} label{} each{}\n", c.out, d.size(), split,
                                 d.sample_shape.to_string(), d.labels_per_sample, d.labels_per_sample == 1 ? "" : "s",
                                 skipped.empty() ? "" : fmt::format(" ({} clips skipped as damaged)", skipped.size()));
    }
}

void add_export(CLI::App& data) {
    auto c = std::make_shared<ExportCommand>();
    CLI::App* cmd = data.add_subcommand("export", "Write the samples dojo train would read from a store as IDX files "
                                                  "(DIR/{train,test}-{images,labels}.idx), for another framework to "
                                                  "train on exactly the same tensors.");
    cmd->add_option("store", c->dir, "clip store directory")->required();
    cmd->add_option("--clips", c->options, "sampling options as in --data clips:DIR,OPTIONS, e.g. "
                                           "size=96x64,every=6,target=occupancy");
    cmd->add_option("--out", c->out, "directory for the IDX files (it must exist)")->required();
    cmd->callback([c] { run_export(*c); });
}

}  // namespace

void add_data_inspect(CLI::App& data);
void add_data_bench(CLI::App& data);

void add_data_command(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "The fleet clip store: synth, query, inspect, stats, bench, export.");
    data->require_subcommand(1);
    add_synth(*data);
    add_query(*data);
    add_data_inspect(*data);
    add_stats(*data);
    add_data_bench(*data);
    add_export(*data);
}

}  // namespace dojo::cli
