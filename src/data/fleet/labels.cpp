// The clip label format (labels.h): little-endian fields, run-length occupancy, zlib, CRC-32.
#include "dojo/data/fleet/labels.h"

#include <cstring>

#include <zlib.h>

#include "dojo/util/error.h"

namespace dojo::data::fleet {
namespace {

constexpr char kMagic[8] = {'D', 'O', 'J', 'O', 'L', 'B', 'L', '1'};
constexpr std::size_t kHeaderBytes = 8 + 4 + 8 + 8 + 4;
// Bounds a reader holds a file to before it allocates: far above what `dojo data synth` can make.
constexpr std::uint64_t kMaxPayloadBytes = std::uint64_t{1} << 32;
constexpr std::uint32_t kMaxFrames = 1000000, kMaxObjects = 100000, kMaxCameras = 64;

class Writer {
public:
    template <typename T>
    void put(T value) {
        char raw[sizeof(T)];
        std::memcpy(raw, &value, sizeof(T));  // x86-64 and aarch64 are little-endian, as the format is
        out.append(raw, sizeof(T));
    }
    void text(const std::string& s) {
        put(static_cast<std::uint16_t>(s.size()));
        out += s;
    }
    std::string out;
};

class Reader {
public:
    Reader(std::string_view bytes, const std::string& name) : bytes_(bytes), name_(name) {}
    template <typename T>
    T get() {
        need(sizeof(T));
        T value;
        std::memcpy(&value, bytes_.data() + at_, sizeof(T));
        at_ += sizeof(T);
        return value;
    }
    std::string text() {
        const auto n = get<std::uint16_t>();
        need(n);
        std::string s(bytes_.substr(at_, n));
        at_ += n;
        return s;
    }
    std::uint32_t count(std::uint32_t max, const char* what) {
        const auto n = get<std::uint32_t>();
        if (n > max) {
            fail(std::string("claims ") + std::to_string(n) + " " + what + " (at most " + std::to_string(max) + ")");
        }
        return n;
    }
    bool done() const { return at_ == bytes_.size(); }
    [[noreturn]] void fail(const std::string& why) const { throw IoError("labels " + name_ + ": " + why); }

private:
    void need(std::size_t n) const {
        if (n > bytes_.size() - at_) {
            fail("truncated payload");
        }
    }
    std::string_view bytes_;
    const std::string& name_;
    std::size_t at_ = 0;
};

void put_occupancy(Writer& w, const std::vector<std::uint8_t>& cells) {
    std::vector<std::pair<std::uint8_t, std::uint32_t>> runs;
    for (const std::uint8_t cell : cells) {
        if (!runs.empty() && runs.back().first == cell) {
            ++runs.back().second;
        } else {
            runs.emplace_back(cell, 1);
        }
    }
    w.put(static_cast<std::uint32_t>(runs.size()));
    for (const auto& [value, length] : runs) {
        w.put(value);
        w.put(length);
    }
}

// Reads a frame's runs, checking that they cover the grid; expands them into cells only when `expand`.
std::vector<std::uint8_t> get_occupancy(Reader& r, std::int64_t cells, bool expand) {
    std::vector<std::uint8_t> out;
    if (expand) {
        out.reserve(static_cast<std::size_t>(cells));
    }
    std::uint64_t covered = 0;
    const std::uint32_t runs = r.count(static_cast<std::uint32_t>(cells), "occupancy runs");
    for (std::uint32_t i = 0; i < runs; ++i) {
        const auto value = r.get<std::uint8_t>();
        const auto length = r.get<std::uint32_t>();
        if (value > kObjectClasses || length > static_cast<std::uint64_t>(cells) - covered) {
            r.fail("an occupancy run does not fit the grid (value " + std::to_string(value) + ", length " +
                   std::to_string(length) + ")");
        }
        covered += length;
        if (expand) {
            out.insert(out.end(), length, value);
        }
    }
    if (static_cast<std::int64_t>(covered) != cells) {
        r.fail("occupancy runs cover " + std::to_string(covered) + " of " + std::to_string(cells) + " cells");
    }
    return out;
}

std::string payload(const ClipLabels& labels) {
    Writer w;
    w.text(labels.clip);
    w.put(static_cast<std::uint8_t>(labels.kind));
    w.put(labels.seed);
    w.put(static_cast<std::uint32_t>(labels.fps));
    w.put(static_cast<std::uint32_t>(labels.width));
    w.put(static_cast<std::uint32_t>(labels.height));
    w.put(labels.grid.range_m);
    w.put(labels.grid.voxel_m);
    w.put(static_cast<std::uint32_t>(labels.grid.heights));
    w.put(static_cast<std::uint32_t>(labels.cameras.size()));
    for (const geometry::Camera& c : labels.cameras) {
        w.text(c.name);
        w.put(static_cast<std::uint32_t>(c.width));
        w.put(static_cast<std::uint32_t>(c.height));
        for (double v : {c.fx, c.fy, c.cx, c.cy, c.position.x, c.position.y, c.position.z, c.yaw_rad, c.pitch_rad}) {
            w.put(v);
        }
    }
    w.put(static_cast<std::uint32_t>(labels.frames.size()));
    for (const FrameLabels& f : labels.frames) {
        for (double v : {f.ego.x, f.ego.y, f.ego.yaw_rad, f.ego.speed_mps}) {
            w.put(v);
        }
        w.put(static_cast<std::uint32_t>(f.objects.size()));
        for (const ObjectState& o : f.objects) {
            w.put(o.id);
            w.put(static_cast<std::uint8_t>(o.cls));
            for (double v : {o.x, o.y, o.z, o.length, o.width, o.height, o.yaw_rad, o.vx, o.vy}) {
                w.put(static_cast<float>(v));
            }
        }
        put_occupancy(w, f.occupancy);
    }
    return std::move(w.out);
}

ClipLabels parse_payload(std::string_view bytes, const std::string& name, const std::vector<bool>* wanted) {
    Reader r(bytes, name);
    ClipLabels labels;
    labels.clip = r.text();
    const auto kind = r.get<std::uint8_t>();
    if (kind >= kSceneKinds) {
        r.fail("unknown scene kind " + std::to_string(kind));
    }
    labels.kind = static_cast<SceneKind>(kind);
    labels.seed = r.get<std::uint64_t>();
    labels.fps = static_cast<int>(r.count(1000, "frames per second"));
    labels.width = static_cast<int>(r.count(8192, "pixels of width"));
    labels.height = static_cast<int>(r.count(8192, "pixels of height"));
    labels.grid.range_m = r.get<double>();
    labels.grid.voxel_m = r.get<double>();
    labels.grid.heights = static_cast<int>(r.count(64, "grid heights"));
    try {
        labels.grid.validate();
    } catch (const UsageError& error) {
        r.fail(error.what());
    }
    labels.cameras.resize(r.count(kMaxCameras, "cameras"));
    for (geometry::Camera& c : labels.cameras) {
        c.name = r.text();
        c.width = static_cast<int>(r.count(8192, "pixels of width"));
        c.height = static_cast<int>(r.count(8192, "pixels of height"));
        for (double* v : {&c.fx, &c.fy, &c.cx, &c.cy, &c.position.x, &c.position.y, &c.position.z, &c.yaw_rad,
                          &c.pitch_rad}) {
            *v = r.get<double>();
        }
    }
    const std::uint32_t frames = r.count(kMaxFrames, "frames");
    for (std::uint32_t i = 0; i < frames; ++i) {
        FrameLabels f;
        for (double* v : {&f.ego.x, &f.ego.y, &f.ego.yaw_rad, &f.ego.speed_mps}) {
            *v = r.get<double>();
        }
        f.objects.resize(r.count(kMaxObjects, "objects"));
        for (ObjectState& o : f.objects) {
            o.id = r.get<std::uint32_t>();
            const auto cls = r.get<std::uint8_t>();
            if (cls >= kObjectClasses) {
                r.fail("unknown object class " + std::to_string(cls));
            }
            o.cls = static_cast<ObjectClass>(cls);
            for (double* v : {&o.x, &o.y, &o.z, &o.length, &o.width, &o.height, &o.yaw_rad, &o.vx, &o.vy}) {
                *v = r.get<float>();
            }
        }
        f.occupancy = get_occupancy(r, labels.grid.cells(), !wanted || (i < wanted->size() && (*wanted)[i]));
        labels.frames.push_back(std::move(f));
    }
    if (!r.done()) {
        r.fail("trailing bytes after the last frame");
    }
    return labels;
}

}  // namespace

std::string encode_labels(const ClipLabels& labels) {
    const std::string raw = payload(labels);
    uLongf stored = compressBound(static_cast<uLong>(raw.size()));
    std::string out(kHeaderBytes + stored, '\0');
    if (compress2(reinterpret_cast<Bytef*>(out.data() + kHeaderBytes), &stored,
                  reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6) != Z_OK) {
        throw IoError("labels " + labels.clip + ": compression failed");
    }
    out.resize(kHeaderBytes + stored);
    const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(out.data() + kHeaderBytes),
                                                      static_cast<uInt>(stored)));
    std::memcpy(out.data(), kMagic, 8);
    const std::uint32_t version = kLabelVersion;
    const std::uint64_t raw_bytes = raw.size(), stored_bytes = stored;
    std::memcpy(out.data() + 8, &version, 4);
    std::memcpy(out.data() + 12, &raw_bytes, 8);
    std::memcpy(out.data() + 20, &stored_bytes, 8);
    std::memcpy(out.data() + 28, &crc, 4);
    return out;
}

