/** \file
 * Reading IDX files (the MNIST / Fashion-MNIST container: a big-endian magic giving the element type and rank,
 * the dimensions, then the elements), gzip-compressed or plain.
 *
 * Only unsigned-byte elements (type 0x08) are supported: that is what image and label files hold.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dojo::data {

struct IdxArray {
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> values;  ///< row-major, product(dims) elements
};

/// Reads `path` (.gz or plain). Throws IoError naming the file if it cannot be opened or read, and naming the
/// problem (bad magic, unsupported element type, truncated data, trailing bytes) if it is not a valid IDX file.
IdxArray read_idx(const std::string& path);

}  // namespace dojo::data
