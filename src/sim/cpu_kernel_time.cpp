// The CPU runtime's kernels, timed (cpu_kernel_time.h).
#include "dojo/sim/cpu_kernel_time.h"

#include <algorithm>
#include <cmath>
#include <list>
#include <string>
#include <unordered_map>

#include "dojo/ir/elementwise.h"
#include "dojo/numerics/convert.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/transpose.h"

namespace dojo::sim {
namespace {

using ir::OpKind;
using runtime::NodeKernel;

constexpr std::size_t kChunkBytes = std::size_t{64} << 10;  // the cache model's granularity over the arena

double elements(const ir::Graph& g, ir::NodeId id) { return static_cast<double>(g.type(id).shape.numel()); }

// An LRU cache over the arena's chunks: touch() says how many of a range's bytes were in it, then holds them.
class LruChunks {
public:
    explicit LruChunks(double cache_bytes)
        : capacity_(static_cast<std::size_t>(std::max(0.0, cache_bytes)) / kChunkBytes) {}

    double touch(std::size_t offset, std::size_t bytes) {
        double hit = 0;
        for (std::size_t chunk = offset / kChunkBytes; bytes > 0 && chunk * kChunkBytes < offset + bytes; ++chunk) {
            const std::size_t begin = std::max(offset, chunk * kChunkBytes);
            const std::size_t end = std::min(offset + bytes, (chunk + 1) * kChunkBytes);
            const auto found = where_.find(chunk);
            if (found != where_.end()) {
                hit += static_cast<double>(end - begin);
                order_.erase(found->second);
            }
            order_.push_front(chunk);
            where_[chunk] = order_.begin();
            if (order_.size() > capacity_) {
                where_.erase(order_.back());
                order_.pop_back();
            }
        }
        return hit;
    }

private:
    std::size_t capacity_;
    std::list<std::size_t> order_;  // most recent first
    std::unordered_map<std::size_t, std::list<std::size_t>::iterator> where_;
};

// The buffer that holds node `id`'s value (an alias's is its input's): its arena bytes.
void touch(const runtime::ExecPlan& exec, ir::NodeId id, LruChunks& cache, KernelTraffic& traffic) {
    const std::uint32_t owner = exec.source[id.index];
    const std::size_t bytes = exec.value_bytes[owner];
    const double hit = cache.touch(exec.memory.offset_bytes[owner], bytes);
    traffic.cached += hit;
    traffic.uncached += static_cast<double>(bytes) - hit;
}

// The buffers kernel `i` reads and writes, in that order.
void kernel_accesses(const runtime::ExecPlan& exec, std::uint32_t i, LruChunks& cache, KernelTraffic& traffic) {
    const ir::Graph& g = *exec.graph;
    if (exec.kernel[i] == NodeKernel::FusedGroup) {
        const compiler::FusionGroup& group = exec.groups[static_cast<std::size_t>(exec.group_at[i])];
        for (const ir::NodeId e : group.externals) {
            touch(exec, e, cache, traffic);
        }
        for (std::size_t k = 0; k < group.members.size(); ++k) {
            if (group.exported[k]) {
                touch(exec, group.members[k], cache, traffic);
            }
        }
        return;
    }
    for (const ir::NodeId input : g.node(ir::NodeId{i}).inputs) {
        touch(exec, input, cache, traffic);
    }
    touch(exec, ir::NodeId{i}, cache, traffic);
}

bool runs_kernel(NodeKernel k) {
    return k != NodeKernel::None && k != NodeKernel::FusedMember && k != NodeKernel::Alias;
}

// Memory time of `traffic`: hits at the cache's rate, misses at `dram_bandwidth`.
double traffic_seconds(const KernelTraffic& traffic, const Device& device, double dram_bandwidth) {
    const double cached = device.cache_bandwidth > 0 ? traffic.cached / device.cache_bandwidth : 0.0;
    return cached + (dram_bandwidth > 0 ? traffic.uncached / dram_bandwidth : 0.0);
}

// A fused group's member per element, by the kind of map it is.
double member_seconds(OpKind op, const CpuKernelRates& r) {
    switch (op) {
    case OpKind::Div: case OpKind::Sqrt:
        return r.fused_divide_s;
    case OpKind::Exp: case OpKind::Log: case OpKind::Tanh: case OpKind::Sigmoid: case OpKind::Erf:
        return r.fused_function_s.at(op);
    case OpKind::ReduceSum:
        return r.fused_sum_s;
    default:  // cheap maps, broadcasts, BF16 roundings on the way
        return r.fused_map_s;
    }
}

OpTime fused_group_time(const ir::Graph& g, const compiler::FusionGroup& group, const Device& device,
                        const KernelTraffic& traffic) {
    const CpuKernelRates& r = device.cpu_kernels;
    OpTime t;
    for (const ir::NodeId m : group.members) {
        const ir::Node& member = g.node(m);
        const double n = member.op == OpKind::ReduceSum ? elements(g, member.inputs[0]) : elements(g, m);
        t.compute_s += n * member_seconds(member.op, r);
        t.flops += ir::cost_of(g, m).flops;
    }
    t.bytes = traffic.cached + traffic.uncached;
    t.memory_s = traffic_seconds(traffic, device, r.fused_memory_bandwidth);
    t.memory_bound = t.memory_s > t.compute_s;
    t.seconds = t.compute_s + t.memory_s + r.kernel_overhead_s;
    return t;
}

// How many times slower than the rates measured a oneDNN kernel computes for the vectors it runs on: the rates are
// measured on kernels using this CPU's widest vectors, so a kernel oneDNN builds for AVX2 where the CPU has AVX-512
// (its choice for some shapes: LeNet's second filter gradient, six input channels) does half the work an instruction.
double vector_width_slowdown(const std::string& implementation) {
    const bool narrow = implementation.find("avx2") != std::string::npos &&
                        implementation.find("avx512") == std::string::npos;
    return narrow && numerics::best_isa() == numerics::Isa::Avx512 ? 2.0 : 1.0;
}

// The share of a BF16 kernel's dot products that are real: AVX512-BF16's VDPBF16PS multiplies BF16 values in pairs
// along the sum (oneDNN's BF16 layouts pair input channels, "...16a2b"), so an odd count there pads the last pair
// (LeNet's first convolution, one input channel, does twice its products' work).
double bf16_pair_efficiency(const ir::Graph& g, const ir::Node& node) {
    auto dim = [&](ir::NodeId id, int axis) {
        const ir::Shape& s = g.type(id).shape;
        return static_cast<double>(s[static_cast<std::size_t>(axis < 0 ? s.rank() + axis : axis)]);
    };
    double summed = 0;  // the length of each dot product's innermost pairs
    switch (node.op) {
    case OpKind::Conv2d: summed = dim(node.inputs[1], 1); break;               // input channels (per group)
    case OpKind::Conv2dBackwardData: summed = dim(node.inputs[1], 0); break;   // output channels
    case OpKind::MatMul: summed = dim(node.inputs[0], -1); break;              // k
    default: return 1.0;  // a filter gradient sums over images and pixels: pairs of those
    }
    return summed / (2 * std::ceil(summed / 2));
}

// A convolution's rate over its output pixels (over the batch: N OH OW) as a share of its rate over many
// (CpuKernelRates): measured at 32, 128 and 512 pixels, 1 from 1,152 on, linear in the logarithm of the pixels between.
double conv_pixel_efficiency(const ir::Graph& g, const ir::Node& node, bool bf16, const CpuKernelRates& r) {
    int direction = 0;
    ir::NodeId output_gradient = node.inputs[0];  // [N, K, OH, OW]: the forward output's pixels
    switch (node.op) {
    case OpKind::Conv2d: output_gradient = ir::NodeId{}; break;
    case OpKind::Conv2dBackwardData: direction = 1; break;
    case OpKind::Conv2dBackwardFilter: direction = 2, output_gradient = node.inputs[1]; break;
    default: return 1.0;
    }
    const ir::Shape& y = output_gradient.valid() ? g.type(output_gradient).shape : node.type.shape;
    const double pixels = static_cast<double>(y[0] * y[2] * y[3]);
    const double* measured = r.conv_pixel_efficiency[direction][bf16 ? 1 : 0];
    const double at[4] = {32, 128, 512, 1152};
    const double share[4] = {measured[0], measured[1], measured[2], 1.0};
    if (pixels <= at[0]) {
        return share[0];
    }
    for (int k = 1; k < 4; ++k) {
        if (pixels <= at[k]) {
            const double f = std::log(pixels / at[k - 1]) / std::log(at[k] / at[k - 1]);
            return share[k - 1] + f * (share[k] - share[k - 1]);
        }
    }
    return 1.0;
}

// A product's rate as a share of the largest's (CpuKernelRates): measured at 2 x 64 x 512 x 512 FLOP and 2 x 1024^3
// (1), linear in the logarithm of the FLOP between; the small product's share below it.
double product_size_efficiency(const ir::Graph& g, ir::NodeId id, bool bf16, const CpuKernelRates& r) {
    if (g.node(id).op != OpKind::MatMul) {
        return 1.0;
    }
    const double small = 2.0 * 64 * 512 * 512, large = 2.0 * 1024 * 1024 * 1024;
    const double flops = ir::cost_of(g, id).flops;
    const double share = r.matmul_small_efficiency[bf16 ? 1 : 0];
    if (flops >= large) {
        return 1.0;
    }
    if (flops <= small) {
        return share;
    }
    return share + (1.0 - share) * std::log(flops / small) / std::log(large / small);
}

// A oneDNN product or convolution: the roofline of op_time.h at its operands' width, its compute slowed by the
// vectors its implementation runs on, by the product's size, by few output pixels and, in BF16, by padded pairs.
OpTime onednn_time(const runtime::ExecPlan& exec, ir::NodeId id, const Device& device) {
    const ir::Graph& g = *exec.graph;
    const bool bf16 = exec.kernel[id.index] == NodeKernel::OneDnnBf16;
    OpTime t = op_time(g, id, device, bf16 ? compiler::Precision::Bf16 : compiler::Precision::Fp32, 1, false,
                       device.memory_bandwidth);
    t.compute_s *= vector_width_slowdown(exec.onednn->implementation(id));
    t.compute_s /= conv_pixel_efficiency(g, g.node(id), bf16, device.cpu_kernels);
    t.compute_s /= product_size_efficiency(g, id, bf16, device.cpu_kernels);
    if (bf16) {
        t.compute_s /= bf16_pair_efficiency(g, g.node(id));
    }
    t.seconds = std::max(t.compute_s, t.memory_s);
    t.memory_bound = t.memory_s > t.compute_s;
    return t;
}

// The reorders a oneDNN kernel runs between its buffers' layouts and its primitive's (runtime::OneDnnKernels::
// reorders): copies, each a parallel kernel of its own, that move their elements at the copy rate (as a tiled
// transpose does). A BF16 copy its producer writes needs no reorder (runtime::reorder_skipped).
OpTime reorders_time(const runtime::ExecPlan& exec, ir::NodeId id, const CpuKernelRates& r) {
    OpTime t;
    for (const runtime::OneDnnKernels::Reorder& reorder : exec.onednn->reorders(id)) {
        if (!runtime::reorder_skipped(exec, reorder.value, reorder.into_shared_copy)) {
            t.bytes += static_cast<double>(reorder.bytes_moved);
            t.seconds += r.kernel_overhead_s;
        }
    }
    t.memory_s = t.bytes / r.copy_bandwidth;
    t.seconds += t.memory_s;
    return t;
}

// A vectorised max-pooling's work, by the kernel the runtime runs for it.
double pool_seconds(const ir::Graph& g, const ir::Node& node, bool channel_blocked, const CpuKernelRates& r) {
    const ir::PoolAttrs& attrs = std::get<ir::PoolAttrs>(node.attrs);
    const ir::Shape& x = g.type(node.inputs[0]).shape;
    const ir::Shape& y = node.op == OpKind::MaxPool2d ? node.type.shape : g.type(node.inputs[1]).shape;
    const bool forward = node.op == OpKind::MaxPool2d;
    const double positions = static_cast<double>(y.numel() * attrs.kernel[0] * attrs.kernel[1]);
    switch (runtime::max_pool_kernel(attrs, x, y, channel_blocked)) {
    case runtime::MaxPoolKernel::Tiled2x2: {  // a step per 16 outputs of a row, however few a short row fills
        const double steps = static_cast<double>(y[0] * y[1] * y[2] * ((y[3] + 15) / 16));
        return steps * (forward ? r.pool_tiled_forward_s : r.pool_tiled_backward_s);
    }
    case runtime::MaxPoolKernel::BlockedWindows:
        return positions * (forward ? r.pool_window_forward_s : r.pool_window_backward_s);
    case runtime::MaxPoolKernel::Windows:
        break;
    }
    return positions * (forward ? r.pool_window_plain_forward_s : r.pool_window_plain_backward_s);
}

OpTime plus(OpTime t, double fixed_s) {
    t.seconds += fixed_s;
    return t;
}

// A RoundTo of its own (whatever the kernel that runs it): its elements at the rate of its format and rounding, on
// the cores together, or on one thread where the tensor is too small to split (numerics/convert.h).
OpTime rounding_time(const ir::Graph& g, ir::NodeId id, const CpuKernelRates& r) {
    const auto& attrs = std::get<ir::RoundAttrs>(g.node(id).attrs);
    const bool small = elements(g, id) < 2.0 * static_cast<double>(numerics::kMinElementsPerThread);
    const bool stochastic = attrs.rounding == numerics::Rounding::Stochastic;
    const double per_element = attrs.format == numerics::FormatKind::Bf16 ? (small ? r.round_bf16_small_s : r.round_bf16_s)
                               : stochastic ? (small ? r.round_cfp8_stochastic_small_s : r.round_cfp8_stochastic_s)
                                            : (small ? r.round_cfp8_small_s : r.round_cfp8_s);
    OpTime t;
    t.bytes = 8.0 * elements(g, id);
    t.memory_s = elements(g, id) * per_element;
    t.seconds = t.memory_s + r.kernel_overhead_s;
    t.memory_bound = true;
    return t;
}

// The op table's reference kernel: plain loops that read its inputs and write its output at the op's reference rate
// (an elementwise map's; the transposes' where the kind states none for the op), after a node's fixed cost.
OpTime reference_time(const ir::Graph& g, ir::NodeId id, const Device& device) {
    const ir::OpCost cost = ir::cost_of(g, id);
    OpTime t;
    t.flops = cost.flops;
    t.bytes = 4.0 * elements(g, id);
    for (const ir::NodeId input : g.node(id).inputs) {
        t.bytes += 4.0 * elements(g, input);
    }
    const CpuKernelRates& r = device.cpu_kernels;
    const auto rate = r.reference_bandwidth.find(g.node(id).op);
    const double bandwidth = rate != r.reference_bandwidth.end()       ? rate->second
                             : ir::is_elementwise_map(g.node(id).op) ? r.reference_map_bandwidth
                                                                       : device.reference_bandwidth;
    t.compute_s = cost.flops / device.vector_flops_fp32;
    t.memory_s = bandwidth > 0 ? t.bytes / bandwidth : 0.0;
    t.memory_bound = t.memory_s > t.compute_s;
    t.seconds = std::max(t.compute_s, t.memory_s) + device.cpu_kernels.node_overhead_s;
    return t;
}

}  // namespace

std::optional<runtime::ExecPlan> lower_for_host(const compiler::Plan& plan, const Device& device) {
    const compiler::Strategy& s = plan.strategy;
    if (!device.runs_cpu_runtime || !runtime::runs_on_cpu_runtime(s)) {
        return std::nullopt;
    }
    // As the trainer lowers a rank's step (runtime/trainer.h): the updated values kept for apply(), and with dp > 1
    // the gradients as sync points (the all-reduce the simulator times on its own).
    runtime::ExecutorOptions options;
    options.keep.push_back(plan.last_forward);
    for (const autodiff::Assignment& a : plan.step.updates) {
        options.keep.push_back(a.value);
    }
    options.in_place_updates = plan.step.updates;
    if (s.dp > 1) {
        for (const ir::NodeId g : plan.step.gradients) {
            if (g.valid()) {
                options.sync_points.push_back(g);
            }
        }
        options.on_computed = [](std::size_t) {};
        options.before_read = [](std::size_t) {};
    }
    return runtime::lower_cpu(plan, options);
}

std::vector<KernelTraffic> kernel_traffic(const runtime::ExecPlan& exec,
                                          std::span<const autodiff::Assignment> updates, double cache_bytes) {
    const std::size_t n = exec.kernel.size();
    LruChunks cache(cache_bytes);
    std::vector<KernelTraffic> traffic;
    for (int step = 0; step < 2; ++step) {  // the first warms the cache; the second is the one counted
        traffic.assign(n + 1, KernelTraffic{});
        for (std::uint32_t i = 0; i < n; ++i) {
            if (runs_kernel(exec.kernel[i])) {
                kernel_accesses(exec, i, cache, traffic[i]);
            }
        }
        for (const autodiff::Assignment& a : updates) {  // apply(): each value read, its leaf written
            if (exec.source[a.value.index] != a.target.index) {  // (nothing for one computed in place)
                touch(exec, a.value, cache, traffic[n]);
                touch(exec, a.target, cache, traffic[n]);
            }
        }
    }
    return traffic;
}

OpTime cpu_kernel_time(const runtime::ExecPlan& exec, ir::NodeId id, const Device& device,
                       const KernelTraffic& traffic) {
    const ir::Graph& g = *exec.graph;
    const CpuKernelRates& r = device.cpu_kernels;
    const ir::Node& node = g.node(id);
    switch (exec.kernel[id.index]) {
    case NodeKernel::None: case NodeKernel::FusedMember: case NodeKernel::Alias:
        return {};
    case NodeKernel::FusedGroup:
        return fused_group_time(g, exec.groups[static_cast<std::size_t>(exec.group_at[id.index])], device, traffic);
    case NodeKernel::OneDnn: case NodeKernel::OneDnnBf16: {
        OpTime t = plus(onednn_time(exec, id, device), r.matrix_call_overhead_s);
        const OpTime reorders = reorders_time(exec, id, r);
        t.bytes += reorders.bytes;
        t.memory_s += reorders.memory_s;
        t.seconds += reorders.seconds;
        t.memory_bound = t.memory_s > t.compute_s;
        return t;
    }
    case NodeKernel::VectorisedPool: {
        OpTime t;
        t.memory_s = pool_seconds(g, node, exec.blocked[id.index], r);
        t.seconds = t.memory_s + r.kernel_overhead_s;
        return t;
    }
    case NodeKernel::TiledTranspose: {  // runs: a copy, its bytes read and written at the copy rate; tiles: by element
        OpTime t;
        const auto& perm = std::get<ir::TransposeAttrs>(node.attrs).perm;
        const double n = elements(g, id);
        if (runtime::transpose_way(g.type(node.inputs[0]).shape, perm) == runtime::TransposeWay::Runs) {
            t.memory_s = 2 * n * sizeof(float) / r.copy_bandwidth;
        } else {
            const bool threads = runtime::transpose_runs_on_threads(static_cast<std::int64_t>(n));
            t.memory_s = n * (threads ? r.transpose_tiles_s : r.transpose_tiles_small_s);
        }
        t.seconds = t.memory_s + r.kernel_overhead_s;
        return t;
    }
    case NodeKernel::RoundBlocked: case NodeKernel::RoundToBf16Copy: case NodeKernel::RoundGroupMaxAbs:
    case NodeKernel::RoundShard:
        return rounding_time(g, id, r);
    case NodeKernel::Reference:
        return node.op == OpKind::RoundTo ? rounding_time(g, id, r) : reference_time(g, id, device);
    }
    return {};
}

double cpu_apply_seconds(const Device& device, const KernelTraffic& traffic) {
    return traffic_seconds(traffic, device, device.cpu_kernels.copy_bandwidth);
}

}  // namespace dojo::sim
