/** \file
 * `dojo sim MODEL --machine NAME --batch B --precision P [--strategy auto | dp=..,tp=..,pp=..,mb=..] [--json]`:
 * compiles the training step for a machine and simulates it (sim/simulate.h), printing the step time, its split
 * into compute, communication and pipeline bubble, utilization, memory fit, energy and the costliest ops.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_sim_command(CLI::App& app);

}  // namespace dojo::cli
