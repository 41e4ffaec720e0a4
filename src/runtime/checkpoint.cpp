#include "dojo/runtime/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

namespace fs = std::filesystem;
constexpr char kMagic[8] = {'D', 'O', 'J', 'O', 'C', 'K', 'P', 'T'};

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
}

std::string system_error() { return std::strerror(errno); }

// Writes all of `bytes` to a new file at `path` and fsyncs it.
void write_synced(const std::string& path, const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw IoError("cannot create " + path + ": " + system_error());
    }
    std::size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const std::string reason = system_error();
            ::close(fd);
            throw IoError("cannot write " + path + ": " + reason);
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const std::string reason = system_error();
        ::close(fd);
        throw IoError("cannot flush " + path + " to disk: " + reason);
    }
    ::close(fd);
}

void sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

// A cursor over the file's bytes that reports truncation with the file's name.
class Reader {
public:
    Reader(const std::string& bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}
    const char* take(std::size_t n, const char* what) {
        if (n > bytes_.size() - at_) {
            throw IoError(path_ + " is truncated (in the " + what + "); the checkpoint is unusable");
        }
        const char* p = bytes_.data() + at_;
        at_ += n;
        return p;
    }
    std::uint32_t u32(const char* what) {
        const auto* p = reinterpret_cast<const unsigned char*>(take(4, what));
        return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
               (std::uint32_t{p[3]} << 24);
    }
    std::uint64_t u64(const char* what) {
        const std::uint64_t low = u32(what);
        return low | (std::uint64_t{u32(what)} << 32);
    }
    std::size_t remaining() const { return bytes_.size() - at_; }

private:
    const std::string& bytes_;
    std::string path_;
    std::size_t at_ = 0;
};

}  // namespace

void require_writable_directory(const std::string& dir) {
    std::error_code error;
    fs::create_directories(dir, error);
    if (error) {
        throw IoError("cannot create checkpoint directory " + dir + ": " + error.message());
    }
    const std::string probe = (fs::path(dir) / ".dojo-write-test").string();
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw IoError("checkpoint directory " + dir + " is not writable: " + system_error() +
                      "; choose another --checkpoint directory");
    }
    ::close(fd);
    ::unlink(probe.c_str());
}

void write_checkpoint(const std::string& dir, const Checkpoint& c) {
    require_writable_directory(dir);
    const nlohmann::json header = {{"model", c.model},       {"precision", c.precision},
                                   {"optimizer", c.optimizer}, {"seed", c.seed},
                                   {"batch", c.batch},         {"epoch", c.epoch},
                                   {"batch_in_epoch", c.batch_in_epoch}, {"global_step", c.global_step},
                                   {"epoch_loss_sum", c.epoch_loss_sum}};
    const std::string header_text = header.dump();
    std::string bytes(kMagic, sizeof(kMagic));
    put_u32(bytes, kCheckpointVersion);
    put_u32(bytes, static_cast<std::uint32_t>(header_text.size()));
    bytes += header_text;
    for (const NamedTensor& t : c.tensors) {
        put_u32(bytes, static_cast<std::uint32_t>(t.name.size()));
        bytes += t.name;
        put_u64(bytes, t.values.size());
        bytes.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
    }
    put_u32(bytes, static_cast<std::uint32_t>(
                       crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()))));
    const std::string final_path = (fs::path(dir) / kCheckpointFile).string();
    const std::string temp_path = final_path + ".tmp";
    write_synced(temp_path, bytes);
    if (std::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        const std::string reason = system_error();
        ::unlink(temp_path.c_str());
        throw IoError("cannot move " + temp_path + " to " + final_path + ": " + reason);
    }
    sync_directory(dir);
}

bool has_checkpoint(const std::string& dir) { return fs::exists(fs::path(dir) / kCheckpointFile); }

Checkpoint read_checkpoint(const std::string& dir) {
    const std::string path = (fs::path(dir) / kCheckpointFile).string();
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw IoError("no checkpoint to resume from: " + path + " does not exist (train once with --checkpoint " +
                      dir + " first, or drop --resume)");
    }
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (bytes.size() < sizeof(kMagic) + 12 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
        throw IoError(path + " is not an OpenDojo checkpoint (bad magic or too short)");
    }
    const std::size_t body = bytes.size() - 4;
    Reader crc_reader(bytes, path);
    crc_reader.take(body, "body");
    const std::uint32_t stored = crc_reader.u32("checksum");
    const auto actual = static_cast<std::uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(body)));
    if (stored != actual) {
        throw IoError(path + " is corrupted (CRC-32 mismatch); it was damaged after it was written");
    }
    Reader r(bytes, path);
    r.take(sizeof(kMagic), "magic");
    const std::uint32_t version = r.u32("version");
    if (version != kCheckpointVersion) {
        throw IoError(path + " has format version " + std::to_string(version) + "; this dojo reads version " +
                      std::to_string(kCheckpointVersion));
    }
    const std::uint32_t header_size = r.u32("header length");
    const std::string header_text(r.take(header_size, "header"), header_size);
    Checkpoint c;
    try {
        const nlohmann::json h = nlohmann::json::parse(header_text);
        c.model = h.at("model");
        c.precision = h.at("precision");
        c.optimizer = h.at("optimizer");
        c.seed = h.at("seed");
        c.batch = h.at("batch");
        c.epoch = h.at("epoch");
        c.batch_in_epoch = h.at("batch_in_epoch");
        c.global_step = h.at("global_step");
        c.epoch_loss_sum = h.at("epoch_loss_sum");
    } catch (const nlohmann::json::exception& error) {
        throw IoError(path + " has an unreadable header: " + error.what());
    }
    while (r.remaining() > 4) {
        NamedTensor t;
        const std::uint32_t name_size = r.u32("tensor name length");
        t.name.assign(r.take(name_size, "tensor name"), name_size);
        const std::uint64_t count = r.u64("tensor size");
        if (count > r.remaining() / sizeof(float)) {
            throw IoError(path + " is truncated (in tensor '" + t.name + "')");
        }
        t.values.resize(count);
        std::memcpy(t.values.data(), r.take(count * sizeof(float), "tensor data"), count * sizeof(float));
        c.tensors.push_back(std::move(t));
    }
    return c;
}

}  // namespace dojo::runtime
