// The clip decoding pipeline (pipeline.h).
#include "dojo/data/fleet/pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <thread>

#include <unistd.h>

#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/data/fleet/video.h"
#include "dojo/numerics/convert.h"
#include "dojo/util/error.h"
#include "dojo/util/ordered_pool.h"
#include "dojo/util/random.h"

namespace dojo::data::fleet {
namespace {

// The normalisation of every sample: roughly zero-mean, unit-variance pixels for any scene.
constexpr float kPixelMean = 0.45f, kPixelStd = 0.225f;

// A sample's augmentation: the same for all of its cameras and frames.
struct Jitter {
    int crop_x = 0, crop_y = 0;
    float gain = 1, offset = 0;
};

Jitter draw_jitter(const ClipSampling& s, int pad_x, int pad_y, std::uint64_t seed) {
    if (!s.augment) {
        return {pad_x / 2, pad_y / 2, 1, 0};
    }
    SplitMix64 random(seed);
    Jitter j;
    j.crop_x = static_cast<int>(random.below(static_cast<std::uint64_t>(pad_x + 1)));
    j.crop_y = static_cast<int>(random.below(static_cast<std::uint64_t>(pad_y + 1)));
    j.gain = static_cast<float>(0.8 + 0.4 * random.unit());       // contrast
    j.offset = static_cast<float>(-0.1 + 0.2 * random.unit());    // brightness
    return j;
}

// The window starts of a clip of `frames` frames.
std::vector<int> window_starts(const ClipSampling& s, int every, int frames) {
    std::vector<int> starts;
    const int span = (s.sequence - 1) * s.stride;
    for (int start = 0; start + span < frames; start += every) {
        starts.push_back(start);
    }
    return starts;
}

// The sample's pixels as BF16 bit patterns (round to nearest even), its float pixels released.
void to_bf16(ClipSample& sample) {
    numerics::round_to_bf16_nearest_values(sample.pixels.data(), sample.pixels.data(), sample.pixels.size());
    sample.pixels_bf16.resize(sample.pixels.size());
    for (std::size_t i = 0; i < sample.pixels.size(); ++i) {
        std::uint32_t bits = 0;
        std::memcpy(&bits, &sample.pixels[i], 4);
        sample.pixels_bf16[i] = static_cast<std::uint16_t>(bits >> 16);
    }
    sample.pixels = {};
}

}  // namespace

void ClipSampling::validate() const {
    if (sequence < 1 || sequence > 256 || stride < 1 || stride > 1000 || every < 0 || every > 100000) {
        throw UsageError("clip sampling: sequence must be 1..256, stride 1..1000 and every 0..100000 frames");
    }
    if (width < 8 || height < 8 || width > 1280 || height > 960) {
        throw UsageError("clip sampling: the training resolution " + std::to_string(width) + "x" +
                         std::to_string(height) + " must be 8x8 .. 1280x960");
    }
    if (threads < 0 || threads > 256 || prefetch_clips < 1 || prefetch_clips > 64 || shuffle_buffer < 1 ||
        shuffle_buffer > 1000000) {
        throw UsageError("clip sampling: threads 0..256, prefetch 1..64 clips per thread, shuffle buffer 1..1000000");
    }
    if (ranks < 1 || rank < 0 || rank >= ranks) {
        throw UsageError("clip sampling: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
    }
    for (const std::string& camera : cameras) {
        geometry::rig_camera_index(camera);
    }
    const bool unset = occupancy_grid == std::array<int, 3>{};
    if (!unset && (occupancy_grid[0] < 1 || occupancy_grid[1] < 1 || occupancy_grid[2] < 1)) {
        throw UsageError("clip sampling: grid cells must be at least 1 each way, got " +
                         std::to_string(occupancy_grid[0]) + "x" + std::to_string(occupancy_grid[1]) + "x" +
                         std::to_string(occupancy_grid[2]));
    }
}

// A decoded clip: its samples, or why it was skipped.
struct ClipPipeline::Decoded {
    int clip = 0;
    std::vector<ClipSample> samples;
    std::optional<SkippedClip> skipped;
    std::int64_t frames_decoded = 0;
};

struct ClipPipeline::State {
    std::uint64_t epoch = 0;
    std::vector<Unit> order;  // the epoch's units, in order
    std::unique_ptr<OrderedPool<Decoded>> pool;
    std::vector<ClipSample> buffer;  // the shuffle buffer
    SplitMix64 random{0};
    std::set<int> bad_clips;  // clips skipped this epoch
    bool drained = false;  // the pool has handed over every clip
};

ClipPipeline::ClipPipeline(const std::string& dir, const ClipSampling& sampling) : dir_(dir), s_(sampling) {
    s_.validate();
    const Manifest manifest(dir, false);
    std::vector<ClipRecord> all = manifest.query(s_.filter);
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (static_cast<int>(i % static_cast<std::size_t>(s_.ranks)) == s_.rank) {
            clips_.push_back(std::move(all[i]));
        }
    }
    if (clips_.empty()) {
        throw UsageError("the clip store " + dir + " has no clips" + (s_.ranks > 1 ? " for rank " + std::to_string(s_.rank) : "") +
                         " matching the selection; see dojo data query " + dir);
    }
    if (s_.cameras.empty()) {
        for (const char* name : geometry::rig_camera_names()) {
            s_.cameras.push_back(name);
        }
    }
    for (const std::string& name : s_.cameras) {
        cameras_.push_back(geometry::rig_camera_index(name));
    }
    every_ = s_.every > 0 ? s_.every : std::max(1, clips_.front().keyframe_interval);
    state_ = std::make_unique<State>();
}

ClipPipeline::~ClipPipeline() {
    // The decode threads use the members declared after state_ (the buffer pool): they stop first.
    if (state_) {
        state_->pool.reset();
    }
}

std::size_t ClipPipeline::windows() const {
    std::size_t n = 0;
    for (const ClipRecord& c : clips_) {
        n += window_starts(s_, every_, c.frames).size();
    }
    return n;
}

std::int64_t ClipPipeline::sample_values() const {
    return static_cast<std::int64_t>(s_.sequence) * static_cast<std::int64_t>(cameras_.size()) * 3 * s_.width * s_.height;
}

// Buffers kept for reuse, at most: enough for the samples in flight of a typical configuration.
constexpr std::size_t kMaxFreeBuffers = 512;

// One row of a decoded frame (Y at full resolution, U and V at half; BT.601 limited range, as the encoder wrote them)
// to the sample's normalised R, G, B rows: colour conversion, the sample's jitter and normalisation in one pass.
// `y` points at the row's first pixel, `u` and `v` at its chroma row's start; `x0` is the crop's first column.
// The row goes in pieces: each pixel's chroma first (a pixel pair shares it), then the arithmetic over plain arrays,
// which the compiler vectorises (the shared chroma index alone kept it from that), on the widest vectors the CPU has
// (built without FMA contraction: every clone gives the bits of the plain one).
__attribute__((target_clones("avx512f", "avx2", "default")))
void yuv_row_to_sample(const std::uint8_t* y, const std::uint8_t* u, const std::uint8_t* v, int x0, int width,
                       const Jitter& j, float* r_out, float* g_out, float* b_out) {
    const float scale = j.gain / 255.0f / kPixelStd, shift = (j.offset - kPixelMean) / kPixelStd;
    constexpr int kPiece = 256;
    float cb[kPiece], cr[kPiece];
    for (int start = 0; start < width; start += kPiece) {
        const int n = std::min(kPiece, width - start);
        for (int i = 0; i < n; ++i) {
            const int c = (start + i + x0) / 2;
            cb[i] = static_cast<float>(u[c]) - 128.0f;
            cr[i] = static_cast<float>(v[c]) - 128.0f;
        }
        const std::uint8_t* luma_in = y + start;
        float* r_row = r_out + start;
        float* g_row = g_out + start;
        float* b_row = b_out + start;
        for (int i = 0; i < n; ++i) {
            const float luma = 1.164f * (static_cast<float>(luma_in[i]) - 16.0f);
            const float r = std::min(std::max(luma + 1.596f * cr[i], 0.0f), 255.0f);
            const float g = std::min(std::max(luma - 0.392f * cb[i] - 0.813f * cr[i], 0.0f), 255.0f);
            const float b = std::min(std::max(luma + 2.017f * cb[i], 0.0f), 255.0f);
            r_row[i] = r * scale + shift;
            g_row[i] = g * scale + shift;
            b_row[i] = b * scale + shift;
        }
    }
}

ClipPipeline::Decoded ClipPipeline::decode_unit(const Unit& unit, std::uint64_t epoch) const {
    const ClipRecord& clip = clips_[static_cast<std::size_t>(unit.clip)];
    Decoded out;
    out.clip = unit.clip;
    const std::string shard = dir_ + "/" + clip.shard;
    std::string camera_at_fault;
    try {
        const std::vector<int> all_starts = window_starts(s_, every_, clip.frames);
        const std::vector<int> starts(all_starts.begin() + unit.first_window, all_starts.begin() + unit.end_window);
        const int span = (s_.sequence - 1) * s_.stride;
        std::vector<bool> label_frames(static_cast<std::size_t>(clip.frames), false);
        for (const int start : starts) {
            label_frames[static_cast<std::size_t>(start + span)] = true;
        }
        const ClipLabels labels = decode_labels(read_range(shard, clip.labels_offset, clip.labels_bytes),
                                                clip.shard + ": " + clip.clip + ".labels", &label_frames);
        if (static_cast<int>(labels.frames.size()) != clip.frames) {
            throw IoError("the labels hold " + std::to_string(labels.frames.size()) + " frames, the manifest " +
                          std::to_string(clip.frames));
        }
        // Decode a little larger when cropping, so that the crop keeps the training resolution.
        const int pad_x = s_.augment ? (s_.width / 8) & ~1 : 0, pad_y = s_.augment ? (s_.height / 8) & ~1 : 0;
        const int dw = s_.width + pad_x, dh = s_.height + pad_y;
        std::vector<Jitter> jitter;
        out.samples.resize(starts.size());
        for (std::size_t w = 0; w < starts.size(); ++w) {
            ClipSample& sample = out.samples[w];
            sample.clip = clip.clip;
            sample.first_frame = starts[w];
            sample.kind = clip.kind;
            sample.labels = labels.frames[static_cast<std::size_t>(starts[w] + span)];
            sample.grid = labels.grid;
            sample.pixels = take_buffer();
            jitter.push_back(draw_jitter(s_, pad_x, pad_y, s_.seed ^ (epoch * 0x9E3779B97F4A7C15ULL) ^
                                                             (clip.seed + static_cast<std::uint64_t>(starts[w]))));
        }
        std::vector<int> wanted;
        for (const int start : starts) {
            for (int k = 0; k < s_.sequence; ++k) {
                wanted.push_back(start + k * s_.stride);
            }
        }
        std::sort(wanted.begin(), wanted.end());
        wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
        const std::size_t plane = static_cast<std::size_t>(s_.width) * s_.height;
        const std::size_t decoded_plane = static_cast<std::size_t>(dw) * dh;
        const int chroma_width = (dw + 1) / 2;
        const std::size_t chroma_plane = static_cast<std::size_t>(chroma_width) * ((dh + 1) / 2);
        for (std::size_t c = 0; c < cameras_.size(); ++c) {
            const std::string camera = geometry::rig_camera_names()[static_cast<std::size_t>(cameras_[c])];
            camera_at_fault = camera;
            const auto stream = std::find_if(clip.streams.begin(), clip.streams.end(),
                                             [&](const StreamRecord& st) { return st.camera == camera; });
            if (stream == clip.streams.end()) {
                throw IoError("the camera stream is missing from the store");
            }
            const std::string mp4 = read_range(shard, stream->offset, stream->bytes);
            VideoDecoder decoder(mp4, clip.shard + ": " + clip.clip + "." + camera + ".mp4");
            if (decoder.info().frames != clip.frames) {
                throw IoError("the stream holds " + std::to_string(decoder.info().frames) + " frames, the labels " +
                              std::to_string(clip.frames) + " (a timestamp gap or a truncated stream)");
            }
            decoder.read(wanted, dw, dh, [&](int frame, std::span<const std::uint8_t> yuv) {
                for (std::size_t w = 0; w < starts.size(); ++w) {
                    const int k = (frame - starts[w]) / s_.stride;
                    if (frame < starts[w] || (frame - starts[w]) % s_.stride || k >= s_.sequence) {
                        continue;
                    }
                    const Jitter& j = jitter[w];
                    float* dst = out.samples[w].pixels.data() + (static_cast<std::size_t>(k) * cameras_.size() + c) * 3 * plane;
                    for (int y = 0; y < s_.height; ++y) {
                        const std::size_t at = static_cast<std::size_t>(y + j.crop_y) * dw + j.crop_x;
                        const std::size_t chroma_row = static_cast<std::size_t>((y + j.crop_y) / 2) * chroma_width;
                        const std::size_t row = static_cast<std::size_t>(y) * s_.width;
                        yuv_row_to_sample(yuv.data() + at, yuv.data() + decoded_plane + chroma_row,
                                          yuv.data() + decoded_plane + chroma_plane + chroma_row, j.crop_x, s_.width,
                                          j, dst + row, dst + plane + row, dst + 2 * plane + row);
                    }
                }
            }, VideoDecoder::Planes::Yuv420);
            out.frames_decoded += decoder.frames_decoded();
        }
        if (s_.bf16) {
            for (ClipSample& sample : out.samples) {
                to_bf16(sample);
            }
        }
    } catch (const IoError& error) {
        if (s_.strict) {
            throw IoError("shard " + clip.shard + ", clip " + clip.clip +
                          (camera_at_fault.empty() ? "" : ", camera " + camera_at_fault) + ": " + error.what() +
                          " (without --strict such a clip is skipped and counted)");
        }
        out.samples.clear();
        out.skipped = SkippedClip{clip.shard, clip.clip, camera_at_fault, error.what()};
    }
    return out;
}

void ClipPipeline::start_epoch(std::uint64_t epoch) {
    State& st = *state_;
    st.pool.reset();
    st.epoch = epoch;
    std::vector<int> clip_order(clips_.size());
    for (std::size_t i = 0; i < clips_.size(); ++i) {
        clip_order[i] = static_cast<int>(i);
    }
    SplitMix64 random(s_.seed * 0xA24BAED4963EE407ULL + epoch);
    if (s_.shuffle_buffer > 1) {
        for (std::size_t i = clip_order.size(); i > 1; --i) {  // Fisher-Yates
            std::swap(clip_order[i - 1], clip_order[random.below(i)]);
        }
    }
    // A clip's windows in units of one keyframe interval of the timeline: a unit's memory stays bounded, and its
    // decoders seek once.
    st.order.clear();
    for (const int c : clip_order) {
        const ClipRecord& clip = clips_[static_cast<std::size_t>(c)];
        const std::vector<int> starts = window_starts(s_, every_, clip.frames);
        const int group = std::max(1, clip.keyframe_interval);
        for (std::size_t w = 0; w < starts.size();) {
            std::size_t end = w + 1;
            while (end < starts.size() && starts[end] / group == starts[w] / group) {
                ++end;
            }
            st.order.push_back({c, static_cast<int>(w), static_cast<int>(end)});
            w = end;
        }
    }
    st.random = SplitMix64(random.next());
    st.buffer.clear();
    st.bad_clips.clear();
    st.drained = false;
    const int threads = s_.threads > 0 ? s_.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    st.pool = std::make_unique<OrderedPool<Decoded>>(
        static_cast<int>(st.order.size()), threads, threads * s_.prefetch_clips,
        [this, epoch](int i) { return decode_unit(state_->order[static_cast<std::size_t>(i)], epoch); });
}

// Moves decoded clips into the shuffle buffer until it holds shuffle_buffer samples or the epoch's clips are all in.
bool ClipPipeline::refill() {
    State& st = *state_;
    Decoded decoded;
    while (!st.drained && st.buffer.size() < static_cast<std::size_t>(s_.shuffle_buffer)) {
        if (!st.pool->next(decoded)) {
            st.drained = true;
            break;
        }
        frames_decoded_ += decoded.frames_decoded;
        if (decoded.skipped) {
            st.bad_clips.insert(decoded.clip);  // its later units are dropped too; one entry per clip
            if (skipped_.empty() || skipped_.back().clip != decoded.skipped->clip) {
                skipped_.push_back(*decoded.skipped);
            }
        }
        if (st.bad_clips.count(decoded.clip)) {
            continue;
        }
        for (ClipSample& sample : decoded.samples) {
            st.buffer.push_back(std::move(sample));
        }
    }
    return !st.buffer.empty();
}

std::vector<float> ClipPipeline::take_buffer() const {
    {
        std::lock_guard lock(buffers_mutex_);
        if (!free_buffers_.empty()) {
            std::vector<float> buffer = std::move(free_buffers_.back());
            free_buffers_.pop_back();
            return buffer;
        }
    }
    return std::vector<float>(static_cast<std::size_t>(sample_values()));
}

bool ClipPipeline::next(ClipSample& sample) {
    State& st = *state_;
    // The caller is done with the sample it passes in: its buffer serves a later sample (memory touched once).
    if (sample.pixels.size() == static_cast<std::size_t>(sample_values())) {
        std::lock_guard lock(buffers_mutex_);
        if (free_buffers_.size() < kMaxFreeBuffers) {
            free_buffers_.push_back(std::move(sample.pixels));
        }
        sample.pixels = {};
    }
    if (!st.pool) {
        start_epoch(0);
    }
    if (!refill()) {
        return false;
    }
    // One process of a shuffle buffer: a seeded pick among the buffered samples (the first when not shuffling).
    const std::size_t pick = s_.shuffle_buffer > 1 ? st.random.below(st.buffer.size()) : 0;
    sample = std::move(st.buffer[pick]);
    if (s_.shuffle_buffer > 1) {
        st.buffer[pick] = std::move(st.buffer.back());
        st.buffer.pop_back();
    } else {
        st.buffer.erase(st.buffer.begin());
    }
    return true;
}

namespace {

int parse_count(const std::string& key, const std::string& value) {
    std::size_t used = 0;
    long long n = -1;
    try {
        n = std::stoll(value, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != value.size() || n < 0 || n > 1000000) {
        throw UsageError("clips option " + key + "=" + value + ": expected a whole number 0..1000000");
    }
    return static_cast<int>(n);
}

bool parse_flag(const std::string& key, const std::string& value) {
    if (value != "0" && value != "1") {
        throw UsageError("clips option " + key + "=" + value + ": expected 0 or 1");
    }
    return value == "1";
}

}  // namespace

void parse_size(const std::string& text, int& width, int& height) {
    const std::size_t x = text.find('x');
    if (x == std::string::npos) {
        throw UsageError("size '" + text + "': expected WIDTHxHEIGHT, e.g. 160x120");
    }
    width = parse_count("size", text.substr(0, x));
    height = parse_count("size", text.substr(x + 1));
}

ClipSource parse_clip_source(const std::string& spec) {
    ClipSource source;
    std::size_t at = spec.find(',');
    source.dir = spec.substr(0, at);
    if (source.dir.empty()) {
        throw UsageError("--data clips:DIR[,KEY=VALUE...] needs the clip store's directory (made by dojo data synth)");
    }
    ClipSampling& s = source.sampling;
    while (at != std::string::npos) {
        const std::size_t end = spec.find(',', at + 1);
        const std::string term = spec.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
        at = end;
        const std::size_t eq = term.find('=');
        const std::string key = term.substr(0, eq), value = eq == std::string::npos ? "" : term.substr(eq + 1);
        if (key == "cameras") {
            s.cameras.clear();
            for (std::size_t from = 0; from <= value.size();) {
                const std::size_t plus = std::min(value.find('+', from), value.size());
                s.cameras.push_back(value.substr(from, plus - from));
                from = plus + 1;
            }
        } else if (key == "size") {
            parse_size(value, s.width, s.height);
        } else if (key == "sequence") {
            s.sequence = parse_count(key, value);
        } else if (key == "stride") {
            s.stride = parse_count(key, value);
        } else if (key == "every") {
            s.every = parse_count(key, value);
        } else if (key == "threads") {
            s.threads = parse_count(key, value);
        } else if (key == "seed") {
            s.seed = static_cast<std::uint64_t>(parse_count(key, value));
        } else if (key == "augment") {
            s.augment = parse_flag(key, value);
        } else if (key == "strict") {
            s.strict = parse_flag(key, value);
        } else if (key == "target") {
            if (value != "scene" && value != "occupancy") {
                throw UsageError("clips option target=" + value + ": expected scene or occupancy");
            }
            s.target = value == "scene" ? ClipSampling::Target::SceneKind : ClipSampling::Target::Occupancy;
        } else if (key == "grid") {
            const std::size_t x1 = value.find('x'), x2 = value.find('x', x1 == std::string::npos ? x1 : x1 + 1);
            if (x1 == std::string::npos || x2 == std::string::npos) {
                throw UsageError("clips option grid=" + value + ": expected XxYxZ cells, e.g. 40x40x4");
            }
            s.occupancy_grid = {parse_count(key, value.substr(0, x1)), parse_count(key, value.substr(x1 + 1, x2 - x1 - 1)),
                                parse_count(key, value.substr(x2 + 1))};
            if (std::min({s.occupancy_grid[0], s.occupancy_grid[1], s.occupancy_grid[2]}) < 1) {
                throw UsageError("clips option grid=" + value + ": cells must be at least 1 each way");
            }
        } else {
            try {
                s.filter.set(term);
            } catch (const UsageError& error) {
                throw UsageError(std::string(error.what()) + "; or a sampling option: cameras=NAME+NAME, size=WxH, "
                                 "sequence=, stride=, every=, augment=0|1, threads=, seed=, strict=0|1, "
                                 "target=scene|occupancy, grid=XxYxZ");
            }
        }
    }
    s.validate();
    return source;
}

namespace {

// The pooled grid's cells: the requested ones, or a fifth of the store's across and half of its heights.
std::array<int, 3> pooled_cells(const ClipSampling& s, const OccupancyGrid& grid) {
    const int n = grid.cells_xy();
    std::array<int, 3> cells = s.occupancy_grid;
    if (cells == std::array<int, 3>{}) {
        cells = {std::max(1, n / 5), std::max(1, n / 5), std::max(1, grid.heights / 2)};
    }
    if (cells[0] < 1 || cells[1] < 1 || cells[2] < 1 || n % cells[0] || n % cells[1] || grid.heights % cells[2]) {
        throw UsageError("grid=" + std::to_string(cells[0]) + "x" + std::to_string(cells[1]) + "x" +
                         std::to_string(cells[2]) + " does not divide the store's occupancy grid of " +
                         std::to_string(n) + "x" + std::to_string(n) + "x" + std::to_string(grid.heights) + " cells");
    }
    return cells;
}

// Appends `sample`'s occupancy pooled to `cells` (z-major, then y, then x): 1 where any voxel of a cell is occupied.
void append_pooled(const ClipSample& sample, const std::array<int, 3>& cells, std::vector<std::uint32_t>& labels) {
    const int n = sample.grid.cells_xy();
    const int fx = n / cells[0], fy = n / cells[1], fz = sample.grid.heights / cells[2];
    const std::size_t at = labels.size();
    labels.resize(at + static_cast<std::size_t>(cells[0]) * cells[1] * cells[2], 0);
    for (int z = 0; z < sample.grid.heights; ++z) {
        for (int y = 0; y < n; ++y) {
            for (int x = 0; x < n; ++x) {
                if (sample.labels.occupancy[(static_cast<std::size_t>(z) * n + y) * n + x] != 0) {
                    labels[at + (static_cast<std::size_t>(z / fz) * cells[1] + y / fy) * cells[0] + x / fx] = 1;
                }
            }
        }
    }
}

}  // namespace

Dataset load_clip_dataset(const std::string& dir, ClipSampling sampling, const std::string& split,
                          std::vector<SkippedClip>& skipped,
                          const std::function<void(std::size_t, std::size_t)>& progress) {
    sampling.filter.split = split;
    sampling.shuffle_buffer = 1;  // the trainer orders the samples itself
    sampling.bf16 = false;
    ClipPipeline pipeline(dir, sampling);
    const double bytes = static_cast<double>(pipeline.windows()) * static_cast<double>(pipeline.sample_values()) * 4;
    const double physical = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
    if (bytes > physical / 2) {
        throw UsageError("clips:" + dir + " (" + split + "): " + std::to_string(pipeline.windows()) + " samples of " +
                         std::to_string(pipeline.sample_values()) + " values would take " +
                         std::to_string(std::llround(bytes / 1e9)) + " GB, more than half of this machine's memory; "
                         "select fewer clips (limit=, scene=), fewer cameras, a smaller size or a larger every=");
    }
    Dataset dataset;
    dataset.name = "clips:" + dir + " (" + split + ")";
    dataset.sample_shape = ir::Shape{static_cast<std::int64_t>(sampling.sequence) * static_cast<std::int64_t>(pipeline.camera_indices().size()) * 3,
                                     sampling.height, sampling.width};
    const bool occupancy = sampling.target == ClipSampling::Target::Occupancy;
    dataset.classes = occupancy ? 2 : kSceneKinds;
    dataset.binary = occupancy;
    dataset.samples.reserve(pipeline.windows() * static_cast<std::size_t>(pipeline.sample_values()));
    ClipSample sample;
    while (pipeline.next(sample)) {
        dataset.samples.insert(dataset.samples.end(), sample.pixels.begin(), sample.pixels.end());
        if (occupancy) {
            const std::array<int, 3> cells = pooled_cells(sampling, sample.grid);
            dataset.labels_per_sample = static_cast<std::size_t>(cells[0]) * cells[1] * cells[2];
            append_pooled(sample, cells, dataset.labels);
        } else {
            dataset.labels.push_back(static_cast<std::uint32_t>(sample.kind));
        }
        if (progress) {
            progress(dataset.size(), pipeline.windows());
        }
    }
    skipped.insert(skipped.end(), pipeline.skipped().begin(), pipeline.skipped().end());
    return dataset;
}

}  // namespace dojo::data::fleet
