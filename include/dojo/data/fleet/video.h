/** \file
 * One camera's clip as an MP4 file in memory: H.264 (libx264) or HEVC (libx265) encoding of RGB frames, and
 * decoding of chosen frames back to RGB at any resolution, seeking through the container's keyframe index so that
 * reading frame k decodes at most one keyframe interval of frames (FFmpeg 5.1's libavformat, libavcodec,
 * libswscale).
 *
 * Frames are numbered from 0 at a constant integer rate; the encoder places a keyframe every keyframe_interval
 * frames exactly (scene-cut detection off), with no B-frames.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dojo::data::fleet {

enum class Codec : std::uint8_t { H264, Hevc };
/// "h264" or "hevc"; throws UsageError otherwise.
Codec parse_codec(const std::string& name);

struct EncoderOptions {
    int width = 640, height = 480;  ///< even, 16..4096
    int fps = 36;                   ///< 1..240
    int keyframe_interval = 36;     ///< frames, 1..1000
    Codec codec = Codec::H264;
    int crf = 23;                   ///< constant rate factor: 0 (lossless) .. 51; 23 is x264's default
    std::string preset = "superfast";  ///< x264/x265 speed preset; superfast keeps synth at real time on 2 cores
    /// Throws UsageError naming the bad field.
    void validate() const;
};

class VideoEncoder {
public:
    explicit VideoEncoder(const EncoderOptions& options);
    ~VideoEncoder();
    VideoEncoder(const VideoEncoder&) = delete;
    VideoEncoder& operator=(const VideoEncoder&) = delete;

    /// Encodes the next frame: height rows of width RGB pixels (3 bytes each).
    void add_frame(std::span<const std::uint8_t> rgb);
    /// Flushes the encoder and returns the MP4 file. The encoder is finished afterwards.
    std::string finish();
    /// Frame numbers of the keyframes written so far.
    const std::vector<std::int32_t>& keyframes() const { return keyframes_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::vector<std::int32_t> keyframes_;
};

struct VideoInfo {
    int width = 0, height = 0;
    int frames = 0;
    double fps = 0;
    std::string codec;  ///< FFmpeg's codec name: "h264", "hevc"
};

/// Decodes frames of an MP4 file held in memory (which must outlive the decoder). `name` identifies the stream in
/// errors ("shard-000.tar: clip-00003.main.mp4"). Throws IoError naming it when the file is not a readable video.
class VideoDecoder {
public:
    VideoDecoder(std::string_view mp4, std::string name);
    ~VideoDecoder();
    VideoDecoder(const VideoDecoder&) = delete;
    VideoDecoder& operator=(const VideoDecoder&) = delete;

    const VideoInfo& info() const { return info_; }

    /// The planes read() hands on: R, G, B; or Y at full resolution and U, V at half resolution in both directions
    /// ((width + 1) / 2 x (height + 1) / 2; BT.601, limited range, as the encoder wrote them), for a caller that
    /// converts colour itself on the way to its own format.
    enum class Planes : std::uint8_t { Rgb, Yuv420 };

    /// Decodes the frames numbered `frames` (ascending, each < info().frames), scales each to out_width x
    /// out_height (area averaging) and hands it to `sink(frame number, planes)` as three planes of out_height rows of
    /// out_width bytes. Seeks to
    /// the keyframe at or before the first wanted frame, and again whenever a wanted frame lies beyond the next
    /// keyframe. Throws IoError naming the stream if a wanted frame cannot be decoded (a corrupt or truncated stream).
    void read(std::span<const int> frames, int out_width, int out_height,
              const std::function<void(int, std::span<const std::uint8_t>)>& sink, Planes planes = Planes::Rgb);

    /// Decodes the frames numbered `frames` as read() does, and does nothing with them: the decode cost alone.
    void read_native(std::span<const int> frames);

    /// Frames decoded by read() so far, wanted or not: the cost of seeking.
    std::int64_t frames_decoded() const { return frames_decoded_; }

private:
    // Seeks and decodes; on_frame(number) is called with each wanted frame in impl_->frame.
    void decode(std::span<const int> frames, const std::function<void(int)>& on_frame);

    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string name_;
    VideoInfo info_;
    std::int64_t frames_decoded_ = 0;
};

}  // namespace dojo::data::fleet
