// ustar shards (tar.h).
#include "dojo/data/fleet/tar.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include "dojo/util/error.h"

namespace dojo::data::fleet {
namespace {

constexpr std::size_t kBlock = 512;

void put_octal(char* field, std::size_t width, std::uint64_t value) {
    // width - 1 octal digits and a NUL, as GNU tar writes them.
    std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
}

std::uint64_t header_checksum(const std::array<char, kBlock>& header) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) {
        sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
    }
    return sum;
}

// An octal field, NUL- or space-terminated; false if it holds anything else.
bool parse_octal(const char* field, std::size_t width, std::uint64_t& value) {
    value = 0;
    std::size_t i = 0;
    while (i < width && field[i] == ' ') {
        ++i;
    }
    bool digits = false;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
        if (value >> 60) {
            return false;
        }
        value = value * 8 + static_cast<std::uint64_t>(field[i] - '0');
        digits = true;
    }
    return digits && (i == width || field[i] == '\0' || field[i] == ' ');
}

std::string system_error() { return std::strerror(errno); }

}  // namespace

TarWriter::TarWriter(std::string path) : path_(std::move(path)) {
    file_ = std::fopen((path_ + ".partial").c_str(), "wb");
    if (!file_) {
        throw IoError("cannot create shard " + path_ + ".partial: " + system_error());
    }
}

TarWriter::~TarWriter() {
    if (file_) {
        std::fclose(file_);
        std::remove((path_ + ".partial").c_str());
    }
}

void TarWriter::write(const void* data, std::size_t size) {
    if (std::fwrite(data, 1, size, file_) != size) {
        throw IoError("cannot write shard " + path_ + ".partial: " + system_error());
    }
    bytes_ += size;
}

TarMember TarWriter::add(const std::string& name, std::string_view bytes) {
    if (name.empty() || name.size() > 99) {
        throw UsageError("tar member name '" + name + "' must be 1..99 bytes");
    }
    std::array<char, kBlock> header{};
    std::memcpy(header.data(), name.data(), name.size());
    put_octal(&header[100], 8, 0644);
    put_octal(&header[108], 8, 0);
    put_octal(&header[116], 8, 0);
    put_octal(&header[124], 12, bytes.size());
    put_octal(&header[136], 12, 0);  // mtime: fixed, so that a seed gives the same bytes
    header[156] = '0';
    std::memcpy(&header[257], "ustar", 6);
    std::memcpy(&header[263], "00", 2);
    std::memcpy(&header[265], "dojo", 4);
    std::memcpy(&header[297], "dojo", 4);
    std::snprintf(&header[148], 8, "%06llo", static_cast<unsigned long long>(header_checksum(header)));
    header[155] = ' ';
    write(header.data(), kBlock);
    TarMember member{name, bytes_, bytes.size()};
    write(bytes.data(), bytes.size());
    static const std::array<char, kBlock> zeros{};
    write(zeros.data(), (kBlock - bytes.size() % kBlock) % kBlock);
    return member;
}

void TarWriter::close() {
    static const std::array<char, 2 * kBlock> zeros{};
    write(zeros.data(), zeros.size());
    const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    std::fclose(file_);
    file_ = nullptr;
    std::error_code error;
    std::filesystem::rename(path_ + ".partial", path_, error);
    if (!flushed || error) {
        throw IoError("cannot finish shard " + path_ + ": " + (error ? error.message() : system_error()));
    }
}

std::vector<TarMember> list_tar(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw IoError("cannot open shard " + path + ": " + system_error());
    }
    const off_t size = ::lseek(fd, 0, SEEK_END);
    std::vector<TarMember> members;
    std::uint64_t at = 0;
    std::array<char, kBlock> header{};
    const auto bad = [&](const std::string& why) {
        ::close(fd);
        throw IoError("shard " + path + " is not a complete tar archive: " + why + " at byte " + std::to_string(at));
    };
    while (true) {
        if (::pread(fd, header.data(), kBlock, static_cast<off_t>(at)) != static_cast<ssize_t>(kBlock)) {
            bad("the archive ends without its end-of-archive block");
        }
        if (std::all_of(header.begin(), header.end(), [](char c) { return c == 0; })) {
            break;
        }
        std::uint64_t stored = 0, length = 0;
        if (!parse_octal(&header[148], 8, stored) || stored != header_checksum(header)) {
            bad("a member header with a bad checksum");
        }
        if (!parse_octal(&header[124], 12, length)) {
            bad("a member header with a bad size");
        }
        const std::uint64_t data = at + kBlock;
        if (length > static_cast<std::uint64_t>(size) || data + length > static_cast<std::uint64_t>(size)) {
            bad("a member that runs past the end of the file (" + std::to_string(length) + " bytes)");
        }
        const char type = header[156];
        if (type == '0' || type == '\0') {
            members.push_back({std::string(header.data(), strnlen(header.data(), 100)), data, length});
        }
        at = data + (length + kBlock - 1) / kBlock * kBlock;
    }
    ::close(fd);
    return members;
}

std::string read_range(const std::string& path, std::uint64_t offset, std::uint64_t size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw IoError("cannot open shard " + path + ": " + system_error());
    }
    std::string bytes(size, '\0');
    std::uint64_t done = 0;
    while (done < size) {
        const ssize_t got = ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(offset + done));
        if (got <= 0) {
            ::close(fd);
            throw IoError("shard " + path + " is truncated: bytes " + std::to_string(offset) + ".." +
                          std::to_string(offset + size) + " are not all there");
        }
        done += static_cast<std::uint64_t>(got);
    }
    ::close(fd);
    return bytes;
}

}  // namespace dojo::data::fleet
