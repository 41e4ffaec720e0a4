// The catalog's shared parts (catalog_parts.h).
#include "catalog_parts.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "dojo/frontend/layers.h"
#include "dojo/ir/builder.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"

namespace dojo::frontend::catalog {

using ir::NodeId;

NodeId conv(Model& model, NodeId x, std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
            std::int64_t pad, bool with_bias, const std::string& name) {
    ir::Graph& g = model.graph;
    const NodeId weight = g.add_parameter(name + ".weight", {ir::DType::F32, ir::Shape{out, in, kernel, kernel}});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * kernel * kernel));
    model.init[weight] = ParameterInit{bound};
    const NodeId y = ir::conv2d(g, x, weight, ir::Conv2dAttrs{{stride, stride}, {pad, pad, pad, pad}, {1, 1}, 1}, name);
    if (!with_bias) {
        return y;
    }
    const NodeId bias = g.add_parameter(name + ".bias", {ir::DType::F32, ir::Shape{out}});
    model.init[bias] = ParameterInit{bound};
    return ir::add(g, y, ir::reshape(g, bias, ir::Shape{out, 1, 1}), name + ".out");
}

NodeId batch_norm2d(Model& model, NodeId x, const std::string& name, ImportMode mode) {
    ir::Graph& g = model.graph;
    const std::int64_t channels = g.type(x).shape[1];
    const ir::TensorType per_channel{ir::DType::F32, ir::Shape{channels}};
    const NodeId scale = g.add_parameter(name + ".weight", per_channel);
    const NodeId bias = g.add_parameter(name + ".bias", per_channel);
    const NodeId mean = g.add_state(name + ".running_mean", per_channel);
    const NodeId var = g.add_state(name + ".running_var", per_channel);
    model.init[scale] = ParameterInit{0.0, 1.0};
    model.init[bias] = ParameterInit{};
    model.init[mean] = ParameterInit{};
    model.init[var] = ParameterInit{0.0, 1.0};
    return batch_norm(g, x, scale, bias, mean, var, 1e-5, 0.9, mode == ImportMode::Training, model.state_updates, name);
}

namespace {

// torchvision's BasicBlock (two 3x3 convolutions) or Bottleneck (1x1, 3x3, 1x1 to 4 x width), with a projection
// shortcut where the shape changes.
NodeId resnet_block(Model& model, NodeId x, std::int64_t in, std::int64_t width, std::int64_t stride, bool bottleneck,
                    const std::string& name, ImportMode mode) {
    ir::Graph& g = model.graph;
    const std::int64_t out = bottleneck ? 4 * width : width;
    NodeId y;
    if (bottleneck) {
        y = ir::relu(g, batch_norm2d(model, conv(model, x, in, width, 1, 1, 0, false, name + ".conv1"), name + ".bn1",
                                     mode));
        y = ir::relu(g, batch_norm2d(model, conv(model, y, width, width, 3, stride, 1, false, name + ".conv2"),
                                     name + ".bn2", mode));
        y = batch_norm2d(model, conv(model, y, width, out, 1, 1, 0, false, name + ".conv3"), name + ".bn3", mode);
    } else {
        y = ir::relu(g, batch_norm2d(model, conv(model, x, in, width, 3, stride, 1, false, name + ".conv1"),
                                     name + ".bn1", mode));
        y = batch_norm2d(model, conv(model, y, width, width, 3, 1, 1, false, name + ".conv2"), name + ".bn2", mode);
    }
    NodeId shortcut = x;
    if (stride != 1 || in != out) {
        shortcut = batch_norm2d(model, conv(model, x, in, out, 1, stride, 0, false, name + ".downsample.0"),
                                name + ".downsample.1", mode);
    }
    return ir::relu(g, ir::add(g, y, shortcut));
}

}  // namespace

