/** \file
 * Shards of the clip store: POSIX ustar archives, readable by any tar tool and by WebDataset-style loaders (members
 * of one clip are adjacent and share the name before the first dot: `<clip>.<camera>.mp4`, `<clip>.labels`).
 *
 * The writer records where each member's bytes start, so that the manifest can send a reader straight to them
 * (read_range) without scanning the archive. A shard is written under a temporary name and renamed when closed: a
 * shard that exists is complete.
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace dojo::data::fleet {

struct TarMember {
    std::string name;
    std::uint64_t offset = 0;  ///< of the member's bytes (after its header), from the start of the archive
    std::uint64_t size = 0;
};

class TarWriter {
public:
    /// Starts `path` (written as `path`.partial until close()). Throws IoError naming it if it cannot be created.
    explicit TarWriter(std::string path);
    ~TarWriter();  ///< an unclosed archive is deleted: it is incomplete
    TarWriter(const TarWriter&) = delete;
    TarWriter& operator=(const TarWriter&) = delete;

    /// Appends a regular-file member and returns where its bytes are. Names are ASCII, at most 99 bytes.
    TarMember add(const std::string& name, std::string_view bytes);
    /// Writes the end-of-archive blocks and renames the file into place.
    void close();
    std::uint64_t bytes() const { return bytes_; }
    const std::string& path() const { return path_; }

private:
    void write(const void* data, std::size_t size);

    std::string path_;
    std::FILE* file_ = nullptr;
    std::uint64_t bytes_ = 0;
};

/// The members of the ustar archive `path`, in order. Throws IoError naming the file and the byte offset of the
/// first header that is malformed (bad checksum, size past the end of the file) or missing (a truncated archive).
std::vector<TarMember> list_tar(const std::string& path);

/// Bytes [offset, offset + size) of `path`. Throws IoError naming the file if they are not all there.
std::string read_range(const std::string& path, std::uint64_t offset, std::uint64_t size);

}  // namespace dojo::data::fleet
