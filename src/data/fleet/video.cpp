// MP4 clips in memory: encoding with libx264/libx265 and decoding with seeks through the keyframe index (video.h).
#include "dojo/data/fleet/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::data::fleet {
namespace {

constexpr int kIoBufferBytes = 1 << 16;

std::string av_message(int code) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(code, text, sizeof text);
    return text;
}

// FFmpeg logs its own complaints about corrupt input on stderr; ours name the clip instead.
void quiet_ffmpeg() {
    static std::once_flag once;
    std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}


}  // namespace

Codec parse_codec(const std::string& name) {
    if (name == "h264") {
        return Codec::H264;
    }
    if (name == "hevc") {
        return Codec::Hevc;
    }
    throw UsageError("unknown codec '" + name + "'; expected h264 (libx264) or hevc (libx265)");
}

void EncoderOptions::validate() const {
    if (width < 16 || height < 16 || width > 4096 || height > 4096 || width % 2 || height % 2) {
        throw UsageError("video size " + std::to_string(width) + "x" + std::to_string(height) +
                         ": width and height must be even, 16..4096");
    }
    if (fps < 1 || fps > 240) {
        throw UsageError("frame rate " + std::to_string(fps) + ": expected 1..240 frames per second");
    }
    if (keyframe_interval < 1 || keyframe_interval > 1000) {
        throw UsageError("keyframe interval " + std::to_string(keyframe_interval) + ": expected 1..1000 frames");
    }
    if (crf < 0 || crf > 51) {
        throw UsageError("crf " + std::to_string(crf) + ": expected 0..51");
    }
    static const std::vector<std::string> kPresets{"ultrafast", "superfast", "veryfast", "faster", "fast",
                                                   "medium",    "slow",      "slower",   "veryslow"};
    if (std::find(kPresets.begin(), kPresets.end(), preset) == kPresets.end()) {
        throw UsageError("encoder preset '" + preset +
                         "': expected ultrafast, superfast, veryfast, faster, fast, medium, slow, slower or veryslow");
    }
}

// ---- encoding ------------------------------------------------------------------------------------------------

struct VideoEncoder::Impl {
    EncoderOptions options;
    std::string out;       // the MP4 file being written
    std::int64_t pos = 0;  // the muxer's write position in `out`
    AVFormatContext* format = nullptr;
    AVIOContext* io = nullptr;
    AVCodecContext* codec = nullptr;
    AVStream* stream = nullptr;
    AVFrame* frame = nullptr;
    AVFrame* rgb = nullptr;  // the caller's frame, copied: swscale's SIMD reads past the end of a plain buffer
    AVPacket* packet = nullptr;
    SwsContext* to_yuv = nullptr;
    std::int64_t next_pts = 0;
    bool finished = false;

    static int write(void* opaque, std::uint8_t* bytes, int size) {
        auto* self = static_cast<Impl*>(opaque);
        const auto end = static_cast<std::size_t>(self->pos) + static_cast<std::size_t>(size);
        if (end > self->out.size()) {
            self->out.resize(end);
        }
        std::memcpy(self->out.data() + self->pos, bytes, static_cast<std::size_t>(size));
        self->pos += size;
        return size;
    }
    static std::int64_t seek(void* opaque, std::int64_t offset, int whence) {
        auto* self = static_cast<Impl*>(opaque);
        if (whence & AVSEEK_SIZE) {
            return static_cast<std::int64_t>(self->out.size());
        }
        whence &= ~AVSEEK_FORCE;
        const std::int64_t base = whence == SEEK_CUR ? self->pos : whence == SEEK_END ? std::int64_t(self->out.size()) : 0;
        if (base + offset < 0) {
            return -1;
        }
        self->pos = base + offset;
        return self->pos;
    }

    ~Impl() {
        avcodec_free_context(&codec);
        if (format) {
            avformat_free_context(format);
        }
        if (io) {
            av_freep(&io->buffer);
            avio_context_free(&io);
        }
        av_frame_free(&frame);
        av_frame_free(&rgb);
        av_packet_free(&packet);
        sws_freeContext(to_yuv);
    }