NodeId upsample2x(ir::Graph& g, NodeId x) {
    const ir::Shape s = g.type(x).shape;
    const NodeId spread = ir::broadcast_to(g, ir::reshape(g, x, ir::Shape{s[0], s[1], s[2], 1, s[3], 1}),
                                           ir::Shape{s[0], s[1], s[2], 2, s[3], 2});
    return ir::reshape(g, spread, ir::Shape{s[0], s[1], 2 * s[2], 2 * s[3]});
}

std::vector<Stage> resnet_trunk(Model& model, NodeId x, std::int64_t in, int depth, const std::string& prefix,
                                ImportMode mode) {
    DOJO_CHECK(depth == 18 || depth == 34 || depth == 50) << "ResNet-" << depth;
    const bool bottleneck = depth == 50;
    const std::vector<int> blocks = depth == 18 ? std::vector<int>{2, 2, 2, 2} : std::vector<int>{3, 4, 6, 3};
    ir::Graph& g = model.graph;
    x = ir::relu(g, batch_norm2d(model, conv(model, x, in, 64, 7, 2, 3, false, prefix + "conv1"), prefix + "bn1",
                                 mode));
    x = ir::max_pool2d(g, x, ir::PoolAttrs{{3, 3}, {2, 2}, {1, 1, 1, 1}}, prefix + "maxpool");
    std::int64_t channels = 64;
    std::vector<Stage> stages;
    for (std::size_t stage = 0; stage < blocks.size(); ++stage) {
        const std::int64_t width = 64 << stage;
        for (int b = 0; b < blocks[stage]; ++b) {
            const std::int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
            const std::string name = prefix + "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
            x = resnet_block(model, x, channels, width, stride, bottleneck, name, mode);
            channels = bottleneck ? 4 * width : width;
        }
        stages.push_back({x, channels});
    }
    return stages;
}

namespace {

// `text` as `parts` whole numbers in [1, max] joined by 'x' into out[0..parts); false when it is not.
bool parse_parts(std::string_view text, int parts, std::int64_t max, std::int64_t* out) {
    std::size_t start = 0;
    for (int i = 0; i < parts; ++i) {
        const std::size_t end = i + 1 < parts ? text.find('x', start) : text.size();
        if (end == std::string_view::npos) {
            return false;
        }
        std::int64_t value = 0;
        const auto parsed = std::from_chars(text.data() + start, text.data() + end, value);
        if (parsed.ec != std::errc() || parsed.ptr != text.data() + end || value <= 0 || value > max) {
            return false;
        }
        out[i] = value;
        start = end + 1;
    }
    return true;
}

std::string describe(const OptionField& f) {
    std::string range = "1.." + std::to_string(f.max);
    std::string text = std::string(f.key) + "=" + range;
    for (int i = 1; i < f.parts; ++i) {
        text += "x" + range;
    }
    return text;
}

}  // namespace

void parse_options(std::string_view spec, std::string_view options, const std::vector<OptionField>& fields) {
    std::string keys;
    for (const OptionField& f : fields) {
        keys += (keys.empty() ? "" : ", ") + describe(f);
    }
    std::vector<std::string_view> seen;
    std::size_t start = 0;
    while (!options.empty() && start <= options.size()) {
        const std::size_t end = std::min(options.find(',', start), options.size());
        const std::string_view item = options.substr(start, end - start);
        const std::size_t eq = item.find('=');
        const auto field = std::find_if(fields.begin(), fields.end(),
                                        [&](const OptionField& f) { return item.substr(0, eq) == f.key; });
        if (field == fields.end() || eq == std::string_view::npos ||
            !parse_parts(item.substr(eq + 1), field->parts, field->max, field->field)) {
            throw UsageError("model '" + std::string(spec) + "': bad option '" + std::string(item) + "'; it takes " +
                             keys + " (whole numbers in those ranges)");
        }
        if (std::find(seen.begin(), seen.end(), field->key) != seen.end()) {
            throw UsageError("model '" + std::string(spec) + "': option '" + std::string(field->key) +
                             "' is given twice; give each option once");
        }
        seen.push_back(field->key);
        start = end + 1;
    }
}

}  // namespace dojo::frontend::catalog
