// The roofline of one node (op_time.h): op-table cost, matrix tiling efficiency, element widths.
#include "dojo/sim/op_time.h"

#include <algorithm>
#include <cmath>

#include "dojo/ir/elementwise.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

using ir::OpKind;

double padded(double extent, double tile) { return std::ceil(extent / tile) * tile; }

// The fraction of the matrix units a [batch x m x k] . [k x n] product keeps busy: padding of each extent to the
// tile and the last, partly filled wave of tiles over the device's parallel units.
double tiling_efficiency(double batch, double m, double n, double k, const Device& d) {
    const auto tile = static_cast<double>(d.matrix_tile);
    if (m <= 0 || n <= 0 || k <= 0) {
        return 1.0;
    }
    const double padding = (m * n * k) / (padded(m, tile) * padded(n, tile) * padded(k, tile));
    const auto units = static_cast<double>(d.parallel_units);
    // Too few output tiles to fill the units: the contraction splits across them too (split-K), as cuBLAS and
    // cuDNN do for weight gradients.
    const double output_tiles = batch * std::ceil(m / tile) * std::ceil(n / tile);
    const double splits = output_tiles >= units ? 1.0 : std::min(std::floor(units / output_tiles), std::ceil(k / tile));
    const double tiles = output_tiles * splits;
    const double waves = std::ceil(tiles / units);
    return padding * tiles / (waves * units);
}

double matrix_efficiency(const ir::Graph& g, const ir::Node& node, const Device& d) {
    const auto dim = [](const ir::Shape& s, int i) { return static_cast<double>(s[static_cast<std::size_t>(i)]); };
    const ir::Shape& out = node.type.shape;
    switch (node.op) {
    case OpKind::MatMul: {
        const ir::Shape& a = g.type(node.inputs[0]).shape;
        const double m = dim(out, out.rank() - 2), n = dim(out, out.rank() - 1), k = dim(a, a.rank() - 1);
        return tiling_efficiency(static_cast<double>(out.numel()) / (m * n), m, n, k, d);
    }
    case OpKind::Conv2d: {  // implicit GEMM: m = N OH OW, n = K, k = C/groups R S
        const ir::Shape& w = g.type(node.inputs[1]).shape;
        return tiling_efficiency(1, dim(out, 0) * dim(out, 2) * dim(out, 3), dim(out, 1),
                                 dim(w, 1) * dim(w, 2) * dim(w, 3), d);
    }
    case OpKind::Conv2dBackwardData: {  // out = dx [N, C, H, W]; k = K R S
        const ir::Shape& w = g.type(node.inputs[1]).shape;
        return tiling_efficiency(1, dim(out, 0) * dim(out, 2) * dim(out, 3), dim(out, 1),
                                 dim(w, 0) * dim(w, 2) * dim(w, 3), d);
    }
    case OpKind::Conv2dBackwardFilter: {  // out = dw [K, C, R, S]; k = N OH OW
        const ir::Shape& gy = g.type(node.inputs[1]).shape;
        return tiling_efficiency(1, dim(out, 0), dim(out, 1) * dim(out, 2) * dim(out, 3),
                                 dim(gy, 0) * dim(gy, 2) * dim(gy, 3), d);
    }
    default:
        return 1.0;
    }
}

// Where a device models its cache (a CPU host), an op whose bytes fit in it streams at the cache's rate.
OpTime finish(OpTime t, double bandwidth, const Device& device) {
    if (device.cache_bandwidth > 0 && device.cache_bytes > 0 && t.bytes <= device.cache_bytes) {
        bandwidth = device.cache_bandwidth;
    }
    t.memory_s = bandwidth > 0 ? t.bytes / bandwidth : 0.0;
    t.seconds = std::max(t.compute_s, t.memory_s);
    t.memory_bound = t.memory_s > t.compute_s;
    return t;
}

}  // namespace

