// ONNX -> ir::Graph. One Importer walks the (topologically sorted) ONNX graph once; each op type has one
// function that maps it onto primitives. int64 "glue" is folded to constants on the static shapes.
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <variant>

#include "dojo/frontend/onnx.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"
#include "onnx/onnx_pb.h"

namespace dojo::frontend {
namespace {

using ir::NodeId;

constexpr std::int64_t kMinOpset = 13;
constexpr std::int64_t kMaxOpset = 17;

// A folded int64 tensor: its elements and whether it is a scalar (rank 0) or a vector.
struct Ints {
    std::vector<std::int64_t> values;
    bool scalar = false;
};
using Value = std::variant<NodeId, Ints>;

std::vector<float> float_data(const onnx::TensorProto& t) {
    if (t.has_raw_data()) {
        const std::string& raw = t.raw_data();
        std::vector<float> values(raw.size() / sizeof(float));
        std::memcpy(values.data(), raw.data(), values.size() * sizeof(float));  // ONNX raw data is little-endian
        return values;
    }
    return {t.float_data().begin(), t.float_data().end()};
}

std::vector<std::int64_t> int64_data(const onnx::TensorProto& t) {
    if (t.has_raw_data()) {
        const std::string& raw = t.raw_data();
        std::vector<std::int64_t> values(raw.size() / sizeof(std::int64_t));
        std::memcpy(values.data(), raw.data(), values.size() * sizeof(std::int64_t));
        return values;
    }
    return {t.int64_data().begin(), t.int64_data().end()};
}

std::int64_t element_count(const onnx::TensorProto& t) {
    std::int64_t n = 1;
    for (const std::int64_t d : t.dims()) {
        n *= d;
    }
    return n;
}

onnx::ModelProto parse_model(const std::string& bytes, const std::string& name) {
    onnx::ModelProto model;
    if (bytes.empty() || !model.ParseFromString(bytes) || !model.has_graph()) {
        throw ImportError(name + " is not a valid ONNX model (it does not parse as one: truncated, corrupted, or "
                          "another format?)");
    }
    return model;
}

std::string read_file(const std::string& path) {
    if (!std::filesystem::exists(path)) {
        throw ImportError("ONNX model " + path + " does not exist");
    }
    std::ifstream file(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

onnx::ModelProto read_model(const std::string& path) { return parse_model(read_file(path), path); }

class Importer {
public:
    Importer(const onnx::ModelProto& model, std::string path, std::int64_t batch)
        : model_(model), path_(std::move(path)), batch_(batch) {}

    OnnxModel run() {
        check_opset();
        const onnx::GraphProto& graph = model_.graph();
        for (const onnx::TensorProto& t : graph.initializer()) {
            initializers_[t.name()] = &t;
        }
        bind_input(graph);
        for (int i = 0; i < graph.node_size(); ++i) {
            convert(graph.node(i), i);
        }
        if (graph.output_size() != 1) {
            throw ImportError(path_ + " has " + std::to_string(graph.output_size()) +
                              " outputs; a trainable classifier has exactly one (its logits)");
        }
        result_.output = tensor(graph.output(0).name(), "the graph output");
        result_.graph.mark_output(result_.output);
        result_.path = path_;
        return std::move(result_);
    }

private:
    void check_opset() {
        for (const onnx::OperatorSetIdProto& set : model_.opset_import()) {
            if (set.domain().empty() || set.domain() == "ai.onnx") {
                result_.opset = set.version();
            }
        }
        if (result_.opset < kMinOpset || result_.opset > kMaxOpset) {
            throw ImportError(path_ + " uses ONNX opset " + std::to_string(result_.opset) + "; supported are " +
                              std::to_string(kMinOpset) + ".." + std::to_string(kMaxOpset) +
                              " (export with torch.onnx.export(..., opset_version=13..17))");
        }
    }

    void bind_input(const onnx::GraphProto& graph) {
        std::vector<const onnx::ValueInfoProto*> inputs;
        for (const onnx::ValueInfoProto& v : graph.input()) {
            if (!initializers_.contains(v.name())) {
                inputs.push_back(&v);
            }
        }
        if (inputs.size() != 1) {
            throw ImportError(path_ + " has " + std::to_string(inputs.size()) +
                              " data inputs; a trainable classifier has exactly one");
        }
        const onnx::ValueInfoProto& input = *inputs.front();
        const onnx::TypeProto_Tensor& type = input.type().tensor_type();
        if (type.elem_type() != onnx::TensorProto::FLOAT) {
            throw ImportError(path_ + ": input '" + input.name() + "' is not a float tensor");
        }
        std::vector<std::int64_t> dims;
        for (int d = 0; d < type.shape().dim_size(); ++d) {
            const onnx::TensorShapeProto_Dimension& dim = type.shape().dim(d);
            if (d == 0) {
                dims.push_back(batch_);  // the batch dimension, fixed or named, becomes the training batch
            } else if (dim.has_dim_value() && dim.dim_value() > 0) {
                dims.push_back(dim.dim_value());
            } else {
                throw ImportError(path_ + ": input '" + input.name() + "' dimension " + std::to_string(d) +
                                  " is not fixed; only the first (batch) dimension may be dynamic");
            }
        }
        if (dims.empty()) {
            throw ImportError(path_ + ": input '" + input.name() + "' is a scalar; it needs a batch dimension");
        }
        result_.input = result_.graph.add_input(input.name(), {ir::DType::F32, ir::Shape(dims)});
        values_[input.name()] = result_.input;
    }

    // ---- looking up operands ----------------------------------------------------------------------------------

    [[noreturn]] void fail(const onnx::NodeProto& node, int index, const std::string& message) const {
        const std::string who = node.name().empty() ? "node #" + std::to_string(index) : "node '" + node.name() + "'";
        throw ImportError(path_ + ": " + who + " (" + node.op_type() + "): " + message);
    }

    std::optional<Value> lookup(const std::string& name) {
        if (const auto found = values_.find(name); found != values_.end()) {
            return found->second;
        }
        const auto init = initializers_.find(name);
        if (init == initializers_.end()) {
            return std::nullopt;
        }
        const onnx::TensorProto& t = *init->second;
        Value value;
        if (t.data_type() == onnx::TensorProto::FLOAT) {
            const NodeId parameter = result_.graph.add_parameter(
                name, {ir::DType::F32, ir::Shape(std::vector<std::int64_t>(t.dims().begin(), t.dims().end()))});
            std::vector<float> data = float_data(t);
            if (static_cast<std::int64_t>(data.size()) != element_count(t)) {
                throw ImportError(path_ + ": initializer '" + name + "' holds " + std::to_string(data.size()) +
                                  " values for its shape of " + std::to_string(element_count(t)));
            }
            result_.initial_values[parameter] = std::move(data);
            value = parameter;
        } else if (t.data_type() == onnx::TensorProto::INT64) {
            value = Ints{int64_data(t), t.dims_size() == 0};
        } else {
            throw ImportError(path_ + ": initializer '" + name + "' has element type " +
                              std::to_string(t.data_type()) + "; only float and int64 are supported");
        }
        values_[name] = value;
        return value;
    }

    NodeId tensor(const std::string& name, const std::string& role) {
        const std::optional<Value> v = lookup(name);
        if (!v) {
            throw ImportError(path_ + ": " + role + " '" + name + "' is produced by no node");
        }
        if (const NodeId* id = std::get_if<NodeId>(&*v)) {
            return *id;
        }
        throw ImportError(path_ + ": " + role + " '" + name +
                          "' is an int64 constant used as data; only shape arguments may be int64");
    }

    // The name of input `which`; every access to a node's inputs goes through here (fuzzing found the unchecked ones).
    const std::string& input_name(const onnx::NodeProto& node, int index, int which) {
        if (which >= node.input_size() || node.input(which).empty()) {
            fail(node, index, "input " + std::to_string(which) + " is missing");
        }
        return node.input(which);
    }

    NodeId input(const onnx::NodeProto& node, int index, int which) {
        return tensor(input_name(node, index, which), "input of node '" + node.name() + "'");
    }

    Ints ints(const onnx::NodeProto& node, int index, int which) {
        const std::optional<Value> v = lookup(input_name(node, index, which));
        if (!v || !std::holds_alternative<Ints>(*v)) {
            fail(node, index, "input '" + node.input(which) +
                                  "' must be a constant int64 tensor (computed shapes are not supported)");
        }
        return std::get<Ints>(*v);
    }

    static const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const std::string& name) {
        for (const onnx::AttributeProto& a : node.attribute()) {
            if (a.name() == name) {
                return &a;
            }
        }
        return nullptr;
    }
    static std::int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, std::int64_t fallback) {
        const onnx::AttributeProto* a = attribute(node, name);
        return a ? a->i() : fallback;
    }
    static float float_attribute(const onnx::NodeProto& node, const std::string& name, float fallback) {
        const onnx::AttributeProto* a = attribute(node, name);
        return a ? a->f() : fallback;
    }

    void define(const onnx::NodeProto& node, Value value) {
        if (node.output_size() < 1) {
            return;
        }
        values_[node.output(0)] = std::move(value);
    }

    // ---- conversion -------------------------------------------------------------------------------------------

    void convert(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const std::string& op = node.op_type();
        const std::string name = node.name();
        using Unary = NodeId (*)(ir::Graph&, NodeId, std::string);
        using Binary = NodeId (*)(ir::Graph&, NodeId, NodeId, std::string);
        static const std::map<std::string, Unary> unary = {
            {"Relu", &ir::relu}, {"Sigmoid", &ir::sigmoid}, {"Tanh", &ir::tanh}, {"Exp", &ir::exp},
            {"Log", &ir::log},   {"Sqrt", &ir::sqrt},       {"Neg", &ir::neg},   {"Erf", &ir::erf}};
        static const std::map<std::string, Binary> binary = {
            {"Add", &ir::add}, {"Sub", &ir::sub}, {"Mul", &ir::mul}, {"Div", &ir::div}, {"MatMul", &ir::matmul}};
        try {
            if (const auto u = unary.find(op); u != unary.end()) {
                define(node, u->second(g, input(node, index, 0), name));
            } else if (const auto b = binary.find(op); b != binary.end()) {
                define(node, b->second(g, input(node, index, 0), input(node, index, 1), name));
            } else if (op == "Gemm") {
                define(node, gemm(node, index));
            } else if (op == "Conv") {
                define(node, conv(node, index));
            } else if (op == "MaxPool") {
                define(node, max_pool(node, index));
            } else if (op == "Identity") {
                const std::optional<Value> v = lookup(input_name(node, index, 0));
                if (!v) {
                    fail(node, index, "its input is produced by no node");
                }
                define(node, *v);
            } else if (op == "Flatten") {
                define(node, flatten(node, index));
            } else if (op == "Reshape") {
                define(node, reshape(node, index));
            } else if (op == "Transpose") {
                define(node, transpose(node, index));
            } else if (op == "Softmax" || op == "LogSoftmax") {
                const NodeId y = ir::log_softmax(g, input(node, index, 0),
                                                 static_cast<int>(int_attribute(node, "axis", -1)), name);
                define(node, op == "Softmax" ? ir::exp(g, y) : y);
            } else if (op == "Constant" || op == "Shape" || op == "Gather" || op == "Unsqueeze" || op == "Concat" ||
                       op == "Cast") {
                define(node, fold(node, index));
            } else {
                fail(node, index, "op type " + op + " is not supported; supported: " + onnx_supported_ops());
            }
        } catch (const GraphError& error) {
            fail(node, index, error.what());
        }
    }

    NodeId gemm(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        NodeId a = input(node, index, 0);
        NodeId b = input(node, index, 1);
        if (int_attribute(node, "transA", 0)) {
            a = ir::transpose_last_two(g, a);
        }
        if (int_attribute(node, "transB", 0)) {
            b = ir::transpose_last_two(g, b);
        }
        NodeId y = ir::matmul(g, a, b, node.name());
        if (const float alpha = float_attribute(node, "alpha", 1.0f); alpha != 1.0f) {
            y = ir::mul(g, y, ir::scalar(g, alpha));
        }
        if (node.input_size() > 2 && !node.input(2).empty()) {
            NodeId c = input(node, index, 2);
            if (const float beta = float_attribute(node, "beta", 1.0f); beta != 1.0f) {
                c = ir::mul(g, c, ir::scalar(g, beta));
            }
            y = ir::add(g, y, c);
        }
        return y;
    }

    std::vector<std::int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name,
                                             std::vector<std::int64_t> fallback) const {
        const onnx::AttributeProto* a = attribute(node, name);
        return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
    }

