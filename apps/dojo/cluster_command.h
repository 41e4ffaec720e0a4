/** \file
 * `dojo cluster`: the scheduler's policy at cluster scale (service/replay.h).
 *   `dojo cluster replay TRACE --machine M [--policy priority|fifo|fairshare|shortest-first] [--checkpoint-minutes N]
 *    [--svg FILE] [--json]` runs a job trace on machine M's devices and reports utilization, idle fraction, queueing
 *    delay and completion time per priority class, and preemptions.
 *   `dojo cluster trace --machine M --out FILE [--jobs N] [--load X] [--high-fraction F] [--seed S]` writes a
 *    synthetic trace in the Helios layout for M (service/trace.h).
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_cluster_command(CLI::App& app);

}  // namespace dojo::cli
