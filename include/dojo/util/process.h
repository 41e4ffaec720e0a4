/** \file
 * Running another program and reading what it prints: the service's hand-over to Slurm's commands (sbatch, scontrol,
 * scancel, sinfo). No shell sits between: the arguments reach the program as given.
 */
#pragma once

#include <string>
#include <vector>

namespace dojo {

struct ProgramResult {
    int exit_code = 0;   ///< its exit status; 128 + N when signal N ended it; 127 when it could not be started
    std::string out;     ///< what it wrote to standard output
    std::string err;     ///< ... and to standard error
    bool timed_out = false;  ///< killed after the time limit
};

/// Runs `argv` (argv[0] found on PATH) with standard input closed, waits for it at most `timeout_s` seconds (then
/// kills it: timed_out), and returns its status and output.
ProgramResult run_program(const std::vector<std::string>& argv, double timeout_s = 30.0);

}  // namespace dojo
