/** \file
 * `dojo compare MODEL --machines tile,dgx-a100,... --batch B [--precision P] [--json]`: simulates the same training
 * step (the fastest fitting strategy of `dojo sim --strategy auto`) on each machine and prints them side by side:
 * step time, samples/s, utilization, power, energy per sample, memory fit, and GPU-equivalents: how many A100s and
 * how many H100s deliver each machine's throughput on this model.
 *
 * GPU-equivalents scale one 8-GPU node linearly: a DGX A100 and a DGX H100 are simulated at the same global batch,
 * and a machine's samples/s divided by one GPU's share of its node's samples/s is its count of that GPU. Linear
 * scaling ignores the cluster's inter-node communication, so the count is the fewest GPUs that could match, a
 * bound in the GPUs' favour. Where one node cannot hold the model, its step is timed as if it could, and the output
 * says so.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_compare_command(CLI::App& app);

}  // namespace dojo::cli
