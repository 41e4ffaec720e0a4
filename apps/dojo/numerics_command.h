/** \file
 * `dojo numerics` and its subcommands (formats, table, encode, decode, info, bias). Registering only: the work is
 * done by dojo::numerics; this file parses options and prints.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

/// Adds `numerics` with its subcommands to `app`. Callbacks throw dojo::Error on bad input (see main.cpp).
void add_numerics_command(CLI::App& app);

}  // namespace dojo::cli
