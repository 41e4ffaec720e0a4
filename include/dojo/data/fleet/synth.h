/** \file
 * `dojo data synth`: makes a clip store of synthetic fleet video. Each scene (scene.h) is rendered by the eight
 * cameras of the rig (cameras.h, render.h), every camera encoded to its own MP4 (video.h), its ground truth written
 * as a labels file (labels.h), the members packed into tar shards of a bounded size (tar.h) and indexed in the
 * manifest (manifest.h).
 *
 * Deterministic: the same options give byte-identical shards and labels for any thread count (scenes are rendered
 * side by side and written in order). Every fifth scene is held out (split "test"), so that evaluation sees scenes
 * training never saw.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dojo/data/fleet/scene.h"
#include "dojo/data/fleet/video.h"

namespace dojo::data::fleet {

struct SynthOptions {
    std::string out_dir;
    int scenes = 20;
    double duration_s = 5.0;       ///< per clip
    EncoderOptions video;          ///< resolution, frame rate, keyframe interval, codec
    std::uint64_t shard_bytes = 256ull << 20;
    OccupancyGrid grid;
    std::uint64_t seed = 0;
    int threads = 0;               ///< 0: one per core
    int hold_out_every = 5;        ///< scene i is held out when i % hold_out_every == hold_out_every - 1
    /// Throws UsageError naming the bad option.
    void validate() const;
};

struct SynthReport {
    int clips = 0, shards = 0;
    std::int64_t frames = 0;          ///< camera frames encoded (clips x cameras x frames per clip)
    std::uint64_t bytes = 0;          ///< in the shards
    double seconds = 0;               ///< wall time
    double footage_seconds = 0;       ///< clip time made (clips x duration)
};

/// Makes the store in options.out_dir (created if missing; refused if it already holds a store or shards).
/// `progress(done, total)` is called after each scene is written.
SynthReport synthesize(const SynthOptions& options, const std::function<void(int, int)>& progress);

/// The scene kind and seed of scene `index` of a store made with `seed`.
SceneConfig scene_config(std::uint64_t seed, int index, double duration_s);

}  // namespace dojo::data::fleet
