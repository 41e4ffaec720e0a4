/** \file
 * ONNX import (a model exported by torch.onnx.export -> a forward ir::Graph with its trained-so-far values) and
 * export (the same model file with updated initializers, so PyTorch and ONNX tools load it as they loaded the
 * original). Uses Debian's libonnx protobuf classes.
 *
 * Import rules:
 *   - opsets 13..17 of the default domain;
 *   - one float data input (its first dimension is the batch: it is set to the requested batch size; the others must
 *     be fixed) and one float output;
 *   - float initializers become trainable Parameters named after the initializer, with the file's values;
 *   - int64 tensors (initializers, Constant, and the Shape/Gather/Unsqueeze/Concat/Cast glue torch emits for
 *     x.view(x.size(0), -1)) are folded to constants on the static shapes: they may only feed shape arguments;
 *   - ops map to primitives (ir/op.h): Gemm, MatMul, Conv and MaxPool (2-D, explicit pads), Add, Sub, Mul, Div,
 *     Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Neg, Erf, Identity, Flatten, Reshape, Transpose, Softmax, LogSoftmax, plus
 *     the folded glue above. Anything else is an ImportError naming the op type, the node and the supported list.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::frontend {

struct OnnxModel {
    std::string path;
    ir::Graph graph;  ///< the forward computation
    ir::NodeId input;
    ir::NodeId output;
    std::map<ir::NodeId, std::vector<float>> initial_values;  ///< one entry per parameter
    std::int64_t opset = 0;
};

/// The ONNX op types the importer accepts, comma-separated.
std::string onnx_supported_ops();

/// Imports `path` with its batch dimension set to `batch`. Throws ImportError for a missing, truncated or corrupt
/// file, an unsupported opset or op, or a model whose inputs/outputs are not one float tensor each.
OnnxModel import_onnx(const std::string& path, std::int64_t batch);

/// The same from the bytes of a model file; `name` stands for the file in messages. Never crashes on any bytes: every
/// problem is an ImportError (or a GraphError for a well-formed model whose shapes do not fit together).
OnnxModel import_onnx_bytes(const std::string& bytes, const std::string& name, std::int64_t batch);

/// Copies the model at `source_path` to `out_path` with every float initializer named in `values` replaced (it must
/// exist with the same element count). The file is written atomically. Throws ImportError for a bad source or a
/// name/size mismatch, IoError if `out_path` cannot be written.
void export_onnx(const std::string& source_path, const std::string& out_path,
                 const std::map<std::string, std::vector<float>>& values);

}  // namespace dojo::frontend
