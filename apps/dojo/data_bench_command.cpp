// `dojo data bench STORE`: the decoding pipeline's delivered frame rate against raw decoding of the same streams in
// the same run, and the cost of random access.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <thread>

#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/pipeline.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/data/fleet/video.h"
#include "dojo/util/error.h"
#include "dojo/util/ordered_pool.h"
#include "dojo/util/random.h"

namespace dojo::cli {
namespace {

using namespace dojo::data::fleet;
using Clock = std::chrono::steady_clock;

struct BenchCommand {
    std::string dir, size = "224x168", cameras;
    int threads = 0, accesses = 40;
    bool json = false;
};

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Every frame of every stream decoded at its own size, nothing else: the decode bound of this machine.
double raw_decode_fps(const std::string& dir, const std::vector<ClipRecord>& clips, int threads) {
    std::vector<std::pair<const ClipRecord*, const StreamRecord*>> streams;
    for (const ClipRecord& c : clips) {
        for (const StreamRecord& s : c.streams) {
            streams.emplace_back(&c, &s);
        }
    }
    const auto start = Clock::now();
    OrderedPool<std::int64_t> pool(static_cast<int>(streams.size()), threads, 2 * threads, [&](int i) {
        const auto [clip, stream] = streams[static_cast<std::size_t>(i)];
        const std::string mp4 = read_range(dir + "/" + clip->shard, stream->offset, stream->bytes);
        VideoDecoder decoder(mp4, clip->clip + "." + stream->camera);
        std::vector<int> all(static_cast<std::size_t>(stream->frames));
        std::iota(all.begin(), all.end(), 0);
        decoder.read_native(all);
        return decoder.frames_decoded();
    });
    std::int64_t frames = 0;
    for (std::int64_t n = 0; pool.next(n);) {
        frames += n;
    }
    return static_cast<double>(frames) / since(start);
}

void run_bench(const BenchCommand& c) {
    const int threads = c.threads > 0 ? c.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    ClipSampling sampling;
    parse_size(c.size, sampling.width, sampling.height);
    sampling.every = 1;  // every frame: what a raw decode delivers too
    sampling.threads = threads;
    if (!c.cameras.empty()) {
        sampling = parse_clip_source("x,cameras=" + c.cameras + ",size=" + c.size).sampling;
        sampling.every = 1;
        sampling.threads = threads;
    }
    ClipPipeline pipeline(c.dir, sampling);
    const std::vector<ClipRecord> clips = Manifest(c.dir, false).query({});
    std::cerr << fmt::format("bench: {} clips, {} threads; raw decode ...\n", clips.size(), threads);
    const double raw_fps = raw_decode_fps(c.dir, clips, threads);
    std::cerr << "bench: pipeline ...\n";
    const auto start = Clock::now();
    ClipSample sample;
    std::int64_t samples = 0;
    while (pipeline.next(sample)) {
        ++samples;
    }
    const double seconds = since(start);
    const double pipeline_fps =
        static_cast<double>(samples) * static_cast<double>(pipeline.camera_indices().size()) / seconds;
    // Random access: one frame of a random stream, through a fresh decoder, as a shuffled loader reads.
    SplitMix64 random(1);
    double access_s = 0;
    std::int64_t access_frames = 0, worst = 0;
    for (int i = 0; i < c.accesses; ++i) {
        const ClipRecord& clip = clips[random.below(clips.size())];
        const StreamRecord& stream = clip.streams[random.below(clip.streams.size())];
        const int frame[1] = {static_cast<int>(random.below(static_cast<std::uint64_t>(stream.frames)))};
        const auto t0 = Clock::now();
        const std::string mp4 = read_range(c.dir + "/" + clip.shard, stream.offset, stream.bytes);
        VideoDecoder decoder(mp4, clip.clip + "." + stream.camera);
        decoder.read(frame, sampling.width, sampling.height, [](int, std::span<const std::uint8_t>) {});
        access_s += since(t0);
        access_frames += decoder.frames_decoded();
        worst = std::max(worst, decoder.frames_decoded());
    }
    const int interval = clips.front().keyframe_interval;
    const nlohmann::json out{
        {"store", c.dir}, {"threads", threads}, {"training_size", c.size},
        {"pipeline_frames_per_s", pipeline_fps}, {"raw_decode_frames_per_s", raw_fps},
        {"pipeline_over_raw", pipeline_fps / raw_fps}, {"skipped_clips", pipeline.skipped().size()},
        {"keyframe_interval", interval},
        {"random_access", {{"accesses", c.accesses}, {"mean_frames_decoded", double(access_frames) / c.accesses},
                           {"max_frames_decoded", worst}, {"mean_ms", access_s / c.accesses * 1e3}}}};
    if (c.json) {
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("pipeline: {:.0f} frames/s delivered at {} (decode, scale, normalise, shuffle), "
                             "{:.0f}% of raw decoding's {:.0f} frames/s in the same run ({} threads)\n",
                             pipeline_fps, c.size, 100 * pipeline_fps / raw_fps, raw_fps, threads);
    std::cout << fmt::format("random access: {:.1f} frames decoded on average, {} at most, {:.1f} ms each "
                             "(keyframe interval {})\n",
                             double(access_frames) / c.accesses, worst, access_s / c.accesses * 1e3, interval);
}

}  // namespace

void add_data_bench(CLI::App& data) {
    auto c = std::make_shared<BenchCommand>();
    CLI::App* cmd = data.add_subcommand("bench", "Measure the decoding pipeline: frames per second delivered at the "
                                                 "training resolution against raw decoding of the same streams, and "
                                                 "the cost of random access.");
    cmd->add_option("store", c->dir, "clip store directory")->required();
    cmd->add_option("--size", c->size, "training resolution, WxH (default 224x168)");
    cmd->add_option("--cameras", c->cameras, "cameras, NAME+NAME (default all eight)");
    cmd->add_option("--threads", c->threads, "decode threads (default 0: one per core)");
    cmd->add_option("--accesses", c->accesses, "random accesses to time (default 40)")->check(CLI::Range(1, 100000));
    cmd->add_flag("--json", c->json, "print as JSON");
    cmd->callback([c] { run_bench(*c); });
}

}  // namespace dojo::cli
