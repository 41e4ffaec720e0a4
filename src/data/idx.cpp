#include "dojo/data/idx.h"

#include <zlib.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>

#include "dojo/util/error.h"

namespace dojo::data {
namespace {

struct GzCloser {
    void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly `size` bytes; false at end of file.
bool read_exact(gzFile_s* file, void* into, std::size_t size, const std::string& path) {
    auto* bytes = static_cast<unsigned char*>(into);
    while (size > 0) {
        const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(size, 1u << 30));
        const int got = gzread(file, bytes, chunk);
        if (got < 0) {
            int code = 0;
            throw IoError("cannot read " + path + ": " + gzerror(file, &code));
        }
        if (got == 0) {
            return false;
        }
        bytes += got;
        size -= static_cast<std::size_t>(got);
    }
    return true;
}

std::uint32_t big_endian(const unsigned char bytes[4]) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

}  // namespace

std::string encode_idx(const IdxArray& array) {
    std::size_t count = 1;
    for (const std::int64_t d : array.dims) {
        count *= static_cast<std::size_t>(d);
    }
    if (array.dims.empty() || array.dims.size() > 255 ||
        count != (array.is_float ? array.floats.size() : array.values.size())) {
        throw UsageError("IDX array: the dimensions do not match the element count");
    }
    std::string out;
    const auto put_big_endian = [&](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((v >> shift) & 0xFF));
        }
    };
    out += std::string{'\0', '\0', static_cast<char>(array.is_float ? 0x0D : 0x08), static_cast<char>(array.dims.size())};
    for (const std::int64_t d : array.dims) {
        put_big_endian(static_cast<std::uint32_t>(d));
    }
    if (array.is_float) {
        for (const float f : array.floats) {
            put_big_endian(std::bit_cast<std::uint32_t>(f));
        }
    } else {
        out.append(reinterpret_cast<const char*>(array.values.data()), array.values.size());
    }
    return out;
}

IdxArray read_idx(const std::string& path) {
    GzFile file(gzopen(path.c_str(), "rb"));  // reads plain files transparently too
    if (!file) {
        throw IoError("cannot open " + path + ": " + std::strerror(errno));
    }
    unsigned char header[4];
    if (!read_exact(file.get(), header, 4, path)) {
        throw IoError(path + " is empty or truncated: no IDX header");
    }
    if (header[0] != 0 || header[1] != 0) {
        throw IoError(path + " is not an IDX file: its magic starts 0x" + std::to_string(header[0]) + "..., expected "
                      "two zero bytes (is it a different format, or corrupted?)");
    }
    if (header[2] != 0x08 && header[2] != 0x0D) {
        throw IoError(path + ": IDX element type " + std::to_string(header[2]) +
                      " is not supported; use unsigned bytes (0x08) or float32 (0x0D)");
    }
    const int rank = header[3];
    if (rank < 1 || rank > 4) {
        throw IoError(path + ": IDX rank " + std::to_string(rank) + " is out of range 1..4");
    }
    IdxArray array;
    std::int64_t count = 1;
    for (int axis = 0; axis < rank; ++axis) {
        unsigned char dim[4];
        if (!read_exact(file.get(), dim, 4, path)) {
            throw IoError(path + " is truncated in its dimensions");
        }
        array.dims.push_back(big_endian(dim));
        count *= array.dims.back();
        if (count > (std::int64_t{1} << 34)) {
            throw IoError(path + ": dimensions describe more than 2^34 elements; the file is corrupted");
        }
    }
    array.is_float = header[2] == 0x0D;
    const std::size_t element_bytes = array.is_float ? 4 : 1;
    array.values.resize(static_cast<std::size_t>(count) * element_bytes);
    if (!read_exact(file.get(), array.values.data(), array.values.size(), path)) {
        throw IoError(path + " is truncated: its header promises " + std::to_string(count) + " elements");
    }
    if (array.is_float) {  // big-endian IEEE binary32
        array.floats.resize(static_cast<std::size_t>(count));
        for (std::size_t i = 0; i < array.floats.size(); ++i) {
            array.floats[i] = std::bit_cast<float>(big_endian(array.values.data() + 4 * i));
        }
        array.values.clear();
    }
    unsigned char extra = 0;
    if (read_exact(file.get(), &extra, 1, path)) {
        throw IoError(path + " has bytes after its " + std::to_string(count) + " elements; the file is corrupted");
    }
    return array;
}

}  // namespace dojo::data
