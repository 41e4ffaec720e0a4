/** \file
 * The clip decoding pipeline: samples of the clip store as training tensors.
 *
 * A sample is a window of `sequence` frames, `stride` frames apart, from the chosen cameras of one clip, decoded,
 * scaled to the training resolution (area averaging), optionally cropped and jittered (the same crop offset,
 * brightness and contrast for every camera and frame of a sample: the cameras stay consistent with each other and
 * with the calibration), normalised ((x / 255 - 0.45) / 0.225), as float or BF16; with the ground truth of its last
 * frame. Windows start every `every` frames of a clip: a sampling timeline slower than the cameras'.
 *
 * Flow (one epoch): the selected clips in a seeded order (rank r of R takes every R-th clip), each cut into units of
 * the windows starting within one keyframe interval → decode threads, one unit at a time each (the streams read
 * straight from the shard through the manifest's offsets, each camera's decoder seeking to the unit's keyframe) →
 * a bounded queue of decoded units, handed on in order → a seeded shuffle buffer → samples. The same seed gives the
 * same samples in the same order for any thread count.
 *
 * Bad data never stops a run silently or crashes it: a clip whose labels fail their checksum, whose camera stream
 * is missing, truncated or corrupt, or whose stream and labels disagree on the frame count, is skipped and recorded
 * (skipped(), once per clip: units of it decoded before the damage was found have been delivered); with `strict`
 * it is an IoError naming the shard, clip and camera.
 */
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dojo/data/dataset.h"
#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"

namespace dojo::data::fleet {

struct ClipSampling {
    std::vector<std::string> cameras;  ///< by rig name; empty: all eight
    int sequence = 1;                  ///< frames per sample
    int stride = 1;                    ///< frames between a sample's frames
    int every = 0;                     ///< frames between windows' first frames; 0: the store's keyframe interval
    int width = 160, height = 120;     ///< training resolution
    bool bf16 = false;                 ///< samples in BF16 (round to nearest even) instead of float
    bool augment = false;              ///< random crop offset and brightness/contrast jitter, shared by the cameras
    ClipFilter filter;
    std::uint64_t seed = 0;
    int threads = 0;                   ///< decode threads; 0: one per core
    int prefetch_clips = 2;            ///< decoded units (a keyframe interval each) queued ahead, per thread
    int shuffle_buffer = 64;           ///< samples; 1: no shuffling (clip order, then window order)
    int rank = 0, ranks = 1;           ///< data-parallel sharding, by clip
    bool strict = false;
    /// What load_clip_dataset labels a sample with: its clip's scene kind (a class), or the occupancy grid of its
    /// last frame, pooled to occupancy_grid cells (x, y, z; a pooled cell is 1 when any of its voxels is occupied;
    /// zeros: a fifth of the store's cells across, half of its heights).
    enum class Target : std::uint8_t { SceneKind, Occupancy } target = Target::SceneKind;
    std::array<int, 3> occupancy_grid{};
    /// Throws UsageError naming the bad field.
    void validate() const;
};

struct ClipSample {
    std::string clip;
    int first_frame = 0;
    SceneKind kind = SceneKind::Urban;
    std::vector<float> pixels;          ///< [sequence][camera][3][height][width], unless bf16
    std::vector<std::uint16_t> pixels_bf16;  ///< the same, as BF16 bit patterns, when bf16
    FrameLabels labels;                 ///< of the window's last frame
    OccupancyGrid grid;                 ///< the store's occupancy grid (labels.occupancy's layout)
};

struct SkippedClip {
    std::string shard, clip, camera;  ///< camera: "" when the labels are at fault
    std::string reason;
};

class ClipPipeline {
public:
    /// Opens the store in `dir` and selects its clips. Throws IoError if there is no store, UsageError on bad options
    /// or when the selection is empty.
    ClipPipeline(const std::string& dir, const ClipSampling& sampling);
    ~ClipPipeline();
    ClipPipeline(const ClipPipeline&) = delete;
    ClipPipeline& operator=(const ClipPipeline&) = delete;

    /// The clips this rank reads, and the windows they hold (before any is skipped).
    std::size_t clips() const { return clips_.size(); }
    std::size_t windows() const;
    /// Floats (or BF16 values) per sample.
    std::int64_t sample_values() const;
    const std::vector<int>& camera_indices() const { return cameras_; }

    /// Begins epoch `epoch` (its clip order and shuffle are seeded by (seed, epoch)).
    void start_epoch(std::uint64_t epoch);
    /// The next sample of the epoch, into `sample`; false when the epoch is over. The pixels `sample` held before are
    /// reused for a later sample, so a loop that passes the same ClipSample touches new memory only at its start.
    bool next(ClipSample& sample);

    const std::vector<SkippedClip>& skipped() const { return skipped_; }
    std::int64_t frames_decoded() const { return frames_decoded_; }

private:
    // Windows [first_window, end_window) of clip `clip`: the work of one decode task.
    struct Unit {
        int clip = 0, first_window = 0, end_window = 0;
    };
    struct Decoded;
    Decoded decode_unit(const Unit& unit, std::uint64_t epoch) const;
    bool refill();
    std::vector<float> take_buffer() const;  // a sample's pixel buffer: a recycled one, or a new one

    std::string dir_;
    ClipSampling s_;
    std::vector<ClipRecord> clips_;
    std::vector<int> cameras_;
    int every_ = 1;
    struct State;
    std::unique_ptr<State> state_;
    std::vector<SkippedClip> skipped_;
    std::int64_t frames_decoded_ = 0;
    mutable std::mutex buffers_mutex_;
    mutable std::vector<std::vector<float>> free_buffers_;
};

/// `dojo train --data clips:DIR[,KEY=VALUE...]`: the store directory and its sampling. Keys: cameras=NAME+NAME...,
/// size=WxH, sequence=N, stride=N, every=N, augment=0|1, threads=N, seed=N, strict=0|1, target=scene|occupancy,
/// grid=XxYxZ (the pooled occupancy grid), and the filter terms of
/// ClipFilter::set (scene=, min-speed=, max-speed=, min-CLASS=, limit=). Throws UsageError naming a bad term.
struct ClipSource {
    std::string dir;
    ClipSampling sampling;
};
ClipSource parse_clip_source(const std::string& spec);
/// "WxH" -> width, height; throws UsageError otherwise.
void parse_size(const std::string& text, int& width, int& height);

/// A dataset of `split` ("train" or "test") from the store: every window of the selected clips, samples
/// [sequence * cameras * 3, height, width], labelled as sampling.target says: its clip's scene kind (3 classes:
/// highway, urban, rural), or its last frame's pooled occupancy grid (binary labels, z-major then y then x, as
/// rasterize_occupancy lays cells out). Skipped clips are appended to `skipped`; `progress(samples done, samples expected)` is called as they
/// decode. Throws UsageError if the samples would take more than half of this machine's memory.
Dataset load_clip_dataset(const std::string& dir, ClipSampling sampling, const std::string& split,
                          std::vector<SkippedClip>& skipped,
                          const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace dojo::data::fleet
