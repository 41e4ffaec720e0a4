/** \file
 * A classifier's forward graph as the trainer receives it, from the catalog or from an ONNX file, and the one
 * entry point that loads either (`dojo train MODEL` takes both).
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/frontend/onnx.h"
#include "dojo/ir/graph.h"

namespace dojo::frontend {

/// How a parameter (or state) without explicit initial values is set.
struct ParameterInit {
    double uniform_bound = 0.0;  ///< U(-bound, bound); 0: every element is `constant`
    double constant = 0.0;       ///< with uniform_bound 0 (BatchNorm scales and running variances start at 1)
};

/// A classifier's or language model's forward graph (the loss is the trainer's business: autodiff comes after frontend).
struct Model {
    std::string spec;    ///< catalog spec or ONNX path
    ir::Graph graph;
    ir::NodeId input;    ///< [batch, sample...]
    ir::NodeId logits;   ///< [batch, classes]
    std::map<ir::NodeId, ParameterInit> init;           ///< parameters and states set by rule (catalog models)
    std::map<ir::NodeId, std::vector<float>> values;    ///< parameters and states with given values (ONNX initializers)
    std::vector<StateUpdate> state_updates;             ///< new state values after each training step (BatchNorm)
    bool from_onnx = false;
    /// false: one class per sample, logits [batch, classes]. true: a language model, whose input holds token ids
    /// [batch, seq] and whose logits [batch * seq, vocab] have one label per token (the next token, or the masked one).
    bool token_labels = false;
    /// true: a regression with a target of the output's own shape, trained by mean squared error (a diffusion
    /// UNet predicting the noise in its input); `logits` is then that output.
    bool dense_target = false;
    /// true: every output is an independent yes/no (an occupancy grid's voxels): logits [batch, outputs...] train by
    /// sigmoid binary cross-entropy against a target of 0s and 1s of the same shape.
    bool binary_target = false;
};

/// `spec` ending in ".onnx" is imported (frontend/onnx.h), anything else is built from the catalog
/// (frontend/catalog.h). The model must take samples of `sample_shape`'s element count and produce `classes`
/// logits; otherwise UsageError says what the model and the data have. `mode` picks BatchNormalization's training
/// (batch statistics, running-statistic updates) or inference (running statistics) form.
Model load_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes,
                 ImportMode mode = ImportMode::Training);

/// Loads `spec` for `batch` samples of the shape the model itself declares (an ONNX file's input; a catalog model's
/// catalog_sample()), with logits as it produces them: for compiling and simulating, where no dataset is involved.
Model load_model_as_declared(std::string_view spec, std::int64_t batch, ImportMode mode = ImportMode::Training);

}  // namespace dojo::frontend