bool runs_reference(ir::OpKind op) {
    switch (op) {
    case OpKind::MatMul: case OpKind::Conv2d: case OpKind::Conv2dBackwardData: case OpKind::Conv2dBackwardFilter:
    case OpKind::MaxPool2d: case OpKind::MaxPool2dBackward: case OpKind::RoundTo: case OpKind::RoundGrad:
    case OpKind::ReduceSum:
        return false;
    default:
        return !ir::is_elementwise_map(op) && !ir::is_leaf(op);
    }
}

bool stores_narrow(const Device& device, compiler::Precision precision) {
    return precision != compiler::Precision::Fp32 && device.rounds_on_store;
}

OpTime op_time(const ir::Graph& graph, ir::NodeId id, const Device& device, compiler::Precision precision,
               double share, bool fp32_master, double bandwidth) {
    const ir::Node& node = graph.node(id);
    if (node.op == ir::OpKind::RoundTo && device.rounds_on_store) {
        return {};  // its producer stores the narrow format (Device::rounds_on_store)
    }
    const ir::OpCost cost = ir::cost_of(graph, id);
    OpTime t;
    t.matrix = cost.unit == ir::ComputeUnit::Matrix;
    double width = 1.0;  // of the op table's (F32) bytes
    if (!fp32_master && stores_narrow(device, precision)) {
        width = (t.matrix && precision == compiler::Precision::Cfp8) ? device.cfp8_operand_bytes / 4 : 0.5;
    }
    t.flops = cost.flops / share;
    t.bytes = (cost.bytes_read + cost.bytes_written) * width / share;
    if (t.matrix) {
        const std::string p(compiler::to_string(fp32_master ? compiler::Precision::Fp32 : precision));
        const auto it = device.matrix_flops.find(p);
        const double peak = it != device.matrix_flops.end() ? it->second : device.matrix_flops.at("fp32");
        const double sustained = p != "fp32" && device.sustained_matrix_fraction_16bit > 0
                                     ? device.sustained_matrix_fraction_16bit
                                     : device.sustained_matrix_fraction;
        t.compute_s = t.flops / (peak * sustained * matrix_efficiency(graph, node, device));
    } else if (cost.unit == ir::ComputeUnit::Vector) {
        const bool fp32 = fp32_master || !stores_narrow(device, precision);
        t.compute_s = t.flops / (fp32 ? device.vector_flops_fp32 : device.vector_flops_16bit);
    }
    if (device.reference_bandwidth > 0 && runs_reference(node.op)) {
        bandwidth = device.reference_bandwidth;
        t.memory_s = t.bytes / bandwidth;  // plain loops: no cache rate (finish() would pick one)
        t.seconds = std::max(t.compute_s, t.memory_s);
        t.memory_bound = t.memory_s > t.compute_s;
        return t;
    }
    return finish(t, bandwidth, device);
}

OpTime group_time(const ir::Graph& graph, const compiler::FusionGroup& group, const Device& device,
                  compiler::Precision precision, double share, bool fp32_master, double bandwidth) {
    const bool fp32 = fp32_master || !stores_narrow(device, precision);
    const double width = fp32 ? 1.0 : 0.5;  // of F32: elementwise values
    auto f32_bytes = [&](ir::NodeId id) { return 4.0 * static_cast<double>(graph.type(id).shape.numel()); };
    OpTime t;
    for (std::size_t k = 0; k < group.members.size(); ++k) {
        t.flops += ir::cost_of(graph, group.members[k]).flops / share;
        t.bytes += group.exported[k] ? f32_bytes(group.members[k]) * width / share : 0.0;
    }
    for (const ir::NodeId e : group.externals) {
        t.bytes += f32_bytes(e) * width / share;
    }
    t.compute_s = t.flops / (fp32 ? device.vector_flops_fp32 : device.vector_flops_16bit);
    return finish(t, bandwidth, device);
}

compiler::NodeCost stage_cost(const Device& device, compiler::Precision precision) {
    const double bandwidth = device.local_bytes > 0 ? device.local_bandwidth : device.memory_bandwidth;
    return [device, precision, bandwidth](const ir::Graph& graph, ir::NodeId node, double share) {
        return op_time(graph, node, device, precision, share, false, bandwidth).seconds;
    };
}

}  // namespace dojo::sim
