/** \file
 * `dojo validate [--table FILE] [--only TEXT] [--tolerance PCT] [--json]`: predicts every row of a validation table
 * of published figures (sim/validation.h) and prints predicted against published, each row's error, then the mean
 * and largest. Exits 1 when a row's error exceeds the tolerance (10% by default), so a script can gate on it.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_validate_command(CLI::App& app);

}  // namespace dojo::cli
