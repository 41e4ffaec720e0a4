// ONNX -> ir::Graph. One Importer walks the (topologically sorted) ONNX graph once; each op type has one
// function that maps it onto primitives. int64 "glue" is folded to constants on the static shapes.
#include <algorithm>
#include <charconv>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

#include "dojo/frontend/onnx.h"
#include "dojo/frontend/layers.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"
#include "onnx/onnx_pb.h"
#include "onnx_constant.h"

namespace dojo::frontend {
namespace {

using ir::NodeId;

constexpr std::int64_t kMinOpset = 13;
constexpr std::int64_t kMaxOpset = 17;

using folding::Constant;
using folding::ElementKind;
using Value = std::variant<NodeId, Constant>;

std::vector<float> float_data(const onnx::TensorProto& t) {
    if (t.has_raw_data()) {
        const std::string& raw = t.raw_data();
        std::vector<float> values(raw.size() / sizeof(float));
        std::memcpy(values.data(), raw.data(), values.size() * sizeof(float));  // ONNX raw data is little-endian
        return values;
    }
    return {t.float_data().begin(), t.float_data().end()};
}

// Any numeric initializer or Constant value as a folded constant; nullopt for element types we do not fold.
std::optional<Constant> constant_of(const onnx::TensorProto& t) {
    Constant c;
    c.dims.assign(t.dims().begin(), t.dims().end());
    const std::string& raw = t.raw_data();
    auto read_raw = [&](auto sample) {
        using T = decltype(sample);
        std::vector<T> values(raw.size() / sizeof(T));
        std::memcpy(values.data(), raw.data(), values.size() * sizeof(T));  // ONNX raw data is little-endian
        c.values.assign(values.begin(), values.end());
    };
    switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
            c.kind = ElementKind::Float;
            t.has_raw_data() ? read_raw(float{}) : c.values.assign(t.float_data().begin(), t.float_data().end());
            break;
        case onnx::TensorProto::DOUBLE:
            c.kind = ElementKind::Float;
            t.has_raw_data() ? read_raw(double{}) : c.values.assign(t.double_data().begin(), t.double_data().end());
            break;
        case onnx::TensorProto::INT64:
            c.kind = ElementKind::Int;
            t.has_raw_data() ? read_raw(std::int64_t{}) : c.values.assign(t.int64_data().begin(), t.int64_data().end());
            break;
        case onnx::TensorProto::INT32:
            c.kind = ElementKind::Int;
            t.has_raw_data() ? read_raw(std::int32_t{}) : c.values.assign(t.int32_data().begin(), t.int32_data().end());
            break;
        case onnx::TensorProto::BOOL:
            c.kind = ElementKind::Bool;
            t.has_raw_data() ? read_raw(std::uint8_t{}) : c.values.assign(t.int32_data().begin(), t.int32_data().end());
            break;
        default:
            return std::nullopt;
    }
    try {
        if (static_cast<std::int64_t>(c.values.size()) != c.count()) {
            return std::nullopt;
        }
    } catch (const std::invalid_argument&) {
        return std::nullopt;  // negative or absurd dimensions
    }
    return c;
}

std::optional<ElementKind> element_kind(std::int64_t onnx_type) {
    switch (onnx_type) {
        case onnx::TensorProto::FLOAT:
        case onnx::TensorProto::DOUBLE:
        case onnx::TensorProto::FLOAT16:
        case onnx::TensorProto::BFLOAT16:
            return ElementKind::Float;
        case onnx::TensorProto::INT64:
        case onnx::TensorProto::INT32:
            return ElementKind::Int;
        case onnx::TensorProto::BOOL:
            return ElementKind::Bool;
        default:
            return std::nullopt;
    }
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

// Protobuf's limit for one message: no valid ONNX file (without external data) is larger.
constexpr std::uint64_t kMaxOnnxBytes = std::uint64_t{2} << 30;

std::string read_file(const std::string& path) { return read_regular_file(path, "ONNX model", kMaxOnnxBytes); }

onnx::ModelProto read_model(const std::string& path) { return parse_model(read_file(path), path); }

// The key of imported dropout masks: fixed, so that a run is reproducible; the step and the layer vary the masks.
constexpr std::uint64_t kDropoutSeed = 0x44524F504F5554ULL;  // "DROPOUT"

// Ops converted only when every input is a constant (shape arithmetic that exporters emit): fold_constant's.
constexpr std::array<std::string_view, 10> kConstantOnlyOps = {"And", "ConstantOfShape", "Equal", "Greater",
                                                               "Less", "Mod", "Not", "Or", "Range", "ScatterND"};

class Importer {
public:
    friend std::string dojo::frontend::onnx_supported_ops();

    Importer(const onnx::ModelProto& model, std::string path, std::int64_t batch, ImportMode mode)
        : model_(model), path_(std::move(path)), batch_(batch), mode_(mode) {}

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
                              " outputs; a trainable model has exactly one");
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
                              " data inputs; a trainable model has exactly one");
        }
        const onnx::ValueInfoProto& input = *inputs.front();
        const onnx::TypeProto_Tensor& type = input.type().tensor_type();
        const bool token_ids =
            type.elem_type() == onnx::TensorProto::INT64 || type.elem_type() == onnx::TensorProto::INT32;
        if (type.elem_type() != onnx::TensorProto::FLOAT && !token_ids) {
            throw ImportError(path_ + ": input '" + input.name() +
                              "' is neither a float tensor nor integer ids (int64/int32, e.g. token ids)");
        }
        std::vector<std::int64_t> dims;
        for (int d = 0; d < type.shape().dim_size(); ++d) {
            const onnx::TensorShapeProto_Dimension& dim = type.shape().dim(d);
            if (d == 0) {
                dims.push_back(batch_);  // the batch dimension, fixed or named, becomes the training batch
                exported_batch_ = dim.has_dim_value() ? dim.dim_value() : 0;
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
        // Integer ids are held as whole-number floats (exact up to 2^24), as the dataset delivers them.
        result_.input = result_.graph.add_input(input.name(), {token_ids ? ir::DType::I64 : ir::DType::F32, ir::Shape(dims)});
        values_[input.name()] = result_.input;
    }

    // ---- looking up operands ----------------------------------------------------------------------------------

    [[noreturn]] void fail(const onnx::NodeProto& node, int index, const std::string& message) const {
        const std::string who = node.name().empty() ? "node #" + std::to_string(index) : "node '" + node.name() + "'";
        throw ImportError(path_ + ": " + who + " (" + node.op_type() + "): " + message);
    }

    std::vector<float> initializer_floats(const std::string& name, const onnx::TensorProto& t) const {
        std::vector<float> data = float_data(t);
        if (static_cast<std::int64_t>(data.size()) != element_count(t)) {
            throw ImportError(path_ + ": initializer '" + name + "' holds " + std::to_string(data.size()) +
                              " values for its shape of " + std::to_string(element_count(t)));
        }
        return data;
    }

    static ir::TensorType float_type(const onnx::TensorProto& t) {
        return {ir::DType::F32, ir::Shape(std::vector<std::int64_t>(t.dims().begin(), t.dims().end()))};
    }

    // A value by name: computed, or an initializer seen for the first time (float: a Parameter; else a constant).
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
            const NodeId parameter = result_.graph.add_parameter(name, float_type(t));
            result_.initial_values[parameter] = initializer_floats(name, t);
            value = parameter;
        } else if (std::optional<Constant> c = constant_of(t)) {
            value = std::move(*c);
        } else {
            throw ImportError(path_ + ": initializer '" + name + "' has element type " +
                              std::to_string(t.data_type()) + " or a malformed payload; supported are float, double, "
                              "int64, int32 and bool");
        }
        values_[name] = value;
        return value;
    }

    // A float initializer as a State leaf (BatchNormalization running statistics), created once.
    NodeId state(const onnx::NodeProto& node, int index, int which) {
        const std::string& name = input_name(node, index, which);
        if (const auto found = values_.find(name); found != values_.end()) {
            if (const NodeId* id = std::get_if<NodeId>(&found->second);
                id != nullptr && result_.graph.node(*id).op == ir::OpKind::State) {
                return *id;
            }
            fail(node, index, "running statistic '" + name + "' is also used as another kind of value");
        }
        const auto init = initializers_.find(name);
        if (init == initializers_.end() || init->second->data_type() != onnx::TensorProto::FLOAT) {
            fail(node, index, "running statistic '" + name + "' must be a float initializer");
        }
        const NodeId id = result_.graph.add_state(name, float_type(*init->second));
        result_.initial_values[id] = initializer_floats(name, *init->second);
        values_[name] = id;
        return id;
    }

    // A constant as a graph node: Fill when every element is equal, else Constant.
    NodeId materialize(const Constant& c, const std::string& name) {
        const ir::Shape shape(c.dims);
        if (c.kind == ElementKind::Int) {
            throw ImportError(path_ + ": the integer constant '" + name +
                              "' is used as data; integer tensors may only be shape arguments");
        }
        if (!c.values.empty() &&
            std::all_of(c.values.begin(), c.values.end(), [&](double v) { return v == c.values[0]; })) {
            return ir::fill(result_.graph, c.values[0], {ir::DType::F32, shape});
        }
        return ir::constant(result_.graph, shape, std::vector<float>(c.values.begin(), c.values.end()), name);
    }

    NodeId tensor(const std::string& name, const std::string& role) {
        const std::optional<Value> v = lookup(name);
        if (!v) {
            throw ImportError(path_ + ": " + role + " '" + name + "' is produced by no node");
        }
        if (const NodeId* id = std::get_if<NodeId>(&*v)) {
            return *id;
        }
        const NodeId id = materialize(std::get<Constant>(*v), name);
        values_[name] = id;
        return id;
    }

    // The name of input `which`; every access to a node's inputs goes through here (fuzzing found the unchecked ones).
    const std::string& input_name(const onnx::NodeProto& node, int index, int which) {
        if (which >= node.input_size() || node.input(which).empty()) {
            fail(node, index, "input " + std::to_string(which) + " is missing");
        }
        return node.input(which);
    }
    bool has_input(const onnx::NodeProto& node, int which) const {
        return which < node.input_size() && !node.input(which).empty();
    }

    NodeId input(const onnx::NodeProto& node, int index, int which) {
        return tensor(input_name(node, index, which), "input of node '" + node.name() + "'");
    }

    Value value(const onnx::NodeProto& node, int index, int which) {
        std::optional<Value> v = lookup(input_name(node, index, which));
        if (!v) {
            fail(node, index, "input '" + node.input(which) + "' is produced by no node");
        }
        return std::move(*v);
    }

    // A constant input (shape arguments, masks); fails if it is computed from data.
    Constant constant(const onnx::NodeProto& node, int index, int which) {
        const Value v = value(node, index, which);
        if (!std::holds_alternative<Constant>(v)) {
            fail(node, index, "input '" + node.input(which) +
                                  "' must be a constant (it is computed from data; dynamic shapes are not supported)");
        }
        return std::get<Constant>(v);
    }
    std::vector<std::int64_t> ints(const onnx::NodeProto& node, int index, int which) {
        return constant(node, index, which).ints();
    }
    bool all_constant(const onnx::NodeProto& node) {
        for (int i = 0; i < node.input_size(); ++i) {
            if (node.input(i).empty()) {
                continue;
            }
            const std::optional<Value> v = lookup(node.input(i));
            if (!v || !std::holds_alternative<Constant>(*v)) {
                return false;
            }
        }
        return node.input_size() > 0;
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
    // A float attribute as its exporter wrote it: ONNX stores 0.001 as the float32 nearest it, 0.0010000000475; the
    // shortest decimal that rounds to that float is the value the model's author gave (PyTorch's eps=1e-3).
    static double as_written(float value) {
        char text[32];
        const auto end = std::to_chars(text, text + sizeof text, value).ptr;
        return std::strtod(std::string(text, end).c_str(), nullptr);
    }
    static std::string string_attribute(const onnx::NodeProto& node, const std::string& name, std::string fallback) {
        const onnx::AttributeProto* a = attribute(node, name);
        return a ? a->s() : fallback;
    }
    std::vector<std::int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name,
                                             std::vector<std::int64_t> fallback) const {
        const onnx::AttributeProto* a = attribute(node, name);
        return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : fallback;
    }
    // Axes given as an attribute (older opsets) or as input `which` (newer); empty when neither.
    std::vector<std::int64_t> axes_of(const onnx::NodeProto& node, int index, int which) {
        if (has_input(node, which)) {
            return ints(node, index, which);
        }
        return ints_attribute(node, "axes", {});
    }

    void define(const onnx::NodeProto& node, Value value) {
        if (node.output_size() < 1) {
            return;
        }
        values_[node.output(0)] = std::move(value);
    }

    ir::Shape shape_of(NodeId id) const { return result_.graph.type(id).shape; }

    // ---- conversion -------------------------------------------------------------------------------------------

    // ---- conversion -------------------------------------------------------------------------------------------

    using Handler = void (Importer::*)(const onnx::NodeProto& node, int index);

    // The importer's table: every ONNX op it converts, by name (onnx_supported_ops lists these keys). Ops evaluated
    // on constants only are fold_constant's (kConstantOnlyOps).
    static const std::map<std::string, Handler, std::less<>>& handlers() {
        static const std::map<std::string, Handler, std::less<>> table = {
            {"Relu", &Importer::unary_map},     {"Sigmoid", &Importer::unary_map},   {"Tanh", &Importer::unary_map},
            {"Exp", &Importer::unary_map},      {"Log", &Importer::unary_map},       {"Sqrt", &Importer::unary_map},
            {"Neg", &Importer::unary_map},      {"Erf", &Importer::unary_map},       {"Add", &Importer::binary_map},
            {"Sub", &Importer::binary_map},     {"Mul", &Importer::binary_map},      {"Div", &Importer::binary_map},
            {"MatMul", &Importer::binary_map},  {"Max", &Importer::min_or_max},      {"Min", &Importer::min_or_max},
            {"Clip", &Importer::clip},          {"HardSigmoid", &Importer::hard_sigmoid},
            {"HardSwish", &Importer::hard_swish}, {"Gemm", &Importer::gemm},         {"Conv", &Importer::conv},
            {"MaxPool", &Importer::max_pool},   {"GlobalAveragePool", &Importer::global_average_pool},
            {"AveragePool", &Importer::average_pool}, {"Pad", &Importer::pad},
            {"BatchNormalization", &Importer::batch_norm}, {"LayerNormalization", &Importer::layer_norm},
            {"ReduceMean", &Importer::reduce},  {"ReduceSum", &Importer::reduce},    {"Pow", &Importer::pow},
            {"Identity", &Importer::identity},  {"Dropout", &Importer::dropout},     {"Flatten", &Importer::flatten},
            {"Reshape", &Importer::reshape},    {"Transpose", &Importer::transpose},
            {"Unsqueeze", &Importer::squeeze_or_unsqueeze},
            {"Squeeze", &Importer::squeeze_or_unsqueeze}, {"Expand", &Importer::expand}, {"Slice", &Importer::slice},
            {"Split", &Importer::split},        {"Gather", &Importer::gather},       {"Concat", &Importer::concat},
            {"Where", &Importer::where},        {"Cast", &Importer::cast},           {"Softmax", &Importer::softmax},
            {"LogSoftmax", &Importer::softmax}, {"Shape", &Importer::shape_of_value}, {"Constant", &Importer::unfolded},
        };
        return table;
    }

    void convert(const onnx::NodeProto& node, int index) {
        const std::string& op = node.op_type();
        try {
            if (fold_constant(node, index)) {
                return;
            }
            const auto handler = handlers().find(op);
            if (handler == handlers().end()) {
                unsupported(node, index);
            }
            (this->*handler->second)(node, index);
        } catch (const GraphError& error) {
            fail(node, index, std::string(error.what()) + fixed_batch_hint());
        } catch (const std::invalid_argument& error) {
            fail(node, index, error.what());
        }
    }

    // What to do about a shape error in a model exported at a fixed batch other than the one being imported.
    std::string fixed_batch_hint() const {
        if (exported_batch_ <= 0 || exported_batch_ == batch_) {
            return "";
        }
        return "; the model was exported at a fixed batch of " + std::to_string(exported_batch_) +
               " (its input has no dynamic batch), and this node's shapes keep it in a way the importer cannot "
               "rebatch: export with torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}}), or use batch " +
               std::to_string(exported_batch_);
    }

    // An op the table lacks: named with its opset, the closest rewrite where one is known, and what is supported.
    [[noreturn]] void unsupported(const onnx::NodeProto& node, int index) const {
        static const std::map<std::string, std::string, std::less<>> rewrites = {
            {"Relu6", "export ReLU6 as Clip(0, 6) (PyTorch does)"},
            {"Elu", "replace ELU by ReLU, or by x * sigmoid(x) (SiLU: Mul and Sigmoid)"},
            {"Selu", "replace SELU by ReLU, or by x * sigmoid(x) (SiLU: Mul and Sigmoid)"},
            {"LeakyRelu", "replace LeakyReLU by Max(x, alpha * x) (Max and Mul are supported)"},
            {"Einsum", "write the contraction with torch.matmul and permute (MatMul and Transpose)"},
            {"InstanceNormalization", "use nn.GroupNorm or nn.LayerNorm, exported as LayerNormalization"},
            {"Resize", "write nearest-neighbour upsampling as repeat_interleave (Expand and Reshape)"},
        };
        const std::string& op = node.op_type();
        const auto rewrite = rewrites.find(op);
        fail(node, index, "op type " + op + " (opset " + std::to_string(result_.opset) + ") is not supported" +
                              (rewrite != rewrites.end() ? "; instead: " + rewrite->second : std::string()) +
                              "; supported: " + onnx_supported_ops());
    }

    void unary_map(const onnx::NodeProto& node, int index) {
        using Unary = NodeId (*)(ir::Graph&, NodeId, std::string);
        static const std::map<std::string, Unary, std::less<>> unary = {
            {"Relu", &ir::relu}, {"Sigmoid", &ir::sigmoid}, {"Tanh", &ir::tanh}, {"Exp", &ir::exp},
            {"Log", &ir::log},   {"Sqrt", &ir::sqrt},       {"Neg", &ir::neg},   {"Erf", &ir::erf}};
        define(node, unary.at(node.op_type())(result_.graph, input(node, index, 0), node.name()));
    }

    void binary_map(const onnx::NodeProto& node, int index) {
        using Binary = NodeId (*)(ir::Graph&, NodeId, NodeId, std::string);
        static const std::map<std::string, Binary, std::less<>> binary = {
            {"Add", &ir::add}, {"Sub", &ir::sub}, {"Mul", &ir::mul}, {"Div", &ir::div}, {"MatMul", &ir::matmul}};
        define(node, binary.at(node.op_type())(result_.graph, input(node, index, 0), input(node, index, 1),
                                               node.name()));
    }

    // min(a, b) = -max(-a, -b): Maximum is the op table's primitive (its gradient goes to the larger operand).
    NodeId minimum(NodeId a, NodeId b, const std::string& name) {
        ir::Graph& g = result_.graph;
        return ir::neg(g, ir::maximum(g, ir::neg(g, a), ir::neg(g, b)), name);
    }

    // Max and Min of any number of inputs, broadcasting.
    void min_or_max(const onnx::NodeProto& node, int index) {
        NodeId y = input(node, index, 0);
        for (int i = 1; i < node.input_size(); ++i) {
            y = node.op_type() == "Max" ? ir::maximum(result_.graph, y, input(node, index, i), node.name())
                                        : minimum(y, input(node, index, i), node.name());
        }
        define(node, y);
    }

    // A bound given as a constant scalar input (opset 11+), a Constant node's or an initializer's (exporters emit
    // both; a bound is never trained); none when the input is absent.
    std::optional<double> bound(const onnx::NodeProto& node, int index, int which) {
        if (!has_input(node, which)) {
            return std::nullopt;
        }
        const auto initializer = initializers_.find(node.input(which));
        std::optional<Constant> given;
        if (initializer != initializers_.end() && !values_.contains(node.input(which))) {
            given = constant_of(*initializer->second);
        }
        const Constant c = given ? *given : constant(node, index, which);
        if (c.count() != 1) {
            fail(node, index, "a Clip bound must be a constant scalar");
        }
        return c.values[0];
    }

    // Clip(x, lo, hi) = min(max(x, lo), hi), either bound optional (ReLU6 is Clip(0, 6)).
    void clip(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        NodeId y = input(node, index, 0);
        if (const std::optional<double> lo = bound(node, index, 1)) {
            y = *lo == 0 ? ir::relu(g, y) : ir::maximum(g, y, ir::scalar(g, *lo));
        }
        if (const std::optional<double> hi = bound(node, index, 2)) {
            y = minimum(y, ir::scalar(g, *hi), node.name());
        }
        define(node, y);
    }

    // max(0, min(1, alpha x + beta)).
    NodeId hard_sigmoid_of(NodeId x, double alpha, double beta, const std::string& name) {
        ir::Graph& g = result_.graph;
        const NodeId affine = ir::add(g, ir::mul(g, x, ir::scalar(g, alpha)), ir::scalar(g, beta));
        return minimum(ir::relu(g, affine), ir::scalar(g, 1.0), name);
    }

    void hard_sigmoid(const onnx::NodeProto& node, int index) {
        define(node, hard_sigmoid_of(input(node, index, 0), float_attribute(node, "alpha", 0.2f),
                                     float_attribute(node, "beta", 0.5f), node.name()));
    }

    // x * HardSigmoid(x) with alpha 1/6, beta 1/2 (torch.nn.Hardswish).
    void hard_swish(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        define(node, ir::mul(result_.graph, x, hard_sigmoid_of(x, 1.0 / 6.0, 0.5, ""), node.name()));
    }

    void global_average_pool(const onnx::NodeProto& node, int index) {
        define(node, ir::reduce_mean(result_.graph, input(node, index, 0), {2, 3}, true, node.name()));
    }

    void identity(const onnx::NodeProto& node, int index) { define(node, value(node, index, 0)); }

    // Dropout: the identity in inference (and with training_mode false or ratio 0); in training, the op table's
    // Dropout with the graph's step input (ir::kStepInputName), each node its own tensor id, so every step and
    // every dropout layer draws its own mask. The mask output (exporters name it) is not made: a node reading it fails
    // as reading any missing value does.
    void dropout(const onnx::NodeProto& node, int index) {
        double ratio = 0.5;
        if (has_input(node, 1)) {
            const Constant c = constant(node, index, 1);
            if (c.count() != 1) {
                fail(node, index, "the dropout ratio must be a constant scalar");
            }
            ratio = c.values[0];
        }
        bool training = mode_ == ImportMode::Training;
        if (has_input(node, 2)) {
            const Constant mode = constant(node, index, 2);
            training = training && mode.count() == 1 && mode.values[0] != 0;
        }
        if (!training || ratio == 0) {
            return identity(node, index);
        }
        if (!(ratio > 0 && ratio < 1)) {
            fail(node, index, "the dropout ratio must be in [0, 1), got " + std::to_string(ratio));
        }
        if (!step_.valid()) {
            step_ = result_.graph.add_input(ir::kStepInputName, {ir::DType::F32, ir::Shape{}});
        }
        define(node, ir::dropout(result_.graph, input(node, index, 0), step_,
                                 ir::DropoutAttrs{ratio, kDropoutSeed, next_dropout_++}, node.name()));
    }

    void reshape(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        define(node, ir::reshape(result_.graph, x, ir::Shape(reshape_target(node, index, shape_of(x))), node.name()));
    }

    void expand(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const std::vector<std::int64_t> target = rebatched(ints(node, index, 1), shape_of(x), 1);
        define(node, ir::broadcast_to(result_.graph, x,
                                      ir::Shape(folding::broadcast_dims(shape_of(x).dims(), target)), node.name()));
    }

    void concat(const onnx::NodeProto& node, int index) {
        std::vector<NodeId> parts;
        for (int i = 0; i < node.input_size(); ++i) {
            parts.push_back(input(node, index, i));
        }
        define(node, ir::concat(result_.graph, parts, static_cast<int>(int_attribute(node, "axis", 0)), node.name()));
    }

    void where(const onnx::NodeProto& node, int index) {
        define(node, ir::select(result_.graph, input(node, index, 0), input(node, index, 1), input(node, index, 2),
                                node.name()));
    }

    void cast(const onnx::NodeProto& node, int index) {
        if (int_attribute(node, "to", 0) != onnx::TensorProto::FLOAT) {
            fail(node, index, "casting data to a type other than float is not supported");
        }
        define(node, value(node, index, 0));
    }

    void softmax(const onnx::NodeProto& node, int index) {
        const NodeId y = ir::log_softmax(result_.graph, input(node, index, 0),
                                         static_cast<int>(int_attribute(node, "axis", -1)), node.name());
        define(node, node.op_type() == "Softmax" ? ir::exp(result_.graph, y) : y);
    }

    void shape_of_value(const onnx::NodeProto& node, int index) { define(node, shape(node, index)); }

    // A Constant that fold_constant did not take (it fails with the reason first): here for the table's list.
    void unfolded(const onnx::NodeProto& node, int index) { fail(node, index, "Constant has no value"); }

    void gemm(const onnx::NodeProto& node, int index) { define(node, gemm_node(node, index)); }

    NodeId gemm_node(const onnx::NodeProto& node, int index) {
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
        if (has_input(node, 2)) {
            NodeId c = input(node, index, 2);
            if (const float beta = float_attribute(node, "beta", 1.0f); beta != 1.0f) {
                c = ir::mul(g, c, ir::scalar(g, beta));
            }
            y = ir::add(g, y, c);
        }
        return y;
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

    void conv(const onnx::NodeProto& node, int index) { define(node, conv_node(node, index)); }

    NodeId conv_node(const onnx::NodeProto& node, int index) {
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
        if (has_input(node, 2)) {
            const NodeId bias = input(node, index, 2);
            const std::int64_t k = g.type(bias).shape.numel();
            y = ir::add(g, y, ir::reshape(g, bias, ir::Shape{k, 1, 1}));
        }
        return y;
    }

    void max_pool(const onnx::NodeProto& node, int index) { define(node, max_pool_node(node, index)); }

    // A 2-D pooling node's window: kernel, strides, and pads (top, left, bottom, right) with the extra trailing
    // padding that ceil mode's last, partial window needs (PyTorch's and ONNX's rule: kept where it starts inside
    // the input or its leading padding), so that floor-mode arithmetic over the padded input gives ceil mode's
    // windows.
    struct PoolWindow {
        std::array<std::int64_t, 2> kernel{}, strides{};
        std::array<std::int64_t, 4> pads{};       ///< including ceil mode's extra trailing padding
        std::array<std::int64_t, 4> given_pads{}; ///< as the node gives them
    };
    PoolWindow pool_window(const onnx::NodeProto& node, int index, const ir::Shape& shape) {
        const std::vector<std::int64_t> kernel = ints_attribute(node, "kernel_shape", {});
        const std::vector<std::int64_t> strides = ints_attribute(node, "strides", {1, 1});
        if (kernel.size() != 2 || strides.size() != 2 || shape.rank() != 4) {
            fail(node, index, "only 2-D (NCHW) pooling is supported");
        }
        if (ints_attribute(node, "dilations", {1, 1}) != std::vector<std::int64_t>{1, 1} || node.output_size() > 1) {
            fail(node, index, "dilations and the Indices output are not supported");
        }
        PoolWindow w{{kernel[0], kernel[1]}, {strides[0], strides[1]}, pads_2d(node, index), {}};
        w.given_pads = w.pads;
        if (int_attribute(node, "ceil_mode", 0) != 0) {
            for (int axis = 0; axis < 2; ++axis) {
                const std::int64_t size = shape[2 + axis], k = w.kernel[axis], stride = w.strides[axis];
                const std::int64_t padded = size + w.pads[axis] + w.pads[2 + axis];
                std::int64_t windows = (padded - k + stride - 1) / stride + 1;  // ceil((padded - k) / stride) + 1
                if ((windows - 1) * stride >= size + w.pads[axis]) {
                    --windows;
                }
                w.pads[2 + axis] += std::max<std::int64_t>(0, (windows - 1) * stride + k - padded);
            }
        }
        return w;
    }

    NodeId max_pool_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const PoolWindow w = pool_window(node, index, shape_of(x));  // max-pooling's padding never wins
        return ir::max_pool2d(result_.graph, x, ir::PoolAttrs{w.kernel, w.strides, w.pads}, node.name());
    }

    // Pad with zeros (constant mode, the value 0; PyTorch emits it before a ceil-mode AveragePool that counts the
    // padding): Slice's adjoint places x inside zeros of the padded shape, and its gradient is the slice back.
    void pad(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const std::string mode = string_attribute(node, "mode", "constant");
        if (mode != "constant") {
            fail(node, index, "only mode 'constant' is supported, got '" + mode + "'");
        }
        if (has_input(node, 2)) {
            const Constant value = constant(node, index, 2);
            if (value.count() != 1 || value.values[0] != 0) {
                fail(node, index, "only padding with zeros is supported");
            }
        }
        if (has_input(node, 3)) {
            fail(node, index, "the axes input is not supported (pad every axis)");
        }
        const std::vector<std::int64_t> pads = ints(node, index, 1);
        const auto rank = static_cast<std::size_t>(shape.rank());
        if (pads.size() != 2 * rank) {
            fail(node, index, "pads must have 2 x rank = " + std::to_string(2 * rank) + " entries");
        }
        ir::SliceAttrs inside;
        std::vector<std::int64_t> padded;
        for (std::size_t axis = 0; axis < rank; ++axis) {
            if (pads[axis] < 0 || pads[rank + axis] < 0) {
                fail(node, index, "negative pads (cropping) are not supported");
            }
            inside.starts.push_back(pads[axis]);
            inside.sizes.push_back(shape[static_cast<int>(axis)]);
            inside.steps.push_back(1);
            padded.push_back(shape[static_cast<int>(axis)] + pads[axis] + pads[rank + axis]);
        }
        define(node, result_.graph.add(ir::OpKind::SliceBackward, ir::SliceBackwardAttrs{inside, ir::Shape(padded)},
                                       {x}, node.name()));
    }

    // AveragePool as a depthwise convolution with weights of 1 (zero padding adds nothing), divided per output
    // position by PyTorch's divisor: the window's cells inside the input and its given padding
    // (count_include_pad=1), or inside the input only (0); ceil mode's extra cells never count.
    void average_pool(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const PoolWindow w = pool_window(node, index, shape);
        const bool include_pad = int_attribute(node, "count_include_pad", 0) != 0;
        const std::int64_t channels = shape[1];
        const NodeId ones = ir::constant(
            g, ir::Shape{channels, 1, w.kernel[0], w.kernel[1]},
            std::vector<float>(static_cast<std::size_t>(channels * w.kernel[0] * w.kernel[1]), 1.0f));
        const NodeId sums =
            ir::conv2d(g, x, ones, ir::Conv2dAttrs{w.strides, w.pads, {1, 1}, channels});
        const ir::Shape out = shape_of(sums);
        std::vector<float> divisors(static_cast<std::size_t>(out[2] * out[3]));
        for (std::int64_t oh = 0; oh < out[2]; ++oh) {
            for (std::int64_t ow = 0; ow < out[3]; ++ow) {
                std::array<std::int64_t, 2> counted{};
                const std::array<std::int64_t, 2> at{oh, ow};
                for (int axis = 0; axis < 2; ++axis) {
                    const std::int64_t size = shape[2 + axis];
                    const std::int64_t start = at[axis] * w.strides[axis] - w.given_pads[axis];
                    const std::int64_t end = std::min(start + w.kernel[axis], size + w.given_pads[2 + axis]);
                    counted[axis] = include_pad ? end - start
                                                : std::min(end, size) - std::max<std::int64_t>(start, 0);
                }
                if (counted[0] <= 0 || counted[1] <= 0) {
                    fail(node, index, "a pooling window covers no element of the input (padding wider than the "
                                      "kernel?)");
                }
                divisors[static_cast<std::size_t>(oh * out[3] + ow)] = static_cast<float>(counted[0] * counted[1]);
            }
        }
        define(node, ir::div(g, sums, ir::constant(g, ir::Shape{out[2], out[3]}, std::move(divisors)), node.name()));
    }

    // BatchNormalization over axis 1 of [N, C, ...]. Training: normalise with the batch's mean and (biased)
    // variance and emit the running-statistic updates; Inference: normalise with the running statistics.
    void batch_norm(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const NodeId scale = input(node, index, 1);
        const NodeId bias = input(node, index, 2);
        const NodeId running_mean = state(node, index, 3);
        const NodeId running_var = state(node, index, 4);
        const ir::Shape shape = shape_of(x);
        if (shape.rank() < 2) {
            fail(node, index, "needs an input of rank >= 2, got " + shape.to_string());
        }
        const std::int64_t channels = shape[1];
        for (const NodeId p : {scale, bias, running_mean, running_var}) {
            if (!(shape_of(p) == ir::Shape{channels})) {
                fail(node, index, "scale, bias, mean and variance must have " + std::to_string(channels) +
                                      " elements (one per channel), got " + shape_of(p).to_string());
            }
        }
        const double epsilon = as_written(float_attribute(node, "epsilon", 1e-5f));
        const double momentum = float_attribute(node, "momentum", 0.9f);
        // The training form: opset 14+ says training_mode=1; opsets <= 13 mark it by asking for the running outputs.
        const bool exported_for_training =
            int_attribute(node, "training_mode", 0) != 0 || (result_.opset < 14 && node.output_size() > 1);
        const bool training = mode_ == ImportMode::Training && exported_for_training;
        if (training && shape.numel() / channels < 2) {
            fail(node, index, "batch statistics need at least 2 values per channel; the batch gives " +
                                  std::to_string(shape.numel() / channels));
        }
        define(node, frontend::batch_norm(g, x, scale, bias, running_mean, running_var, epsilon, momentum, training,
                                          result_.state_updates, node.name()));
    }

    // LayerNormalization (opset 17): normalise over axes [axis, rank), then scale and shift.
    void layer_norm(const onnx::NodeProto& node, int index) { define(node, layer_norm_node(node, index)); }

    NodeId layer_norm_node(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const int axis = ir::normalize_axis(static_cast<int>(int_attribute(node, "axis", -1)), shape.rank(),
                                            "LayerNormalization");
        if (node.output_size() > 1) {
            for (int i = 1; i < node.output_size(); ++i) {
                if (!node.output(i).empty()) {
                    fail(node, index, "the Mean and InvStdDev outputs are not supported");
                }
            }
        }
        const double epsilon = as_written(float_attribute(node, "epsilon", 1e-5f));
        return frontend::layer_norm(g, x, input(node, index, 1),
                                    has_input(node, 2) ? input(node, index, 2) : NodeId{}, axis, epsilon, node.name());
    }

    void reduce(const onnx::NodeProto& node, int index) { define(node, reduce_node(node, index)); }

    NodeId reduce_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        // ReduceSum takes its axes as an input from opset 13, ReduceMean from opset 18 (an attribute before).
        std::vector<int> axes;
        for (const std::int64_t a : axes_of(node, index, 1)) {
            axes.push_back(static_cast<int>(a));
        }
        if (axes.empty() && int_attribute(node, "noop_with_empty_axes", 0) != 0) {
            return x;
        }
        const bool keep = int_attribute(node, "keepdims", 1) != 0;
        return node.op_type() == "ReduceMean" ? ir::reduce_mean(result_.graph, x, axes, keep, node.name())
                                              : ir::reduce_sum(result_.graph, x, axes, keep, node.name());
    }

    // x ** c for a constant scalar exponent c in {1, 2, 3, 0.5, -1} (what models use: variance, RMS, GELU-tanh).
    void pow(const onnx::NodeProto& node, int index) { define(node, pow_node(node, index)); }

    NodeId pow_node(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const Constant c = constant(node, index, 1);
        if (c.count() != 1) {
            fail(node, index, "the exponent must be a constant scalar");
        }
        const double e = c.values[0];
        if (e == 1) {
            return x;
        }
        if (e == 2) {
            return ir::mul(g, x, x, node.name());
        }
        if (e == 3) {
            return ir::mul(g, ir::mul(g, x, x), x, node.name());
        }
        if (e == 0.5) {
            return ir::sqrt(g, x, node.name());
        }
        if (e == -1) {
            return ir::div(g, ir::scalar(g, 1.0), x, node.name());
        }
        if (e == -0.5) {  // an attention scale, head_dim ** -0.5
            return ir::div(g, ir::scalar(g, 1.0), ir::sqrt(g, x), node.name());
        }
        fail(node, index, "exponent " + std::to_string(e) + " is not supported (1, 2, 3, 0.5, -1 and -0.5 are)");
    }

    void flatten(const onnx::NodeProto& node, int index) { define(node, flatten_node(node, index)); }

    NodeId flatten_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const int axis = ir::normalize_axis(static_cast<int>(int_attribute(node, "axis", 1)), shape.rank() + 1,
                                            "Flatten");
        std::int64_t outer = 1;
        for (int d = 0; d < axis; ++d) {
            outer *= shape[d];
        }
        return ir::reshape(result_.graph, x, ir::Shape{outer, shape.numel() / std::max<std::int64_t>(outer, 1)},
                           node.name());
    }

    // ONNX Reshape's target (0 copies a dimension, one -1 is inferred) resolved against `from`.
    // A model traced at a fixed batch (exported without dynamic_axes) carries that batch in its shape values: a
    // leading entry equal to it, where the value it shapes leads with the batch (Reshape) or broadcasts from 1 along
    // it (Expand of a class token), stands for the batch and takes the one being imported.
    std::vector<std::int64_t> rebatched(std::vector<std::int64_t> spec, const ir::Shape& from, std::int64_t leading) {
        if (exported_batch_ > 0 && exported_batch_ != batch_ && !spec.empty() && spec[0] == exported_batch_ &&
            from.rank() > 0 && from[0] == leading) {
            spec[0] = batch_;
        }
        return spec;
    }

    std::vector<std::int64_t> reshape_target(const onnx::NodeProto& node, int index, const ir::Shape& from) {
        const std::vector<std::int64_t> spec = rebatched(ints(node, index, 1), from, batch_);
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
            if (d < 0) {
                fail(node, index, "negative dimension " + std::to_string(d) + " in the target shape");
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
        return dims;
    }

    void transpose(const onnx::NodeProto& node, int index) { define(node, transpose_node(node, index)); }

    NodeId transpose_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const int rank = shape_of(x).rank();
        std::vector<int> perm(static_cast<std::size_t>(rank));
        std::iota(perm.rbegin(), perm.rend(), 0);  // the default reverses the axes
        if (const onnx::AttributeProto* a = attribute(node, "perm")) {
            perm.assign(a->ints().begin(), a->ints().end());
        }
        return ir::transpose(result_.graph, x, perm, node.name());
    }

    void squeeze_or_unsqueeze(const onnx::NodeProto& node, int index) {
        define(node, squeeze_or_unsqueeze_node(node, index));
    }

    NodeId squeeze_or_unsqueeze_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const Constant probe{ElementKind::Float, shape.dims(), {}};  // only the dims move; no values needed
        const std::vector<std::int64_t> axes = axes_of(node, index, 1);
        const Constant moved = node.op_type() == "Unsqueeze" ? folding::unsqueeze(probe, axes) : folding::squeeze(probe, axes);
        return ir::reshape(result_.graph, x, ir::Shape(moved.dims), node.name());
    }

    // ONNX Slice's starts/ends/axes/steps resolved against `dims`: parallel lists of axes and ranges.
    std::pair<std::vector<std::int64_t>, std::vector<folding::SliceAxis>> slice_ranges(
        const onnx::NodeProto& node, int index, const std::vector<std::int64_t>& dims) {
        const std::vector<std::int64_t> starts = ints(node, index, 1);
        const std::vector<std::int64_t> ends = ints(node, index, 2);
        std::vector<std::int64_t> axes = has_input(node, 3) ? ints(node, index, 3) : std::vector<std::int64_t>{};
        if (axes.empty()) {
            for (std::size_t i = 0; i < starts.size(); ++i) {
                axes.push_back(static_cast<std::int64_t>(i));
            }
        }
        const std::vector<std::int64_t> steps =
            has_input(node, 4) ? ints(node, index, 4) : std::vector<std::int64_t>(starts.size(), 1);
        if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
            fail(node, index, "starts, ends, axes and steps must have the same length");
        }
        std::vector<folding::SliceAxis> ranges;
        for (std::size_t i = 0; i < axes.size(); ++i) {
            axes[i] = folding::normalize(axes[i], static_cast<std::int64_t>(dims.size()));
            ranges.push_back(folding::resolve_slice(dims[static_cast<std::size_t>(axes[i])], starts[i], ends[i], steps[i]));
        }
        return {axes, ranges};
    }

    void slice(const onnx::NodeProto& node, int index) { define(node, slice_node(node, index)); }

    NodeId slice_node(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const std::vector<std::int64_t> dims = shape_of(x).dims();
        const auto [axes, ranges] = slice_ranges(node, index, dims);
        ir::SliceAttrs attrs{std::vector<std::int64_t>(dims.size(), 0), dims, std::vector<std::int64_t>(dims.size(), 1)};
        for (std::size_t i = 0; i < axes.size(); ++i) {
            const auto d = static_cast<std::size_t>(axes[i]);
            attrs.starts[d] = ranges[i].start;
            attrs.sizes[d] = ranges[i].count;
            attrs.steps[d] = ranges[i].step;
        }
        return ir::slice(result_.graph, x, attrs, node.name());
    }

    void split(const onnx::NodeProto& node, int index) {
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const int axis = ir::normalize_axis(static_cast<int>(int_attribute(node, "axis", 0)), shape.rank(), "Split");
        std::vector<std::int64_t> sizes = has_input(node, 1) ? ints(node, index, 1) : ints_attribute(node, "split", {});
        const auto outputs = static_cast<std::int64_t>(node.output_size());
        if (sizes.empty()) {  // equal parts (the last one smaller if it does not divide)
            const std::int64_t part = (shape[axis] + outputs - 1) / std::max<std::int64_t>(outputs, 1);
            for (std::int64_t i = 0, left = shape[axis]; i < outputs; ++i, left -= part) {
                sizes.push_back(std::min(part, left));
            }
        }
        if (static_cast<std::int64_t>(sizes.size()) != outputs ||
            std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) != shape[axis]) {
            fail(node, index, "split sizes must give one part per output and add up to dimension " +
                                  std::to_string(shape[axis]));
        }
        std::int64_t offset = 0;
        for (int i = 0; i < node.output_size(); ++i) {
            values_[node.output(i)] = ir::slice_axis(result_.graph, x, axis, offset, sizes[static_cast<std::size_t>(i)], 1,
                                                     node.name() + ":" + std::to_string(i));
            offset += sizes[static_cast<std::size_t>(i)];
        }
    }

    // Gather on data with constant indices: a few indices are slices along the axis, joined; more are one Gather
    // of rows (the axis moved to the front and back again), so that a table indexed thousands of times (Swin's
    // relative position bias: 49 x 49 per block) stays one node. The index tensor's shape replaces the axis.
    void gather(const onnx::NodeProto& node, int index) { define(node, gather_node(node, index)); }

    NodeId gather_node(const onnx::NodeProto& node, int index) {
        ir::Graph& g = result_.graph;
        const NodeId x = input(node, index, 0);
        const ir::Shape shape = shape_of(x);
        const Value indices_value = value(node, index, 1);
        if (!std::holds_alternative<Constant>(indices_value)) {
            // Indices from data: an embedding lookup, rows of the table (axis 0) picked by token ids.
            if (int_attribute(node, "axis", 0) != 0 && int_attribute(node, "axis", 0) != -shape.rank()) {
                fail(node, index, "indices computed from data are supported on axis 0 only (embedding lookups)");
            }
            return ir::gather(g, x, std::get<NodeId>(indices_value), node.name());
        }
        const Constant indices = std::get<Constant>(indices_value);
        const int axis = ir::normalize_axis(static_cast<int>(int_attribute(node, "axis", 0)), shape.rank(), "Gather");
        std::vector<std::int64_t> ids;
        for (std::int64_t i : indices.ints()) {
            i = i < 0 ? i + shape[axis] : i;
            if (i < 0 || i >= shape[axis]) {
                fail(node, index, "index out of range for dimension " + std::to_string(shape[axis]));
            }
            ids.push_back(i);
        }
        if (ids.empty()) {
            fail(node, index, "no indices");
        }
        std::vector<std::int64_t> dims(shape.dims().begin(), shape.dims().begin() + axis);
        dims.insert(dims.end(), indices.dims.begin(), indices.dims.end());
        dims.insert(dims.end(), shape.dims().begin() + axis + 1, shape.dims().end());
        constexpr std::size_t kMostSlices = 16;
        if (ids.size() <= kMostSlices) {
            std::vector<NodeId> parts;
            for (const std::int64_t i : ids) {
                parts.push_back(ir::slice_axis(g, x, axis, i, 1));
            }
            const NodeId joined = parts.size() == 1 ? parts.front() : ir::concat(g, parts, axis);
            return ir::reshape(g, joined, ir::Shape(dims), node.name());
        }
        // [d0 .. axis .. dn] -> [axis, d0 .., dn] -> gather rows -> [ids, d0 .., dn] -> [d0 .., ids, .. dn].
        std::vector<int> to_front{axis};
        for (int d = 0; d < shape.rank(); ++d) {
            if (d != axis) {
                to_front.push_back(d);
            }
        }
        const NodeId table = axis == 0 ? x : ir::transpose(g, x, to_front);
        const NodeId id_node = ir::constant(g, ir::Shape{static_cast<std::int64_t>(ids.size())},
                                            std::vector<float>(ids.begin(), ids.end()), node.name() + ":ids");
        NodeId rows = ir::gather(g, table, id_node);  // [ids, d0 .., dn without the axis]
        if (axis != 0) {
            std::vector<int> back;  // the ids dimension goes back to the axis' place
            for (int d = 1; d <= axis; ++d) {
                back.push_back(d);
            }
            back.push_back(0);
            for (int d = axis + 1; d < shape.rank(); ++d) {
                back.push_back(d);
            }
            rows = ir::transpose(g, rows, back);
        }
        return ir::reshape(g, rows, ir::Shape(dims), node.name());
    }

    Constant shape(const onnx::NodeProto& node, int index) {
        const Value v = value(node, index, 0);
        const std::vector<std::int64_t> dims =
            std::holds_alternative<NodeId>(v) ? shape_of(std::get<NodeId>(v)).dims() : std::get<Constant>(v).dims;
        const auto rank = static_cast<std::int64_t>(dims.size());
        std::int64_t start = int_attribute(node, "start", 0);
        std::int64_t end = int_attribute(node, "end", rank);
        start = std::clamp<std::int64_t>(start < 0 ? start + rank : start, 0, rank);
        end = std::clamp<std::int64_t>(end < 0 ? end + rank : end, 0, rank);
        return folding::make_ints(std::vector<std::int64_t>(dims.begin() + start, dims.begin() + std::max(start, end)));
    }

    // Evaluates `node` at import time when all its inputs are constants (or it is Constant/Shape). Returns whether it
    // did.
    bool fold_constant(const onnx::NodeProto& node, int index) {
        const std::string& op = node.op_type();
        if (op == "Constant") {
            const onnx::AttributeProto* a = attribute(node, "value");
            if (a && a->has_t()) {
                if (std::optional<Constant> c = constant_of(a->t())) {
                    define(node, std::move(*c));
                    return true;
                }
                fail(node, index, "constant element type " + std::to_string(a->t().data_type()) + " is not supported");
            }
            if ((a = attribute(node, "value_int")) != nullptr) {
                define(node, folding::make_ints({a->i()}, true));
            } else if ((a = attribute(node, "value_ints")) != nullptr) {
                define(node, folding::make_ints({a->ints().begin(), a->ints().end()}));
            } else if ((a = attribute(node, "value_float")) != nullptr) {
                define(node, Constant{ElementKind::Float, {}, {a->f()}});
            } else {
                fail(node, index, "Constant needs a value, value_int, value_ints or value_float attribute");
            }
            return true;
        }
        if (op == "Shape") {
            define(node, shape(node, index));
            return true;
        }
        if (!all_constant(node)) {
            return false;
        }
        using F = std::function<double(double, double)>;
        static const std::map<std::string, F> arithmetic = {
            {"Add", [](double a, double b) { return a + b; }},
            {"Sub", [](double a, double b) { return a - b; }},
            {"Mul", [](double a, double b) { return a * b; }},
            {"Div", [](double a, double b) { return a / b; }},
            // Mod with fmod=0 (the default, Python's): the result takes the divisor's sign.
            {"Mod", [](double a, double b) {
                 if (b == 0) {
                     throw std::invalid_argument("Mod by zero");
                 }
                 return a - b * std::floor(a / b);
             }},
        };
        static const std::map<std::string, F> comparison = {
            {"Equal", [](double a, double b) { return a == b ? 1.0 : 0.0; }},
            {"Less", [](double a, double b) { return a < b ? 1.0 : 0.0; }},
            {"Greater", [](double a, double b) { return a > b ? 1.0 : 0.0; }},
            {"And", [](double a, double b) { return (a != 0 && b != 0) ? 1.0 : 0.0; }},
            {"Or", [](double a, double b) { return (a != 0 || b != 0) ? 1.0 : 0.0; }},
        };
        auto in = [&](int which) { return constant(node, index, which); };
        if (const auto f = arithmetic.find(op); f != arithmetic.end()) {
            const Constant a = in(0);
            const Constant b = in(1);
            if (op == "Div" && a.kind == ElementKind::Int) {  // integer division truncates
                define(node, folding::map2(a, b, ElementKind::Int, [](double x, double y) {
                           if (y == 0) {
                               throw std::invalid_argument("integer division by zero");
                           }
                           return std::trunc(x / y);
                       }));
            } else {
                define(node, folding::map2(a, b, a.kind, f->second));
            }
        } else if (const auto c = comparison.find(op); c != comparison.end()) {
            define(node, folding::map2(in(0), in(1), ElementKind::Bool, c->second));
        } else if (op == "Not") {
            define(node, folding::cast(folding::map2(in(0), Constant{ElementKind::Bool, {}, {0}}, ElementKind::Bool,
                                                     [](double a, double) { return a == 0 ? 1.0 : 0.0; }),
                                       ElementKind::Bool));
        } else if (op == "Cast") {
            const std::optional<ElementKind> kind = element_kind(int_attribute(node, "to", 0));
            if (!kind) {
                fail(node, index, "cast to element type " + std::to_string(int_attribute(node, "to", 0)) +
                                      " is not supported");
            }
            define(node, folding::cast(in(0), *kind));
        } else if (op == "Gather") {
            define(node, folding::gather(in(0), in(1), int_attribute(node, "axis", 0)));
        } else if (op == "Unsqueeze") {
            define(node, folding::unsqueeze(in(0), axes_of(node, index, 1)));
        } else if (op == "Squeeze") {
            define(node, folding::squeeze(in(0), axes_of(node, index, 1)));
        } else if (op == "Concat") {
            std::vector<Constant> parts;
            for (int i = 0; i < node.input_size(); ++i) {
                parts.push_back(in(i));
            }
            define(node, folding::concat(parts, int_attribute(node, "axis", 0)));
        } else if (op == "Slice") {
            const Constant x = in(0);
            const auto [axes, ranges] = slice_ranges(node, index, x.dims);
            define(node, folding::slice(x, axes, ranges));
        } else if (op == "Reshape") {
            const Constant x = in(0);
            define(node, folding::reshape(x, reshape_target(node, index, ir::Shape(x.dims))));
        } else if (op == "Expand") {
            define(node, folding::expand(in(0), ints(node, index, 1)));
        } else if (op == "Where") {
            define(node, folding::where(in(0), in(1), in(2)));
        } else if (op == "Transpose") {
            define(node, folding::transpose(in(0), ints_attribute(node, "perm", {})));
        } else if (op == "ScatterND") {
            if (!string_attribute(node, "reduction", "none").empty() &&
                string_attribute(node, "reduction", "none") != "none") {
                fail(node, index, "ScatterND with a reduction is not supported");
            }
            define(node, folding::scatter_nd(in(0), in(1), in(2)));
        } else if (op == "ConstantOfShape") {
            Constant fill_value{ElementKind::Float, {1}, {0.0}};
            if (const onnx::AttributeProto* a = attribute(node, "value"); a && a->has_t()) {
                if (std::optional<Constant> given = constant_of(a->t())) {
                    fill_value = *given;
                }
            }
            define(node, folding::constant_of_shape(ints(node, index, 0), fill_value));
        } else if (op == "Range") {
            const Constant start = in(0);
            if (start.count() != 1 || in(1).count() != 1 || in(2).count() != 1) {
                fail(node, index, "start, limit and delta must be scalars");
            }
            define(node, folding::range(start.values[0], in(1).values[0], in(2).values[0], start.kind));
        } else if (op == "Identity") {
            define(node, in(0));
        } else {
            return false;  // the op itself converts a constant input (e.g. Relu of a constant) into data
        }
        return true;
    }

    const onnx::ModelProto& model_;
    std::string path_;
    std::int64_t batch_;
    ImportMode mode_;
    std::map<std::string, const onnx::TensorProto*> initializers_;
    std::map<std::string, Value> values_;
    NodeId step_;                     // the step input, once a Dropout in training needs it
    std::int64_t exported_batch_ = 0;  // the input's batch as exported, if fixed (0: dynamic)
    std::uint32_t next_dropout_ = 0;  // the next Dropout's tensor id
    OnnxModel result_;
};

}  // namespace

std::string onnx_supported_ops() {
    std::string list;
    for (const auto& [op, handler] : Importer::handlers()) {
        list += (list.empty() ? "" : ", ") + op;
    }
    list += "; on constants only (shape arithmetic):";
    for (const std::string_view op : kConstantOnlyOps) {
        list += " " + std::string(op);
    }
    return list;
}

OnnxModel import_onnx_bytes(const std::string& bytes, const std::string& name, std::int64_t batch, ImportMode mode) {
    if (batch <= 0) {
        throw UsageError("batch must be positive to import " + name);
    }
    const onnx::ModelProto model = parse_model(bytes, name);
    return Importer(model, name, batch, mode).run();
}

OnnxModel import_onnx(const std::string& path, std::int64_t batch, ImportMode mode) {
    return import_onnx_bytes(read_file(path), path, batch, mode);
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
    std::string bytes;
    if (!model.SerializeToString(&bytes)) {
        throw ImportError("cannot export to " + out_path + ": the trained model does not serialize (over 2 GiB?)");
    }
    write_output_file(out_path, bytes, "trained model (--out)");
}

}  // namespace dojo::frontend
