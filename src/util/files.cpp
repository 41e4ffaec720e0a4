#include "dojo/util/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "dojo/util/error.h"

namespace dojo {
namespace {

namespace fs = std::filesystem;

std::string quoted(std::string_view what, const std::string& path) { return std::string(what) + " '" + path + "'"; }

// Writes all of `bytes` to the open descriptor; false with errno set on failure.
bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t written = ::write(fd, bytes.data(), bytes.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(written));
    }
    return true;
}

// A device or FIFO: written in place, as a shell redirection would (no temporary, no rename).
void write_through(const std::string& path, std::string_view bytes, std::string_view what) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        throw IoError("cannot open " + quoted(what, path) + " for writing: " + std::strerror(errno));
    }
    const bool ok = write_all(fd, bytes);
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        throw IoError("cannot write " + quoted(what, path) + ": " + std::strerror(saved));
    }
}

// A regular file (or none yet): a temporary beside it, flushed, then renamed over it.
void write_replacing(const std::string& path, std::string_view bytes, std::string_view what) {
    const std::string temporary = path + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw IoError("cannot write " + quoted(what, path) + ": cannot create " + temporary + ": " +
                      std::strerror(errno) + " (does the directory exist, and is it writable?)");
    }
    const bool ok = write_all(fd, bytes) && ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(temporary.c_str());
        throw IoError("cannot write " + quoted(what, path) + ": " + std::strerror(saved) + " (disk full?)");
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        const int reason = errno;
        ::unlink(temporary.c_str());
        throw IoError("cannot move " + temporary + " to " + path + ": " + std::strerror(reason));
    }
}

}  // namespace

std::string read_regular_file(const std::string& path, std::string_view what, std::uint64_t max_bytes) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (!fs::exists(status)) {
        throw IoError(quoted(what, path) + " does not exist");
    }
    if (fs::is_directory(status)) {
        throw UsageError(quoted(what, path) + " is a directory; name a file");
    }
    if (!fs::is_regular_file(status)) {
        throw UsageError(quoted(what, path) + " is not a regular file (a FIFO, socket or device); name a file");
    }
    const std::uintmax_t size = fs::file_size(path, error);
    if (error) {
        throw IoError("cannot read " + quoted(what, path) + ": " + error.message());
    }
    if (size > max_bytes) {
        throw UsageError(quoted(what, path) + " has " + std::to_string(size) + " bytes, more than the " +
                         std::to_string(max_bytes) + " this reader takes");
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw IoError("cannot read " + quoted(what, path) + ": " + std::strerror(errno));
    }
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (file.bad()) {
        throw IoError("cannot read " + quoted(what, path) + ": a read failed");
    }
    return bytes;
}

void require_output_path(const std::string& path, std::string_view what) {
    if (path.empty()) {
        throw UsageError(std::string(what) + ": the path is empty; name a file");
    }
    std::error_code error;
    const fs::file_status status = fs::status(path, error);  // follows links: what the bytes would reach
    if (fs::is_directory(status)) {
        throw UsageError(quoted(what, path) + " is a directory; name a file in it");
    }
    if (fs::exists(status) && !fs::is_regular_file(status)) {
        if (::access(path.c_str(), W_OK) != 0) {
            throw IoError("cannot write " + quoted(what, path) + ": " + std::strerror(errno));
        }
        return;  // a device or FIFO, written through
    }
    const fs::path target = fs::is_symlink(fs::symlink_status(path, error)) ? fs::weakly_canonical(path, error)
                                                                           : fs::path(path);
    fs::path directory = target.parent_path();
    if (directory.empty()) {
        directory = ".";
    }
    if (!fs::is_directory(directory, error)) {
        throw IoError("cannot write " + quoted(what, path) + ": the directory " + directory.string() +
                      " does not exist");
    }
    if (::access(directory.c_str(), W_OK) != 0) {
        throw IoError("cannot write " + quoted(what, path) + ": the directory " + directory.string() +
                      " is not writable");
    }
}

void write_output_file(const std::string& path, std::string_view bytes, std::string_view what) {
    require_output_path(path, what);
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (fs::exists(status) && !fs::is_regular_file(status)) {
        write_through(path, bytes, what);
        return;
    }
    if (fs::is_symlink(fs::symlink_status(path, error))) {
        write_replacing(fs::weakly_canonical(path).string(), bytes, what);  // the link's file, not the link
        return;
    }
    write_replacing(path, bytes, what);
}

std::string last_lines(const std::string& path, std::size_t lines) {
    std::ifstream in(path);
    std::deque<std::string> kept;
    for (std::string line; std::getline(in, line);) {
        kept.push_back(line);
        if (kept.size() > lines) {
            kept.pop_front();
        }
    }
    std::string out;
    for (const std::string& line : kept) {
        out += (out.empty() ? "" : "\n") + line;
    }
    return out;
}

}  // namespace dojo
