/** \file
 * `dojo train`: train a model on a dataset with Dojo's training step. Parses options, loads data, calls
 * runtime::train_classifier, reports progress (stderr) and results (stdout, text or --json).
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_train_command(CLI::App& app);

}  // namespace dojo::cli