    // pads in ONNX order (top, left, bottom, right for 2-D), checking the 2-D, explicit-padding case we support.
    std::array<std::int64_t, 4> pads_2d(const onnx::NodeProto& node, int index) {
        const onnx::AttributeProto* auto_pad = attribute(node, "auto_pad");
        if (auto_pad && auto_pad->s() != "NOTSET") {
            fail(node, index, "auto_pad=" + auto_pad->s() + " is not supported; export with explicit pads");
        }
        const std::vector<std::int64_t> pads = ints_attribute(node, "pads", {0, 0, 0, 0});
        if (pads.size() != 4) {
            fail(node, index, "only 2-D (NCHW) windows are supported");
        }
        return {pads[0], pads[1], pads[2], pads[3]};
    }

    NodeId conv(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const NodeId w = input(node, index, 1);
        const std::vector<std::int64_t> strides = ints_attribute(node, "strides", {1, 1});
        const std::vector<std::int64_t> dilations = ints_attribute(node, "dilations", {1, 1});
        if (strides.size() != 2 || dilations.size() != 2) {
            fail(node, index, "only 2-D (NCHW) convolutions are supported");
        }
        const ir::Conv2dAttrs attrs{{strides[0], strides[1]}, pads_2d(node, index), {dilations[0], dilations[1]},
                                    int_attribute(node, "group", 1)};
        NodeId y = ir::conv2d(g, x, w, attrs, node.name());
        if (node.input_size() > 2 && !node.input(2).empty()) {
            const NodeId bias = input(node, index, 2);
            const std::int64_t k = g.type(bias).shape.numel();
            y = ir::add(g, y, ir::reshape(g, bias, ir::Shape{k, 1, 1}));
        }
        return y;
    }

