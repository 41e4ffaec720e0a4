// The parts the catalog's model builders share (catalog.cpp, catalog_occupancy.cpp): PyTorch-initialised
// convolutions and BatchNorm, and the parser of a spec's options. Internal to frontend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/frontend/model.h"

namespace dojo::frontend::catalog {

/// Conv2d (square kernel, symmetric padding) with PyTorch's nn.Conv2d initialisation: weight (and bias, when asked
/// for) ~ U(+-1/sqrt(fan_in)), fan_in = in * kernel * kernel. Without a bias a BatchNorm follows.
ir::NodeId conv(Model& model, ir::NodeId x, std::int64_t in, std::int64_t out, std::int64_t kernel,
                std::int64_t stride, std::int64_t pad, bool with_bias, const std::string& name);

/// BatchNorm2d, PyTorch's defaults (scale 1, bias 0, running mean 0 and variance 1, momentum 0.1, eps 1e-5): in
/// training form (batch statistics; running statistics updated each step) or, for evaluation, inference form (the
/// running statistics, as after model.eval()).
ir::NodeId batch_norm2d(Model& model, ir::NodeId x, const std::string& name, ImportMode mode);

/// Nearest-neighbour upsampling by 2 in each spatial direction of x [B, C, H, W] (reshape and broadcast).
ir::NodeId upsample2x(ir::Graph& g, ir::NodeId x);

/// One stage's output of a ResNet trunk: the node and its channels.
struct Stage {
    ir::NodeId node;
    std::int64_t channels = 0;
};

/// torchvision's ResNet trunk (conv1, bn1, ReLU, max-pool, layer1..layer4; BasicBlocks [2,2,2,2] for depth 18 and
/// [3,4,6,3] for 34, Bottlenecks [3,4,6,3] for 50) on x [B, in, H, W], its parameters named `prefix` + torchvision's
/// names. Returns the four stages' outputs, at strides 4, 8, 16 and 32.
std::vector<Stage> resnet_trunk(Model& model, ir::NodeId x, std::int64_t in, int depth, const std::string& prefix,
                                ImportMode mode);

/// One option of a catalog spec: its key, where it goes, and the largest value the catalog builds. The bounds keep
/// every size a graph derives from the options (products of several of them) well inside 64-bit arithmetic and the
/// memory a shape-only build touches; a real model is far inside them. `parts` > 1: the value is that many whole
/// numbers joined by 'x' ("40x40x4"), written to field[0..parts).
struct OptionField {
    std::string_view key;
    std::int64_t* field;
    std::int64_t max;
    int parts = 1;
};

/// "key=value,key=value" into the named fields (whole numbers from 1 to the field's max, each key at most once);
/// anything else is a UsageError that names the option and lists what the model takes.
void parse_options(std::string_view spec, std::string_view options, const std::vector<OptionField>& fields);

/// The occupancy network (catalog_occupancy.cpp): `options` as after "occupancy:" in `spec`; `sample_shape` the
/// data's [3 x cameras, height, width], or rank 0 to build at the options' (or the defaults') size.
Model build_occupancy(std::string_view spec, std::string_view options, std::int64_t batch,
                      const ir::Shape& sample_shape, int classes, ImportMode mode);

}  // namespace dojo::frontend::catalog