ClipLabels decode_labels(std::string_view bytes, const std::string& name, const std::vector<bool>* occupancy_frames) {
    if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, 8) != 0) {
        throw IoError("labels " + name + ": not a dojo labels file (no DOJOLBL1 header)");
    }
    std::uint32_t version = 0, crc = 0;
    std::uint64_t raw_bytes = 0, stored_bytes = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    std::memcpy(&raw_bytes, bytes.data() + 12, 8);
    std::memcpy(&stored_bytes, bytes.data() + 20, 8);
    std::memcpy(&crc, bytes.data() + 28, 4);
    if (version != kLabelVersion) {
        throw IoError("labels " + name + ": format version " + std::to_string(version) + "; this dojo reads version " +
                      std::to_string(kLabelVersion));
    }
    // zlib expands by at most 1032:1, so a larger claim is a lie that would only exhaust memory.
    if (stored_bytes != bytes.size() - kHeaderBytes || raw_bytes > kMaxPayloadBytes ||
        raw_bytes > stored_bytes * 1032 + 64) {
        throw IoError("labels " + name + ": the header claims " + std::to_string(stored_bytes) + " stored bytes, the file has " +
                      std::to_string(bytes.size() - kHeaderBytes) + " (truncated?)");
    }
    const auto actual = static_cast<std::uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + kHeaderBytes), static_cast<uInt>(stored_bytes)));
    if (actual != crc) {
        throw IoError("labels " + name + ": checksum mismatch (corrupt file)");
    }
    std::string raw(raw_bytes, '\0');
    uLongf length = static_cast<uLongf>(raw_bytes);
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &length,
                   reinterpret_cast<const Bytef*>(bytes.data() + kHeaderBytes), static_cast<uLong>(stored_bytes)) != Z_OK ||
        length != raw_bytes) {
        throw IoError("labels " + name + ": the payload does not decompress to its stated size");
    }
    return parse_payload(raw, name, occupancy_frames);
}

}  // namespace dojo::data::fleet