    NodeId max_pool(const onnx::NodeProto& node, int index) {
        const std::vector<std::int64_t> kernel = ints_attribute(node, "kernel_shape", {});
        const std::vector<std::int64_t> strides = ints_attribute(node, "strides", {1, 1});
        if (kernel.size() != 2 || strides.size() != 2) {
            fail(node, index, "only 2-D (NCHW) pooling is supported");
        }
        if (int_attribute(node, "ceil_mode", 0) != 0 || ints_attribute(node, "dilations", {1, 1}) != std::vector<std::int64_t>{1, 1} ||
            node.output_size() > 1) {
            fail(node, index, "ceil_mode, dilations and the Indices output are not supported");
        }
        return ir::max_pool2d(result_.graph, input(node, index, 0),
                              ir::PoolAttrs{{kernel[0], kernel[1]}, {strides[0], strides[1]}, pads_2d(node, index)},
                              node.name());
    }

    NodeId flatten(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = result_.graph.type(x).shape;
        const int axis = ir::normalize_axis(static_cast<int>(int_attribute(node, "axis", 1)), shape.rank() + 1,
                                            "Flatten");
        std::int64_t outer = 1;
        for (int d = 0; d < axis; ++d) {
            outer *= shape[d];
        }
        return ir::reshape(result_.graph, x, ir::Shape{outer, shape.numel() / std::max<std::int64_t>(outer, 1)},
                           node.name());
    }

