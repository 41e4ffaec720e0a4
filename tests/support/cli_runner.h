/** \file
 * Runs the `dojo` binary as a user would (a shell command line, stdin from text) and captures what it prints.
 * DOJO_CLI_PATH is set by tests/CMakeLists.txt.
 */
#pragma once

#include <string>
#include <vector>

namespace dojo::test {

struct CliResult {
    int exit_code = -1;
    std::string out;  ///< stdout
    std::string err;  ///< stderr
};

/// Runs `dojo <args...>` with `input` on stdin. Arguments are passed verbatim (each single-quoted for the shell).
CliResult run_dojo(const std::vector<std::string>& args, const std::string& input = "");

/// Runs `dojo <args...>` on `ranks` MPI ranks of this machine (mpirun with DOJO_MPIRUN's flags: as root,
/// oversubscribed, unbound).
CliResult run_dojo_mpi(int ranks, const std::vector<std::string>& args);

/// Runs a shell command line as given, with `input` on stdin, and captures what it prints.
CliResult run_shell(const std::string& command, const std::string& input = "");

/// `dojo <args...>` as a shell command line (each argument quoted).
std::string dojo_command(const std::vector<std::string>& args);

/// `arg` quoted for the shell.
std::string shell_quoted(const std::string& arg);

/// The lines of `text`, without their newlines.
std::vector<std::string> lines_of(const std::string& text);

}  // namespace dojo::test