    void check(int code, const char* what) const {
        if (code < 0) {
            throw IoError(std::string("video encoder: ") + what + ": " + av_message(code));
        }
    }

    void drain(std::vector<std::int32_t>& keyframes) {
        while (true) {
            const int got = avcodec_receive_packet(codec, packet);
            if (got == AVERROR(EAGAIN) || got == AVERROR_EOF) {
                return;
            }
            check(got, "encoding a frame");
            if (packet->flags & AV_PKT_FLAG_KEY) {
                keyframes.push_back(static_cast<std::int32_t>(packet->pts));
            }
            av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
            packet->stream_index = stream->index;
            check(av_interleaved_write_frame(format, packet), "writing a packet");
        }
    }
};

VideoEncoder::VideoEncoder(const EncoderOptions& options) : impl_(std::make_unique<Impl>()) {
    options.validate();
    quiet_ffmpeg();
    Impl& m = *impl_;
    m.options = options;
    const char* encoder_name = options.codec == Codec::H264 ? "libx264" : "libx265";
    const AVCodec* encoder = avcodec_find_encoder_by_name(encoder_name);
    if (!encoder) {
        throw IoError(std::string("this FFmpeg has no ") + encoder_name + " encoder (Debian's libavcodec59 has both)");
    }
    m.check(avformat_alloc_output_context2(&m.format, nullptr, "mp4", nullptr), "creating an MP4 muxer");
    auto* buffer = static_cast<std::uint8_t*>(av_malloc(kIoBufferBytes));
    m.io = avio_alloc_context(buffer, kIoBufferBytes, 1, &m, nullptr, &Impl::write, &Impl::seek);
    DOJO_CHECK(m.io != nullptr);
    m.format->pb = m.io;
    m.format->flags |= AVFMT_FLAG_CUSTOM_IO;

    m.codec = avcodec_alloc_context3(encoder);
    m.codec->width = options.width;
    m.codec->height = options.height;
    m.codec->pix_fmt = AV_PIX_FMT_YUV420P;
    m.codec->time_base = AVRational{1, options.fps};
    m.codec->framerate = AVRational{options.fps, 1};
    m.codec->gop_size = options.keyframe_interval;
    m.codec->keyint_min = options.keyframe_interval;
    m.codec->max_b_frames = 0;
    m.codec->thread_count = 1;  // clips are encoded side by side, one thread each
    if (m.format->oformat->flags & AVFMT_GLOBALHEADER) {
        m.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    AVDictionary* settings = nullptr;
    av_dict_set(&settings, "preset", options.preset.c_str(), 0);
    av_dict_set(&settings, "crf", std::to_string(options.crf).c_str(), 0);
    if (options.codec == Codec::H264) {
        // x264's AVX-512 kernels made the stream differ from run to run when encoders ran in two threads (3 of 8
        // runs of one 2-thread synth gave other bytes); up to AVX2 every run gives the bytes of a 1-thread run.
        av_dict_set(&settings, "x264-params",
                    "scenecut=0:bframes=0:asm=MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,LZCNT,AVX,FMA3,BMI1,BMI2,AVX2", 0);
    } else {
        av_dict_set(&settings, "x265-params", "scenecut=0:bframes=0:log-level=error:pools=1:frame-threads=1", 0);
    }
    const int opened = avcodec_open2(m.codec, encoder, &settings);
    av_dict_free(&settings);
    if (opened < 0) {
        throw UsageError(std::string("cannot open ") + encoder_name + " with preset '" + options.preset +
                         "': " + av_message(opened) + " (presets: ultrafast .. veryslow)");
    }
    m.stream = avformat_new_stream(m.format, nullptr);
    m.check(avcodec_parameters_from_context(m.stream->codecpar, m.codec), "stream parameters");
    m.stream->time_base = m.codec->time_base;
    m.stream->avg_frame_rate = m.codec->framerate;
    m.check(avformat_write_header(m.format, nullptr), "MP4 header");

    m.frame = av_frame_alloc();
    m.frame->format = AV_PIX_FMT_YUV420P;
    m.frame->width = options.width;
    m.frame->height = options.height;
    m.check(av_frame_get_buffer(m.frame, 0), "frame buffer");
    m.rgb = av_frame_alloc();
    m.rgb->format = AV_PIX_FMT_RGB24;
    m.rgb->width = options.width;
    m.rgb->height = options.height;
    m.check(av_frame_get_buffer(m.rgb, 0), "frame buffer");
    m.packet = av_packet_alloc();
    m.to_yuv = sws_getContext(options.width, options.height, AV_PIX_FMT_RGB24, options.width, options.height,
                              AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr, nullptr, nullptr);
    DOJO_CHECK(m.to_yuv != nullptr);
}

VideoEncoder::~VideoEncoder() = default;

void VideoEncoder::add_frame(std::span<const std::uint8_t> rgb) {
    Impl& m = *impl_;
    DOJO_CHECK(!m.finished);
    DOJO_CHECK(rgb.size() == static_cast<std::size_t>(m.options.width) * m.options.height * 3);
    m.check(av_frame_make_writable(m.frame), "frame buffer");
    const auto row_bytes = static_cast<std::size_t>(m.options.width) * 3;
    for (int y = 0; y < m.options.height; ++y) {
        std::memcpy(m.rgb->data[0] + static_cast<std::ptrdiff_t>(y) * m.rgb->linesize[0], rgb.data() + y * row_bytes, row_bytes);
    }
    sws_scale(m.to_yuv, m.rgb->data, m.rgb->linesize, 0, m.options.height, m.frame->data, m.frame->linesize);
    m.frame->pts = m.next_pts++;
    m.check(avcodec_send_frame(m.codec, m.frame), "encoding a frame");
    m.drain(keyframes_);
}

std::string VideoEncoder::finish() {
    Impl& m = *impl_;
    DOJO_CHECK(!m.finished);
    m.finished = true;
    m.check(avcodec_send_frame(m.codec, nullptr), "flushing the encoder");
    m.drain(keyframes_);
    m.check(av_write_trailer(m.format), "MP4 trailer");
    avio_flush(m.io);
    return std::move(m.out);
}

// ---- decoding ------------------------------------------------------------------------------------------------

struct VideoDecoder::Impl {
    std::string_view data;
    std::int64_t pos = 0;
    AVFormatContext* format = nullptr;
    AVIOContext* io = nullptr;
    AVCodecContext* codec = nullptr;
    AVStream* stream = nullptr;
    AVPacket* packet = nullptr;
    AVFrame* frame = nullptr;
    SwsContext* to_planes = nullptr;
    std::vector<std::uint8_t> scaled;  // the last frame read() scaled: three planes (RGB or YUV)
    std::vector<int> keyframes;  // ascending frame numbers, from the container's index
    int next_frame = -1;         // the frame the decoder produces next; -1: unknown (before the first seek)
    bool input_done = false;     // the demuxer is exhausted and the decoder has been told

    static int read(void* opaque, std::uint8_t* bytes, int size) {
        auto* self = static_cast<Impl*>(opaque);
        const std::int64_t left = static_cast<std::int64_t>(self->data.size()) - self->pos;
        if (left <= 0) {
            return AVERROR_EOF;
        }
        const auto n = static_cast<int>(std::min<std::int64_t>(left, size));
        std::memcpy(bytes, self->data.data() + self->pos, static_cast<std::size_t>(n));
        self->pos += n;
        return n;
    }
    static std::int64_t seek(void* opaque, std::int64_t offset, int whence) {
        auto* self = static_cast<Impl*>(opaque);
        const auto size = static_cast<std::int64_t>(self->data.size());
        if (whence & AVSEEK_SIZE) {
            return size;
        }
        whence &= ~AVSEEK_FORCE;
        const std::int64_t to = offset + (whence == SEEK_CUR ? self->pos : whence == SEEK_END ? size : 0);
        if (to < 0 || to > size) {
            return -1;
        }
        self->pos = to;
        return to;
    }

    ~Impl() {
        avcodec_free_context(&codec);
        avformat_close_input(&format);
        if (io) {
            av_freep(&io->buffer);
            avio_context_free(&io);
        }
        av_packet_free(&packet);
        av_frame_free(&frame);
        sws_freeContext(to_planes);
    }

    double fps() const { return av_q2d(stream->avg_frame_rate.num ? stream->avg_frame_rate : stream->r_frame_rate); }
    std::int64_t start() const { return stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time; }
    int frame_of(std::int64_t ts) const {
        return static_cast<int>(std::llround(static_cast<double>(ts - start()) * av_q2d(stream->time_base) * fps()));
    }
    std::int64_t ts_of(int frame_number) const {
        return start() + std::llround(frame_number / fps() / av_q2d(stream->time_base));
    }
};

VideoDecoder::VideoDecoder(std::string_view mp4, std::string name) : impl_(std::make_unique<Impl>()), name_(std::move(name)) {
    quiet_ffmpeg();
    Impl& m = *impl_;
    m.data = mp4;
    auto* buffer = static_cast<std::uint8_t*>(av_malloc(kIoBufferBytes));
    m.io = avio_alloc_context(buffer, kIoBufferBytes, 0, &m, &Impl::read, nullptr, &Impl::seek);
    DOJO_CHECK(m.io != nullptr);
    m.format = avformat_alloc_context();
    m.format->pb = m.io;
    m.format->flags |= AVFMT_FLAG_CUSTOM_IO;
    const auto fail = [&](const std::string& what, int code) {
        throw IoError(name_ + ": " + what + (code < 0 ? ": " + av_message(code) : std::string()));
    };
    if (const int code = avformat_open_input(&m.format, nullptr, nullptr, nullptr); code < 0) {
        fail("not a readable video file", code);
    }
    // No avformat_find_stream_info: it decodes frames to guess what an MP4's sample description already states,
    // and a clip is opened once per keyframe interval read.
    const AVCodec* decoder = nullptr;
    const int index = av_find_best_stream(m.format, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
    if (index < 0 || !decoder) {
        fail("holds no decodable video stream", index);
    }
    m.stream = m.format->streams[index];
    m.codec = avcodec_alloc_context3(decoder);
    avcodec_parameters_to_context(m.codec, m.stream->codecpar);
    m.codec->thread_count = 1;  // clips are decoded side by side, one thread each
    if (const int code = avcodec_open2(m.codec, decoder, nullptr); code < 0) {
        fail("cannot open the decoder", code);
    }
    if (m.fps() <= 0 || m.codec->width <= 0 || m.codec->height <= 0) {
        fail("has no frame rate or frame size", 0);
    }
    for (int i = 0; i < avformat_index_get_entries_count(m.stream); ++i) {
        const AVIndexEntry* entry = avformat_index_get_entry(m.stream, i);
        if (entry->flags & AVINDEX_KEYFRAME) {
            m.keyframes.push_back(m.frame_of(entry->timestamp));
        }
    }
    std::sort(m.keyframes.begin(), m.keyframes.end());
    info_.width = m.codec->width;
    info_.height = m.codec->height;
    info_.fps = m.fps();
    info_.frames = static_cast<int>(m.stream->nb_frames > 0 ? m.stream->nb_frames
                                                            : avformat_index_get_entries_count(m.stream));
    info_.codec = decoder->name;
    m.packet = av_packet_alloc();
    m.frame = av_frame_alloc();
}

VideoDecoder::~VideoDecoder() = default;

void VideoDecoder::read(std::span<const int> frames, int out_width, int out_height,
                        const std::function<void(int, std::span<const std::uint8_t>)>& sink, Planes planes_wanted) {
    Impl& m = *impl_;
    DOJO_CHECK(out_width > 0 && out_height > 0);
    m.scaled.resize(static_cast<std::size_t>(out_width) * out_height * 3);
    decode(frames, [&](int number) {
        const bool rgb = planes_wanted == Planes::Rgb;
        // Area averaging: each output pixel the mean of the source pixels it covers (a box filter as wide as the
        // scale, so no aliasing when shrinking a camera frame to a training size), in two thirds of the time of
        // swscale's bilinear filter, whose triangle spans twice as many source pixels.
        m.to_planes = sws_getCachedContext(m.to_planes, m.frame->width, m.frame->height,
                                        static_cast<AVPixelFormat>(m.frame->format), out_width, out_height,
                                        rgb ? AV_PIX_FMT_GBRP : AV_PIX_FMT_YUV420P, SWS_AREA, nullptr, nullptr,
                                        nullptr);
        DOJO_CHECK(m.to_planes != nullptr);
        const std::size_t plane = static_cast<std::size_t>(out_width) * out_height;
        const int chroma_width = (out_width + 1) / 2;
        const std::size_t chroma_plane = static_cast<std::size_t>(chroma_width) * ((out_height + 1) / 2);
        // GBRP's planes are G, B, R: pointed at the R, G, B planes of the output.
        std::uint8_t* planes[3] = {m.scaled.data() + plane, m.scaled.data() + 2 * plane, m.scaled.data()};
        int strides[3] = {out_width, out_width, out_width};
        if (!rgb) {
            planes[0] = m.scaled.data(), planes[1] = m.scaled.data() + plane, planes[2] = m.scaled.data() + plane + chroma_plane;
            strides[1] = strides[2] = chroma_width;
        }
        sws_scale(m.to_planes, m.frame->data, m.frame->linesize, 0, m.frame->height, planes, strides);
        sink(number, m.scaled);
    });
}

void VideoDecoder::read_native(std::span<const int> frames) {
    decode(frames, [](int) {});
}

void VideoDecoder::decode(std::span<const int> frames, const std::function<void(int)>& on_frame) {
    Impl& m = *impl_;
    const auto missing = [&](int wanted, const std::string& why) {
        throw IoError(name_ + ": frame " + std::to_string(wanted) + " of " + std::to_string(info_.frames) +
                      " cannot be decoded (" + why + "); the stream is truncated or corrupt");
    };
    for (const int wanted : frames) {
        DOJO_CHECK(wanted >= 0);
        if (wanted >= info_.frames) {
            missing(wanted, "beyond the last frame");
        }
        // The keyframe at or before `wanted`: seek there unless the decoder is already between it and `wanted`.
        const auto after = std::upper_bound(m.keyframes.begin(), m.keyframes.end(), wanted);
        const int keyframe = after == m.keyframes.begin() ? 0 : *(after - 1);
        if (m.next_frame < 0 || wanted < m.next_frame || keyframe > m.next_frame) {
            if (av_seek_frame(m.format, m.stream->index, m.ts_of(keyframe), AVSEEK_FLAG_BACKWARD) < 0) {
                missing(wanted, "seek failed");
            }
            avcodec_flush_buffers(m.codec);
            m.input_done = false;
            m.next_frame = keyframe;
        }
        while (true) {
            const int got = avcodec_receive_frame(m.codec, m.frame);
            if (got == AVERROR_EOF) {
                missing(wanted, "the stream ends first");
            }
            if (got == AVERROR(EAGAIN)) {
                if (m.input_done) {
                    missing(wanted, "the decoder stalled");
                }
                const int read = av_read_frame(m.format, m.packet);
                if (read == AVERROR_EOF) {
                    m.input_done = true;
                    avcodec_send_packet(m.codec, nullptr);
                } else if (read < 0) {
                    missing(wanted, av_message(read));
                } else {
                    if (m.packet->stream_index == m.stream->index) {
                        avcodec_send_packet(m.codec, m.packet);  // a corrupt packet shows as a missing frame
                    }
                    av_packet_unref(m.packet);
                }
                continue;
            }
            if (got < 0) {
                missing(wanted, av_message(got));
            }
            ++frames_decoded_;
            const int number = m.frame_of(m.frame->best_effort_timestamp);
            m.next_frame = number + 1;
            if (number < wanted) {
                continue;
            }
            if (number > wanted) {
                missing(wanted, "the decoder skipped it");
            }
            on_frame(wanted);
            break;
        }
    }
}

}  // namespace dojo::data::fleet
