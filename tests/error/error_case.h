/** \file
 * One bad input, run as a user runs it, and what must come of it: the exit code (2 for a usage error, 1 for any
 * other; never a signal, a hang or an "internal error"), a message naming the bad thing, and every file that
 * existed before left byte for byte as it was.
 */
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"

namespace dojo::test {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitFailure = 1;

struct BadInput {
    std::vector<std::string> args;
    std::string message;                        ///< a substring the error must contain
    int exit_code = kExitUsage;
    std::string input;                          ///< on stdin
    std::vector<std::filesystem::path> kept;   ///< files that must be byte-identical afterwards
    int timeout_s = 120;                        ///< longer is a hang
};

/// Runs `dojo <args>` under `timeout` and checks everything above (gtest expectations). Returns what it printed.
CliResult expect_rejected(const BadInput& c);

/// A fresh, empty directory for one test (removed first if it exists).
std::filesystem::path scratch_directory(const std::string& name);

/// A copy of OpenDojo's machines/ directory in `into`, with `from` replaced by `to` in the file `file` (relative to
/// machines/): a description that is wrong in one place.
std::filesystem::path machines_with(const std::filesystem::path& into, const std::string& file,
                                    const std::string& from, const std::string& to);

}  // namespace dojo::test
