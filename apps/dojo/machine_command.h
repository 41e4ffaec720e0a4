/** \file
 * `dojo machine list` and `dojo machine show NAME[:param=value] [--json]`: the machine presets and, for one, its
 * zone tree and derived totals (machine/machine.h).
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_machine_command(CLI::App& app);

}  // namespace dojo::cli
