/** \file
 * Files a user names on the command line: models read, outputs written (traces, trained models).
 *
 * Reading takes regular files only, so a FIFO or a device named as a model fails at once instead of blocking, and
 * a size bound keeps a huge file from exhausting memory.
 *
 * Writing never destroys what the path names unless it is the regular file being replaced:
 *   - a missing path or a regular file: the bytes go to a temporary file beside it, which is renamed over it, so a
 *     failed write leaves the old file (or nothing) and never half a file;
 *   - a symbolic link: the same, on the file the link points to (the link stays a link);
 *   - a device or a FIFO (/dev/stdout, /dev/null): written through in place, as a shell redirection would;
 *   - a directory, or an empty path: a UsageError before anything is written.
 * Every failure names the path and the system's reason.
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dojo {

/// The bytes of the regular file `path`. `what` names it in errors ("ONNX model"). Throws IoError if it does not
/// exist or cannot be read, UsageError if it is not a regular file (a directory, a FIFO, a device) or is larger
/// than `max_bytes`.
std::string read_regular_file(const std::string& path, std::string_view what, std::uint64_t max_bytes);

/// Checks, before any work, that `write_output_file(path, ...)` can succeed: the path is not empty and not a
/// directory, and its directory exists and is writable. Throws UsageError or IoError naming `what` and the path.
void require_output_path(const std::string& path, std::string_view what);

/// Writes `bytes` to `path` as the file comment says. Throws UsageError or IoError naming `what` and the path.
void write_output_file(const std::string& path, std::string_view bytes, std::string_view what);

/// The last `lines` lines of the text file at `path` (fewer if it has fewer; empty if it cannot be read): a failed
/// job's error from its log.
std::string last_lines(const std::string& path, std::size_t lines);

}  // namespace dojo