    NodeId reshape(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape from = result_.graph.type(x).shape;
        const std::vector<std::int64_t> spec = ints(node, index, 1).values;
        if (int_attribute(node, "allowzero", 0) != 0) {
            fail(node, index, "allowzero=1 is not supported");
        }
        std::vector<std::int64_t> dims;
        int infer = -1;
        std::int64_t known = 1;
        for (std::size_t i = 0; i < spec.size(); ++i) {
            std::int64_t d = spec[i];
            if (d == 0) {
                if (static_cast<int>(i) >= from.rank()) {
                    fail(node, index, "shape entry 0 copies a dimension the input does not have");
                }
                d = from[static_cast<int>(i)];
            }
            if (d == -1) {
                if (infer >= 0) {
                    fail(node, index, "more than one -1 in the target shape");
                }
                infer = static_cast<int>(i);
                dims.push_back(1);
                continue;
            }
            known *= d;
            dims.push_back(d);
        }
        if (infer >= 0) {
            if (known == 0 || from.numel() % known != 0) {
                fail(node, index, "cannot infer -1 reshaping " + from.to_string());
            }
            dims[static_cast<std::size_t>(infer)] = from.numel() / known;
        }
        return ir::reshape(result_.graph, x, ir::Shape(dims), node.name());
    }

