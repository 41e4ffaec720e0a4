/** \file
 * `dojo plan MODEL --machine NAME --batch B [--strategy auto | dp=..] [--precision P] [--dump] [--json]`: compiles
 * the training step for a machine and shows where it goes: the strategy, each pipeline stage's nodes and, on a
 * Dojo mesh, the spatial placement of its layers on the chip's cores (compiler/place_spatial.h) with what each
 * core holds and what streams from HBM. --dump draws the mesh, one letter per layer's rectangle; --json prints it
 * all as JSON.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_plan_command(CLI::App& app);

}  // namespace dojo::cli
