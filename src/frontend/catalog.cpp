#include "dojo/frontend/catalog.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::frontend {
namespace {

using ir::NodeId;

constexpr const char* kCatalog =
    "mlp[:hidden=H1xH2x...] (fully connected with ReLU; default hidden=256), lenet (2 conv + 2 fc, for 28x28 images)";

// "256x128" -> {256, 128}
std::vector<std::int64_t> parse_widths(std::string_view text, std::string_view spec) {
    std::vector<std::int64_t> widths;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('x', start), text.size());
        std::int64_t width = 0;
        const auto result = std::from_chars(text.data() + start, text.data() + end, width);
        if (result.ec != std::errc() || result.ptr != text.data() + end || width <= 0) {
            throw UsageError("model '" + std::string(spec) + "': hidden=" + std::string(text) +
                             " is not a list of positive widths like 256 or 512x256");
        }
        widths.push_back(width);
        start = end + 1;
    }
    return widths;
}

// PyTorch's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
NodeId linear(Model& model, NodeId x, std::int64_t in, std::int64_t out, const std::string& name) {
    ir::Graph& g = model.graph;
    const NodeId weight = g.add_parameter(name + ".weight", {ir::DType::F32, ir::Shape{in, out}});
    const NodeId bias = g.add_parameter(name + ".bias", {ir::DType::F32, ir::Shape{out}});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    model.init[weight] = ParameterInit{bound};
    model.init[bias] = ParameterInit{bound};
    return ir::add(g, ir::matmul(g, x, weight, name), bias, name + ".out");
}

// PyTorch's nn.Conv2d default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C * R * S.
NodeId conv(Model& model, NodeId x, std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t pad,
            const std::string& name) {
    ir::Graph& g = model.graph;
    const NodeId weight = g.add_parameter(name + ".weight", {ir::DType::F32, ir::Shape{out, in, kernel, kernel}});
    const NodeId bias = g.add_parameter(name + ".bias", {ir::DType::F32, ir::Shape{out}});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * kernel * kernel));
    model.init[weight] = ParameterInit{bound};
    model.init[bias] = ParameterInit{bound};
    const NodeId y = ir::conv2d(g, x, weight, ir::Conv2dAttrs{{1, 1}, {pad, pad, pad, pad}, {1, 1}, 1}, name);
    return ir::add(g, y, ir::reshape(g, bias, ir::Shape{out, 1, 1}), name + ".out");
}

// LeNet-style: conv 1->6 5x5 pad 2, ReLU, 2x2 max-pool, conv 6->16 5x5, ReLU, 2x2 max-pool, fc 400->120, ReLU,
// fc 120->classes.
Model build_lenet(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes) {
    if (!(sample_shape == ir::Shape{1, 28, 28})) {
        throw UsageError("model 'lenet' takes 1x28x28 images; the data has samples of " + sample_shape.to_string());
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape{batch, 1, 28, 28}});
    NodeId x = ir::max_pool2d(g, ir::relu(g, conv(model, model.input, 1, 6, 5, 2, "conv1")));   // [B, 6, 14, 14]
    x = ir::max_pool2d(g, ir::relu(g, conv(model, x, 6, 16, 5, 0, "conv2")));                  // [B, 16, 5, 5]
    x = ir::reshape(g, x, ir::Shape{batch, 16 * 5 * 5}, "flatten");
    x = ir::relu(g, linear(model, x, 400, 120, "fc1"));
    model.logits = linear(model, x, 120, classes, "fc2");
    return model;
}

Model build_mlp(std::string_view spec, std::string_view options, std::int64_t batch, const ir::Shape& sample_shape,
                int classes) {
    std::vector<std::int64_t> hidden = {256};
    if (!options.empty()) {
        if (options.rfind("hidden=", 0) != 0) {
            throw UsageError("model '" + std::string(spec) + "': unknown option '" + std::string(options) +
                             "'; mlp takes hidden=H1xH2x...");
        }
        hidden = parse_widths(options.substr(7), spec);
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    std::vector<std::int64_t> input_dims = {batch};
    input_dims.insert(input_dims.end(), sample_shape.dims().begin(), sample_shape.dims().end());
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape(input_dims)});
    NodeId x = ir::reshape(g, model.input, ir::Shape{batch, sample_shape.numel()}, "flatten");
    std::int64_t width = sample_shape.numel();
    for (std::size_t layer = 0; layer < hidden.size(); ++layer) {
        x = ir::relu(g, linear(model, x, width, hidden[layer], "fc" + std::to_string(layer + 1)));
        width = hidden[layer];
    }
    model.logits = linear(model, x, width, classes, "fc" + std::to_string(hidden.size() + 1));
    return model;
}

}  // namespace

Model build_catalog_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes) {
    if (batch <= 0 || classes <= 0) {
        throw UsageError("model '" + std::string(spec) + "': batch and class count must be positive");
    }
    const std::size_t colon = spec.find(':');
    const std::string_view name = spec.substr(0, colon);
    const std::string_view options = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
    if (name == "mlp") {
        return build_mlp(spec, options, batch, sample_shape, classes);
    }
    if (name == "lenet" && options.empty()) {
        return build_lenet(spec, batch, sample_shape, classes);
    }
    throw UsageError("unknown model '" + std::string(spec) + "'; the catalog has: " + kCatalog);
}

std::string catalog_help() { return kCatalog; }

}  // namespace dojo::frontend
