#include "error_case.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

namespace dojo::test {
namespace {

namespace fs = std::filesystem;

std::string bytes_of(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

}  // namespace

CliResult expect_rejected(const BadInput& c) {
    std::map<fs::path, std::string> before;
    for (const fs::path& path : c.kept) {
        before[path] = bytes_of(path);
    }
    const std::string command = dojo_command(c.args);
    const CliResult r = run_shell("timeout " + std::to_string(c.timeout_s) + " " + command, c.input);
    EXPECT_EQ(r.exit_code, c.exit_code) << command << "\nstderr: " << r.err;
    EXPECT_NE(r.exit_code, 124) << command << ": still running after " << c.timeout_s << " s";
    EXPECT_LT(r.exit_code, 128) << command << ": ended by a signal\nstderr: " << r.err;
    EXPECT_NE(r.err.find("dojo: error: "), std::string::npos) << command << "\nstderr: " << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << command << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << command << "\nexpected: " << c.message
                                                       << "\nstderr: " << r.err;
    for (const fs::path& path : c.kept) {
        EXPECT_TRUE(fs::exists(fs::symlink_status(path))) << command << " removed " << path;
        EXPECT_EQ(bytes_of(path), before[path]) << command << " changed " << path;
    }
    return r;
}

fs::path scratch_directory(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-error-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

fs::path machines_with(const fs::path& into, const std::string& file, const std::string& from, const std::string& to) {
    const fs::path machines = into / "machines";
    fs::copy(DOJO_MACHINES_DIR, machines, fs::copy_options::recursive);
    std::string text = bytes_of(machines / file);
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from << " is not in " << file;
    if (at != std::string::npos) {
        text.replace(at, from.size(), to);
    }
    std::ofstream(machines / file, std::ios::trunc) << text;
    return machines;
}

}  // namespace dojo::test