    NodeId transpose(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const int rank = result_.graph.type(x).shape.rank();
        std::vector<int> perm(static_cast<std::size_t>(rank));
        std::iota(perm.rbegin(), perm.rend(), 0);  // the default reverses the axes
        if (const onnx::AttributeProto* a = attribute(node, "perm")) {
            perm.assign(a->ints().begin(), a->ints().end());
        }
        return ir::transpose(result_.graph, x, perm, node.name());
    }

    // The int64 shape glue, evaluated on static shapes.
    Value fold(const onnx::NodeProto& node, int index) {
        const std::string& op = node.op_type();
        if (op == "Constant") {
            const onnx::AttributeProto* a = attribute(node, "value");
            if (!a || !a->has_t()) {
                fail(node, index, "only the 'value' tensor form of Constant is supported");
            }
            const onnx::TensorProto& t = a->t();
            if (t.data_type() == onnx::TensorProto::INT64) {
                return Ints{int64_data(t), t.dims_size() == 0};
            }
            if (t.data_type() == onnx::TensorProto::FLOAT) {
                const std::vector<float> data = float_data(t);
                if (data.empty() || std::any_of(data.begin(), data.end(), [&](float v) { return v != data[0]; })) {
                    fail(node, index, "float constants must have one repeated value (a Fill); this one varies");
                }
                return ir::fill(result_.graph, data[0],
                                {ir::DType::F32, ir::Shape(std::vector<std::int64_t>(t.dims().begin(), t.dims().end()))},
                                node.name());
            }
            fail(node, index, "constant element type " + std::to_string(t.data_type()) + " is not supported");
        }
        if (op == "Shape") {
            const ir::Shape shape = result_.graph.type(input(node, index, 0)).shape;
            std::int64_t start = int_attribute(node, "start", 0);
            std::int64_t end = int_attribute(node, "end", shape.rank());
            start = std::clamp<std::int64_t>(start < 0 ? start + shape.rank() : start, 0, shape.rank());
            end = std::clamp<std::int64_t>(end < 0 ? end + shape.rank() : end, 0, shape.rank());
            Ints result;
            for (std::int64_t d = start; d < end; ++d) {
                result.values.push_back(shape[static_cast<int>(d)]);
            }
            return result;
        }
        if (op == "Cast") {
            const std::optional<Value> v = lookup(input_name(node, index, 0));
            if (v && std::holds_alternative<NodeId>(*v) &&
                int_attribute(node, "to", onnx::TensorProto::FLOAT) == onnx::TensorProto::FLOAT) {
                return *v;
            }
            if (v && std::holds_alternative<Ints>(*v) &&
                int_attribute(node, "to", 0) == onnx::TensorProto::INT64) {
                return *v;
            }
            fail(node, index, "only casts that keep float as float or int64 as int64 are supported");
        }
        if (op == "Gather") {
            const Ints data = ints(node, index, 0);
            const Ints indices = ints(node, index, 1);
            if (int_attribute(node, "axis", 0) != 0 || data.scalar) {
                fail(node, index, "only gathering from a 1-D int64 constant along axis 0 is supported");
            }
            Ints result{{}, indices.scalar};
            for (std::int64_t i : indices.values) {
                i = i < 0 ? i + static_cast<std::int64_t>(data.values.size()) : i;
                if (i < 0 || i >= static_cast<std::int64_t>(data.values.size())) {
                    fail(node, index, "index out of range");
                }
                result.values.push_back(data.values[static_cast<std::size_t>(i)]);
            }
            return result;
        }
        if (op == "Unsqueeze") {
            Ints x = ints(node, index, 0);
            if (!x.scalar) {
                fail(node, index, "only unsqueezing an int64 scalar is supported");
            }
            x.scalar = false;
            return x;
        }
        // Concat of int64 vectors along axis 0.
        Ints result;
        for (int i = 0; i < node.input_size(); ++i) {
            const Ints part = ints(node, index, i);
            result.values.insert(result.values.end(), part.values.begin(), part.values.end());
        }
        return result;
    }

