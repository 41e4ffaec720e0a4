// The catalog's occupancy network (catalog.h): eight cameras in, the occupancy of the voxels around the car out. The
// same network as models/occupancy.py (its PyTorch twin, the yardstick), parameter for parameter and by the same
// names:
//
//   backbone, shared by the cameras   [3, H, W] -> [C, H/8, W/8]: 3x3 convolutions of stride 2, 2, 2 and 1 (16, 32,
//                                     C and C channels), each with BatchNorm and ReLU; or (resnet=18|34|50)
//                                     torchvision's ResNet trunk with a feature pyramid: 1x1 laterals to C channels on
//                                     the strides 8, 16 and 32, added top-down with nearest upsampling, a 3x3
//                                     smoothing convolution on the stride-8 level
//   lifting, by the calibration       each voxel cell's centre projected into every camera (geometry/lifting.h); the
//                                     feature vector where it lands is gathered (a Gather with constant indices) and
//                                     summed over the cameras; zeros where no camera sees it
//   bird's-eye head                   the cells' features as [C x Z, Y, X] planes: 3x3 conv to 64, ReLU, 3x3 conv to Z
//                                     -> logits [batch, Z x Y x X] (z-major, then y, then x), one yes/no per cell
#include <string>

#include "catalog_parts.h"
#include "dojo/geometry/lifting.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::frontend::catalog {
namespace {

using ir::NodeId;

constexpr std::int64_t kStride = 8;  // the backbone's three stride-2 convolutions

struct OccupancyOptions {
    std::int64_t cameras = 8;
    std::int64_t size[2] = {640, 480};    // width, height the network sees (the fleet store's default rendering)
    std::int64_t stored[2] = {640, 480};  // width, height the clips were rendered at: the cameras' intrinsics
    std::int64_t voxels[3] = {40, 40, 4};
    std::int64_t channels = 32;
    std::int64_t resnet = 0;  // 0: the small stem; 18, 34, 50: that ResNet's trunk and a feature pyramid
};

// The options, with the size taken from the data's samples [3 x cameras, H, W] where there are data; a size or a
// camera count that contradicts the data is refused.
OccupancyOptions parse_occupancy(std::string_view spec, std::string_view options, const ir::Shape& sample_shape) {
    OccupancyOptions o;
    std::int64_t width = 0, height = 0;
    parse_options(spec, options,
                  {{"cameras", &o.cameras, geometry::kRigCameras}, {"width", &width, 8192}, {"height", &height, 8192},
                   {"stored", o.stored, 8192, 2}, {"voxels", o.voxels, 512, 3}, {"channels", &o.channels, 4096},
                   {"resnet", &o.resnet, 50}});
    const std::string name = "model '" + std::string(spec) + "'";
    if (o.resnet != 0 && o.resnet != 18 && o.resnet != 34 && o.resnet != 50) {
        throw UsageError(name + ": resnet=" + std::to_string(o.resnet) + " is not a trunk the catalog builds; use "
                         "resnet=18, 34 or 50, or leave it out for the small stem");
    }
    if (sample_shape.rank() != 0) {
        if (sample_shape.rank() != 3 || sample_shape[0] % 3 != 0 || sample_shape[0] / 3 > geometry::kRigCameras) {
            throw UsageError(name + " takes 1 to 8 cameras' RGB frames [3 x cameras, H, W]; the data has samples of " +
                             sample_shape.to_string());
        }
        const bool cameras_given = options.find("cameras=") != std::string_view::npos;
        if ((cameras_given && o.cameras * 3 != sample_shape[0]) || (width != 0 && width != sample_shape[2]) ||
            (height != 0 && height != sample_shape[1])) {
            throw UsageError(name + " does not match the data's samples " + sample_shape.to_string() +
                             " ([3 x cameras, height, width]); leave out cameras=, width= and height= to take the data's");
        }
        o.cameras = sample_shape[0] / 3;
        width = sample_shape[2];
        height = sample_shape[1];
    }
    o.size[0] = width != 0 ? width : o.size[0];
    o.size[1] = height != 0 ? height : o.size[1];
    // The lifting table holds an index per camera and cell, each exact as a float (below 2^24): bounds that keep it
    // within memory and exact, far above a real grid (40 x 40 x 4 cells; 200 x 200 x 16 at 0.4 m over +-40 m).
    constexpr std::int64_t kMostCells = std::int64_t{1} << 21, kMostFeatures = std::int64_t{1} << 24;
    const std::int64_t cells = o.voxels[0] * o.voxels[1] * o.voxels[2];
    const std::int64_t features = o.cameras * (o.size[0] / kStride) * (o.size[1] / kStride);
    if (cells > kMostCells || features >= kMostFeatures) {
        throw UsageError(name + ": " + std::to_string(cells) + " voxel cells and " + std::to_string(features) +
                         " feature positions over the cameras; the catalog builds at most " +
                         std::to_string(kMostCells) + " cells and fewer than " + std::to_string(kMostFeatures) +
                         " positions (fewer voxels=, a smaller width= and height=)");
    }
    const std::int64_t multiple = o.resnet != 0 ? 32 : kStride;  // a ResNet's deepest level is at stride 32
    if (o.size[0] % multiple != 0 || o.size[1] % multiple != 0) {
        throw UsageError(name + ": the image size " + std::to_string(o.size[0]) + "x" + std::to_string(o.size[1]) +
                         " must be a multiple of " + std::to_string(multiple) + " each way (the backbone's stride)");
    }
    return o;
}

NodeId backbone_block(Model& model, NodeId x, std::int64_t in, std::int64_t out, std::int64_t stride, int index,
                      ImportMode mode) {
    const std::string name = "backbone." + std::to_string(index);
    return ir::relu(model.graph, batch_norm2d(model, conv(model, x, in, out, 3, stride, 1, false, name + ".0"),
                                              name + ".1", mode));
}

// The small stem: [batch x cameras, 3, H, W] -> [batch x cameras, C, H/8, W/8].
NodeId small_backbone(Model& model, NodeId x, const OccupancyOptions& o, ImportMode mode) {
    x = backbone_block(model, x, 3, 16, 2, 0, mode);
    x = backbone_block(model, x, 16, 32, 2, 1, mode);
    x = backbone_block(model, x, 32, o.channels, 2, 2, mode);
    return backbone_block(model, x, o.channels, o.channels, 1, 3, mode);
}

// A ResNet trunk and a feature pyramid over its strides 8, 16 and 32: [batch x cameras, 3, H, W] ->
// [batch x cameras, C, H/8, W/8].
NodeId pyramid_backbone(Model& model, NodeId x, const OccupancyOptions& o, ImportMode mode) {
    ir::Graph& g = model.graph;
    const std::vector<Stage> stages = resnet_trunk(model, x, 3, static_cast<int>(o.resnet), "backbone.", mode);
    NodeId top = conv(model, stages[3].node, stages[3].channels, o.channels, 1, 1, 0, true, "fpn.lateral5");
    for (int level = 2; level >= 1; --level) {
        const std::string name = "fpn.lateral" + std::to_string(level + 2);
        const NodeId lateral = conv(model, stages[static_cast<std::size_t>(level)].node,
                                    stages[static_cast<std::size_t>(level)].channels, o.channels, 1, 1, 0, true, name);
        top = ir::add(g, lateral, upsample2x(g, top));
    }
    return conv(model, top, o.channels, o.channels, 3, 1, 1, true, "fpn.smooth");
}

// [batch x cameras, C, h, w] -> the cameras' features summed per voxel cell, as planes [batch, C x Z, Y, X].
NodeId lift(Model& model, NodeId features, const OccupancyOptions& o, std::int64_t batch) {
    ir::Graph& g = model.graph;
    const std::int64_t c = o.channels, h = o.size[1] / kStride, w = o.size[0] / kStride;
    const geometry::VoxelCells cells{static_cast<int>(o.voxels[0]), static_cast<int>(o.voxels[1]),
                                     static_cast<int>(o.voxels[2])};
    std::vector<geometry::Camera> rig = geometry::production_rig(static_cast<int>(o.stored[0]),
                                                                 static_cast<int>(o.stored[1]));
    rig.resize(static_cast<std::size_t>(o.cameras));
    const std::vector<std::int64_t> ids = geometry::lifting_indices(rig, static_cast<int>(o.size[0]),
                                                                    static_cast<int>(o.size[1]), kStride, cells);
    // The gathered axis first: [cameras x h x w, batch, C], and a row of zeros after it for the unseen cells.
    NodeId table = ir::reshape(g, features, ir::Shape{batch, o.cameras, c, h * w});
    table = ir::transpose(g, table, {1, 3, 0, 2});
    table = ir::reshape(g, table, ir::Shape{o.cameras * h * w, batch, c});
    table = ir::concat(g, {table, ir::fill(g, 0.0, {ir::DType::F32, ir::Shape{1, batch, c}}, "lift.unseen")}, 0);
    const NodeId id_node = ir::constant(g, ir::Shape{static_cast<std::int64_t>(ids.size())},
                                        std::vector<float>(ids.begin(), ids.end()), "lift.indices");
    NodeId voxels = ir::gather(g, table, id_node, "lift.gather");  // [cameras x cells, batch, C]
    voxels = ir::reshape(g, voxels, ir::Shape{o.cameras, cells.count(), batch, c});
    voxels = ir::reduce_sum(g, voxels, {0}, false, "lift.sum");        // [cells, batch, C]
    voxels = ir::transpose(g, voxels, {1, 2, 0});                      // [batch, C, cells], cells z-major
    return ir::reshape(g, voxels, ir::Shape{batch, c * o.voxels[2], o.voxels[1], o.voxels[0]});
}

}  // namespace

