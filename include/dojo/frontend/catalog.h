/** \file
 * The parametric model catalog: models described by a short spec ("mlp:hidden=256x128") and built with the
 * graph builder for a given batch size, sample shape and class count. Building computes nothing; parameters carry
 * an initialisation rule that the runtime applies when (and only if) the model is trained.
 *
 * Specs (this list is what `dojo train --help` shows):
 *   mlp[:hidden=H1xH2x...]   fully connected, ReLU between layers; default hidden=256 (the 784-256-10 MLP)
 *   lenet                    conv 1->6 5x5 (pad 2), ReLU, max-pool 2; conv 6->16 5x5, ReLU, max-pool 2; fc 400->120,
 *                            ReLU; fc 120->classes. For 1x28x28 images.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "dojo/frontend/model.h"
#include "dojo/ir/graph.h"

namespace dojo::frontend {

/// Builds catalog model `spec` for `batch` samples of `sample_shape` with `classes` outputs. Throws UsageError
/// for an unknown model name or a malformed option, listing what is valid.
Model build_catalog_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes);

/// The catalog's model names and option syntax, one per line.
std::string catalog_help();

}  // namespace dojo::frontend