    const onnx::ModelProto& model_;
    std::string path_;
    std::int64_t batch_;
    std::map<std::string, const onnx::TensorProto*> initializers_;
    std::map<std::string, Value> values_;
    OnnxModel result_;
};

}  // namespace

std::string onnx_supported_ops() {
    return "Add, Cast, Concat, Constant, Conv, Div, Erf, Exp, Flatten, Gather, Gemm, Identity, Log, LogSoftmax, "
           "MatMul, MaxPool, Mul, Neg, Relu, Reshape, Shape, Sigmoid, Softmax, Sqrt, Sub, Tanh, Transpose, Unsqueeze";
}

OnnxModel import_onnx_bytes(const std::string& bytes, const std::string& name, std::int64_t batch) {
    if (batch <= 0) {
        throw UsageError("batch must be positive to import " + name);
    }
    const onnx::ModelProto model = parse_model(bytes, name);
    return Importer(model, name, batch).run();
}

OnnxModel import_onnx(const std::string& path, std::int64_t batch) {
    return import_onnx_bytes(read_file(path), path, batch);
}

void export_onnx(const std::string& source_path, const std::string& out_path,
                 const std::map<std::string, std::vector<float>>& values) {
    onnx::ModelProto model = read_model(source_path);
    std::size_t replaced = 0;
    for (onnx::TensorProto& t : *model.mutable_graph()->mutable_initializer()) {
        const auto found = values.find(t.name());
        if (found == values.end()) {
            continue;
        }
        if (t.data_type() != onnx::TensorProto::FLOAT ||
            static_cast<std::int64_t>(found->second.size()) != element_count(t)) {
            throw ImportError("cannot export '" + t.name() + "': the model's initializer has " +
                              std::to_string(element_count(t)) + " float values, the trained tensor " +
                              std::to_string(found->second.size()));
        }
        t.clear_float_data();
        t.set_raw_data(std::string(reinterpret_cast<const char*>(found->second.data()),
                                   found->second.size() * sizeof(float)));
        ++replaced;
    }
    if (replaced != values.size()) {
        throw ImportError("cannot export to " + out_path + ": " + std::to_string(values.size() - replaced) +
                          " trained tensor(s) have no initializer of the same name in " + source_path);
    }
    const std::string temp = out_path + ".tmp";
    {
        std::ofstream file(temp, std::ios::binary | std::ios::trunc);
        if (!file || !model.SerializeToOstream(&file) || !file.flush()) {
            throw IoError("cannot write " + temp + " (is the directory writable?)");
        }
    }
    std::error_code error;
    std::filesystem::rename(temp, out_path, error);
    if (error) {
        throw IoError("cannot move " + temp + " to " + out_path + ": " + error.message());
    }
}

}  // namespace dojo::frontend