Model build_occupancy(std::string_view spec, std::string_view options, std::int64_t batch,
                      const ir::Shape& sample_shape, int classes, ImportMode mode) {
    const OccupancyOptions o = parse_occupancy(spec, options, sample_shape);
    const std::int64_t cells = o.voxels[0] * o.voxels[1] * o.voxels[2];
    if (sample_shape.rank() != 0 && classes != cells) {
        throw UsageError("model '" + std::string(spec) + "' predicts " + std::to_string(cells) + " voxel cells (voxels=" +
                         std::to_string(o.voxels[0]) + "x" + std::to_string(o.voxels[1]) + "x" +
                         std::to_string(o.voxels[2]) + "); the data has " + std::to_string(classes) +
                         " labels per sample: give voxels= as the data's grid= (clips:...,target=occupancy,grid=XxYxZ)");
    }
    Model model;
    model.spec = std::string(spec);
    model.binary_target = true;
    ir::Graph& g = model.graph;
    const std::int64_t width = o.size[0], height = o.size[1];
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape{batch, 3 * o.cameras, height, width}});
    NodeId x = ir::reshape(g, model.input, ir::Shape{batch * o.cameras, 3, height, width});
    x = o.resnet != 0 ? pyramid_backbone(model, x, o, mode) : small_backbone(model, x, o, mode);
    x = lift(model, x, o, batch);
    x = ir::relu(g, conv(model, x, o.channels * o.voxels[2], 64, 3, 1, 1, true, "head.0"));
    x = conv(model, x, 64, o.voxels[2], 3, 1, 1, true, "head.2");
    model.logits = ir::reshape(g, x, ir::Shape{batch, cells}, "logits");
    return model;
}

}  // namespace dojo::frontend::catalog
