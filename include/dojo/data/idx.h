/** \file
 * Reading IDX files (the MNIST / Fashion-MNIST container: a big-endian magic giving the element type and rank,
 * the dimensions, then the elements), gzip-compressed or plain.
 *
 * Element types: unsigned bytes (0x08, what MNIST-style image and label files hold) and big-endian float32 (0x0D, for a
 * user's own real-valued samples). Others are refused with a message.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dojo::data {

struct IdxArray {
    std::vector<std::int64_t> dims;
    bool is_float = false;             ///< element type 0x0D (float32) rather than 0x08 (unsigned byte)
    std::vector<std::uint8_t> values;  ///< unsigned-byte files: row-major, product(dims) elements
    std::vector<float> floats;         ///< float32 files: row-major, product(dims) elements
};

/// The bytes of an IDX file (plain, not compressed) holding `array`: float32 elements when array.is_float, unsigned
/// bytes otherwise. Throws UsageError if the element count does not match dims.
std::string encode_idx(const IdxArray& array);

/// Reads `path` (.gz or plain). Throws IoError naming the file if it cannot be opened or read, and naming the
/// problem (bad magic, unsupported element type, truncated data, trailing bytes) if it is not a valid IDX file.
IdxArray read_idx(const std::string& path);

}  // namespace dojo::data
