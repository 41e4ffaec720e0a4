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

#include "dojo/ir/graph.h"

namespace dojo::frontend {

/// How a parameter without explicit initial values is drawn.
struct ParameterInit {
    double uniform_bound = 0.0;  ///< U(-bound, bound); 0 gives zeros
};

/// A classifier's forward graph (the loss is the trainer's business: autodiff comes after frontend).
struct Model {
    std::string spec;    ///< catalog spec or ONNX path
    ir::Graph graph;
    ir::NodeId input;    ///< [batch, sample...]
    ir::NodeId logits;   ///< [batch, classes]
    std::map<ir::NodeId, ParameterInit> init;           ///< parameters drawn at random (catalog models)
    std::map<ir::NodeId, std::vector<float>> values;    ///< parameters with given values (ONNX initializers)
    bool from_onnx = false;
};

/// `spec` ending in ".onnx" is imported (frontend/onnx.h), anything else is built from the catalog
/// (frontend/catalog.h). The model must take samples of `sample_shape`'s element count and produce `classes`
/// logits; otherwise UsageError says what the model and the data have.
Model load_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes);

}  // namespace dojo::frontend
