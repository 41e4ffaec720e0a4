/** \file
 * `dojo data synth | query | inspect | stats | bench`: the fleet clip store (data/fleet/): make a synthetic fleet,
 * select clips by scenario, look at a clip's cameras and ground truth, summarise a store, and measure the decoding
 * pipeline.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_data_command(CLI::App& app);

}  // namespace dojo::cli
