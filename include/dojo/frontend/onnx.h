/** \file
 * ONNX import (a model exported by torch.onnx.export -> a forward ir::Graph with its trained-so-far values) and
 * export (the same model file with updated initializers, so PyTorch and ONNX tools load it as they loaded the
 * original). Uses Debian's libonnx protobuf classes.
 *
 * Import rules:
 *   - opsets 13..17 of the default domain;
 *   - one float data input (its first dimension is the batch: it is set to the requested batch size; the others must
 *     be fixed) and one float output;
 *   - float initializers become trainable Parameters named after the initializer, with the file's values, except
 *     BatchNormalization's running mean and variance, which become State leaves (non-trainable, updated each step);
 *   - constants (initializers of other types, Constant, and everything computed from them only: the shape glue
 *     torch emits for x.view(x.size(0), -1), causal masks, ...) are folded at import (src/frontend/onnx_constant.h)
 *     and enter the graph as Fill/Constant nodes where they meet data;
 *   - ops lower onto primitives (ir/op.h); onnx_supported_ops() lists them. Anything else is an ImportError naming
 *     the op type, the node and the supported list.
 *
 * Modes: BatchNormalization computes batch statistics and updates its running statistics in Training mode (PyTorch's
 * train(); the running variance uses the unbiased batch variance, as PyTorch does, and ONNX's momentum m means
 * running = m * running + (1 - m) * batch); in Inference mode it normalises with the running statistics (eval()).
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::frontend {

enum class ImportMode { Training, Inference };

/// After a training step, State `target` takes the value of node `value` (BatchNormalization's running statistics).
struct StateUpdate {
    ir::NodeId target;
    ir::NodeId value;
};

struct OnnxModel {
    std::string path;
    ir::Graph graph;  ///< the forward computation
    ir::NodeId input;
    ir::NodeId output;
    std::map<ir::NodeId, std::vector<float>> initial_values;  ///< one entry per parameter and per state
    std::vector<StateUpdate> state_updates;                    ///< Training mode only
    std::int64_t opset = 0;
};

/// The ONNX op types the importer accepts, comma-separated.
std::string onnx_supported_ops();

/// Imports `path` with its batch dimension set to `batch`. Throws ImportError for a missing, truncated or corrupt
/// file, an unsupported opset or op, or a model whose inputs/outputs are not one float tensor each.
OnnxModel import_onnx(const std::string& path, std::int64_t batch, ImportMode mode = ImportMode::Training);

/// The same from the bytes of a model file; `name` stands for the file in messages. Never crashes on any bytes: every
/// problem is an ImportError (or a GraphError for a well-formed model whose shapes do not fit together).
OnnxModel import_onnx_bytes(const std::string& bytes, const std::string& name, std::int64_t batch,
                            ImportMode mode = ImportMode::Training);

/// Copies the model at `source_path` to `out_path` with every float initializer named in `values` replaced (it must
/// exist with the same element count). The file is written atomically. Throws ImportError for a bad source or a
/// name/size mismatch, IoError if `out_path` cannot be written.
void export_onnx(const std::string& source_path, const std::string& out_path,
                 const std::map<std::string, std::vector<float>>& values);

}  // namespace dojo::frontend
