// Per-stage op times and per-step overheads (stage_times.h).
#include "stage_times.h"

#include <algorithm>

#include "dojo/sim/cpu_kernel_time.h"
#include "dojo/sim/op_time.h"
#include "fp8_operand_copies.h"
#include "fused_attention.h"
#include "row_kernels.h"

namespace dojo::sim {
namespace {

using ir::NodeId;
using ir::OpKind;

// The level a node's data lives at: the weights' for the update and for ops reading weights with no working copy
// beside the activations, else the activations'.
const std::string& data_level(const compiler::Plan& plan, const std::vector<NodeId>& reads, std::uint32_t node,
                              const MemoryUse& mem) {
    bool reads_weights = false;
    for (const NodeId input : reads) {
        const OpKind op = plan.step.graph.node(input).op;
        reads_weights = reads_weights || op == OpKind::Parameter || op == OpKind::State;
    }
    return plan.per_step[node] || (reads_weights && mem.working_copy_bytes == 0) ? mem.weights_level
                                                                                : mem.activations_level;
}

// Whether each value reaches a product's operand: a MatMul reads it, or a view or rounding of it (Reshape,
// Transpose, RoundTo, RoundGrad) that reaches one. Node ids are topological, so one pass from the last node back.
std::vector<bool> reaches_a_product(const ir::Graph& g) {
    std::vector<bool> reaches(g.size(), false);
    for (auto i = static_cast<std::uint32_t>(g.size()); i-- > 0;) {
        const ir::Node& node = g.node(NodeId{i});
        const bool passes_on = node.op == OpKind::Reshape || node.op == OpKind::Transpose ||
                               node.op == OpKind::RoundTo || node.op == OpKind::RoundGrad;
        if (node.op == OpKind::MatMul) {
            for (const NodeId input : node.inputs) {
                reaches[input.index] = true;
            }
        } else if (passes_on && reaches[i]) {
            reaches[node.inputs[0].index] = true;
        }
    }
    return reaches;
}

bool swaps_last_two_axes(const std::vector<int>& perm) {
    const int n = static_cast<int>(perm.size());
    bool swaps = n >= 2 && perm[static_cast<std::size_t>(n - 2)] == n - 1 && perm[static_cast<std::size_t>(n - 1)] == n - 2;
    for (int k = 0; k + 2 < n; ++k) {
        swaps = swaps && perm[static_cast<std::size_t>(k)] == k;
    }
    return swaps;
}

// Which axes of a rank-`rank` value a ReduceSum sums.
std::vector<bool> summed_axes(const ir::ReduceAttrs& attrs, int rank) {
    std::vector<bool> summed(static_cast<std::size_t>(rank), attrs.axes.empty());
    for (const int a : attrs.axes) {
        summed[static_cast<std::size_t>(a < 0 ? a + rank : a)] = true;
    }
    return summed;
}

// The nodes the device's matrix software runs as part of a product (Device::transposes_in_place,
// bias_gradient_in_epilogue), which move nothing of their own:
// - a Transpose of the last two axes that only products read (they read its input transposed where it lies);
// - a ReduceSum over every axis but the last of a value that reaches a product (a bias gradient, summed from the
//   output gradient as the weight gradient's product streams it);
// - a ReduceSum over the batch axes of a batched product's output that nothing else reads (a weight gradient per
//   sample summed over the batch: the product accumulates the batch into the same sums).
std::vector<bool> runs_in_a_product(const ir::Graph& g, const Device& device) {
    std::vector<bool> in_product(g.size(), false);
    if (!device.transposes_in_place && !device.bias_gradient_in_epilogue) {
        return in_product;
    }
    std::vector<int> readers(g.size(), 0), product_readers(g.size(), 0);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        for (const NodeId input : node.inputs) {
            ++readers[input.index];
            product_readers[input.index] += node.op == OpKind::MatMul ? 1 : 0;
        }
    }
    const std::vector<bool> reaches = reaches_a_product(g);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (device.transposes_in_place && node.op == OpKind::Transpose && readers[i] > 0 &&
            product_readers[i] == readers[i]) {
            in_product[i] = swaps_last_two_axes(std::get<ir::TransposeAttrs>(node.attrs).perm);
        }
        if (!device.bias_gradient_in_epilogue || node.op != OpKind::ReduceSum) {
            continue;
        }
        const NodeId x = node.inputs[0];
        const int rank = static_cast<int>(g.type(x).shape.rank());
        const std::vector<bool> summed = summed_axes(std::get<ir::ReduceAttrs>(node.attrs), rank);
        const auto leading_summed = [&](int count) {  // axes [0, count) summed, the rest kept
            for (int k = 0; k < rank; ++k) {
                if (summed[static_cast<std::size_t>(k)] != (k < count)) {
                    return false;
                }
            }
            return true;
        };
        const bool all_but_last = rank >= 2 && leading_summed(rank - 1);
        const bool batch_only = rank >= 3 && leading_summed(rank - 2);
        const bool of_a_product = g.node(x).op == OpKind::MatMul && readers[x.index] == 1;
        in_product[i] = (all_but_last && reaches[x.index]) || (batch_only && of_a_product);
    }
    return in_product;
}

bool passes_value_on(OpKind op) {
    return op == OpKind::Reshape || op == OpKind::Transpose || op == OpKind::RoundTo || op == OpKind::RoundGrad;
}

// The products of the model's Linear layers: a MatMul that reads a parameter (through views and roundings), or
// whose result becomes a parameter's gradient (through views, roundings and sums over the batch). Attention's
// batched products do neither.
std::vector<bool> linear_products(const compiler::Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::vector<bool> from_parameter(g.size(), false), to_gradient(g.size(), false), linear(g.size(), false);
    for (std::uint32_t i = 0; i < g.size(); ++i) {  // ids are topological: inputs come first
        const ir::Node& node = g.node(NodeId{i});
        from_parameter[i] = node.op == OpKind::Parameter ||
                            (passes_value_on(node.op) && from_parameter[node.inputs[0].index]);
        if (node.op == OpKind::MatMul) {
            for (const NodeId input : node.inputs) {
                linear[i] = linear[i] || from_parameter[input.index];
            }
        }
    }
    for (const NodeId gradient : plan.step.gradients) {
        to_gradient[gradient.index] = true;
    }
    for (auto i = static_cast<std::uint32_t>(g.size()); i-- > 0;) {
        const ir::Node& node = g.node(NodeId{i});
        if (!to_gradient[i]) {
            continue;
        }
        if (node.op == OpKind::MatMul) {
            linear[i] = true;
        } else if (passes_value_on(node.op) || node.op == OpKind::ReduceSum) {
            to_gradient[node.inputs[0].index] = true;
        }
    }
    return linear;
}

// The precision a node's product runs at (Device::fp8_linear_only): at cfp8, a product outside the Linear layers
// runs as BF16 where the device says so.
compiler::Precision product_precision(const compiler::Plan& plan, const Device& device,
                                      const std::vector<bool>& linear, NodeId id) {
    const bool narrowed = device.fp8_linear_only && plan.precision == compiler::Precision::Cfp8 &&
                          plan.step.graph.node(id).op == OpKind::MatMul && !linear[id.index];
    return narrowed ? compiler::Precision::Bf16 : plan.precision;
}

// One MatMul's time on its stage's device, as time_stage_ops times it (a product is never fused nor run inside
// another).
double product_seconds(const compiler::Plan& plan, const Device& device, const std::vector<MemoryUse>& memory,
                       const std::vector<bool>& linear, NodeId id) {
    const ir::Node& node = plan.step.graph.node(id);
    const MemoryUse& mem = memory[static_cast<std::size_t>(plan.stage[id.index])];
    const double bandwidth = level_bandwidth(device, data_level(plan, node.inputs, id.index, mem));
    const double share = plan.tensor.divided[id.index] ? static_cast<double>(plan.strategy.tp) : 1.0;
    return op_time(plan.step.graph, id, device, product_precision(plan, device, linear, id), share,
                   plan.per_step[id.index], bandwidth)
        .seconds;
}

// Where tensor-parallel collectives are pipelined with products (Device::tensor_comm_overlapped): how long each
// collective can run beside them. A collective follows the product whose partial sums it reduces (its
// reduce-scatter half streams beside that product) and feeds the nearest product that reads the result (its
// all-gather half streams beside that one), as Transformer Engine's userbuffers split both into chunks.
std::map<std::uint32_t, double> comm_windows(const compiler::Plan& plan, const Device& device,
                                             const std::vector<MemoryUse>& memory, const std::vector<bool>& linear,
                                             const std::map<std::uint32_t, double>& tensor_comm_after) {
    std::map<std::uint32_t, double> windows;
    if (!device.tensor_comm_overlapped || tensor_comm_after.empty()) {
        return windows;
    }
    const ir::Graph& g = plan.step.graph;
    std::vector<std::vector<std::uint32_t>> readers(g.size());
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        for (const NodeId input : g.node(NodeId{i}).inputs) {
            readers[input.index].push_back(i);
        }
    }
    constexpr std::size_t kSearchLimit = 256;  // nodes visited looking for the reading product
    for (const auto& [i, comm] : tensor_comm_after) {
        double window =
            g.node(NodeId{i}).op == OpKind::MatMul ? product_seconds(plan, device, memory, linear, NodeId{i}) : 0;
        std::vector<std::uint32_t> queue = readers[i];
        std::vector<bool> seen(g.size(), false);
        for (std::size_t k = 0; k < queue.size() && k < kSearchLimit; ++k) {
            const std::uint32_t r = queue[k];
            if (seen[r] || !plan.live[r]) {
                continue;
            }
            seen[r] = true;
            if (g.node(NodeId{r}).op == OpKind::MatMul) {
                window += product_seconds(plan, device, memory, linear, NodeId{r});
                break;
            }
            queue.insert(queue.end(), readers[r].begin(), readers[r].end());
        }
        windows[i] = window;
    }
    return windows;
}

// What a GPU software stack's kernels change in the nodes' times: bytes that row kernels and fused attention keep on
// chip (row_kernels.h, fused_attention.h), and the transposed copies of FP8 operands (fp8_operand_copies.h).
struct StackKernels {
    FusedAttention attention;
    std::vector<double> on_chip;     // [node]: bytes its kernel does not move
    std::vector<double> fp8_copies;  // [node]: bytes its operands' FP8 copies move, kernels of their own before it
};

StackKernels stack_kernels(const compiler::Plan& plan, const Device& device, const std::vector<bool>& linear) {
    const ir::Graph& g = plan.step.graph;
    StackKernels k;
    k.attention = fused_attention(plan, device);
    k.on_chip = row_kernel_savings(plan, device, k.attention.score);
    std::vector<bool> fp8(g.size(), false);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        k.on_chip[i] += k.attention.bytes_on_chip[i];
        fp8[i] = device.cfp8_operand_bytes == 1 && g.node(NodeId{i}).op == OpKind::MatMul &&
                 product_precision(plan, device, linear, NodeId{i}) == compiler::Precision::Cfp8;
    }
    k.fp8_copies = fp8_operand_copy_bytes(plan, device, fp8);
    return k;
}

// Node i's time `t` with the stack's kernels: its on-chip bytes taken off (the roofline again), its FP8 operand
// copies added at its data's `bandwidth`.
void apply_stack_kernels(const StackKernels& k, std::uint32_t i, double bandwidth, OpTime& t) {
    if (k.on_chip[i] > 0) {
        t.bytes = std::max(0.0, t.bytes - k.on_chip[i]);
        t.memory_s = bandwidth > 0 ? t.bytes / bandwidth : 0.0;
        t.seconds = std::max(t.compute_s, t.memory_s);
        t.memory_bound = t.memory_s > t.compute_s;
    }
    if (k.fp8_copies[i] > 0) {
        const double copy_s = bandwidth > 0 ? k.fp8_copies[i] / bandwidth : 0.0;
        t.bytes += k.fp8_copies[i];
        t.memory_s += copy_s;
        t.seconds += copy_s;
    }
}

}  // namespace

bool in_sram(const Device& device, const std::string& level) {
    return level == "SRAM" || device.memory_bandwidth == 0;
}

double level_bandwidth(const Device& device, const std::string& level) {
    return in_sram(device, level) ? device.local_bandwidth : device.memory_bandwidth;
}

StageOpTimes time_stage_ops(const compiler::Plan& plan, const Device& device,
                            const std::vector<MemoryUse>& memory,
                            const std::map<std::uint32_t, double>& tensor_comm_after, bool record_timeline,
                            const runtime::ExecPlan* host) {
    const ir::Graph& g = plan.step.graph;
    const compiler::Strategy& st = plan.strategy;
    const auto P = static_cast<std::size_t>(st.pp);
    StageOpTimes out;
    out.stages.resize(P);
    out.by_op.resize(P);
    out.spans.resize(P);
    out.node_s.assign(g.size(), 0.0);
    out.backward_done.assign(g.size(), 0.0);
    std::vector<int> fused_into(g.size(), -1);  // [node]: its group; -1 when it runs alone
    for (std::size_t k = 0; k < plan.fusion_groups.size(); ++k) {
        for (const NodeId member : plan.fusion_groups[k].members) {
            fused_into[member.index] = static_cast<int>(k);
        }
    }
    const std::vector<KernelTraffic> traffic =
        host != nullptr ? kernel_traffic(*host, plan.step.updates, device.cache_bytes) : std::vector<KernelTraffic>{};
    const std::vector<bool> in_product = host != nullptr ? std::vector<bool>(g.size(), false)
                                                         : runs_in_a_product(g, device);
    const std::vector<bool> linear = device.fp8_linear_only ? linear_products(plan) : std::vector<bool>(g.size(), true);
    // A CPU host's kernels are the ExecPlan's, timed as they run: no GPU stack's kernels change them.
    const StackKernels stack = stack_kernels(plan, host != nullptr ? Device{} : device, linear);
    const FusedAttention& attention = stack.attention;
    const std::map<std::uint32_t, double> windows =
        host != nullptr ? std::map<std::uint32_t, double>{}
                        : comm_windows(plan, device, memory, linear, tensor_comm_after);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (ir::is_leaf(node.op) || !plan.live[i]) {
            continue;
        }
        const int group = fused_into[i];
        const compiler::FusionGroup* fused = group >= 0 ? &plan.fusion_groups[static_cast<std::size_t>(group)] : nullptr;
        const auto s = static_cast<std::size_t>(plan.stage[i]);
        StageTime& stage = out.stages[s];
        const std::string& level = data_level(plan, fused != nullptr ? fused->externals : node.inputs, i, memory[s]);
        const double bandwidth = level_bandwidth(device, level);
        const double share = plan.tensor.divided[i] ? static_cast<double>(st.tp) : 1.0;
        OpTime t;
        if (host != nullptr) {
            t = cpu_kernel_time(*host, NodeId{i}, device, traffic[i]);
            const runtime::NodeKernel k = host->kernel[i];
            fused = k == runtime::NodeKernel::FusedGroup || k == runtime::NodeKernel::FusedMember
                        ? &host->groups[static_cast<std::size_t>(host->member_of[i])]
                        : nullptr;
        } else if (in_product[i] && fused == nullptr) {
            // read by its product as it streams (runs_in_a_product): nothing of its own
        } else if (fused == nullptr) {
            t = op_time(g, NodeId{i}, device, product_precision(plan, device, linear, NodeId{i}), share,
                        plan.per_step[i], bandwidth);
        } else if (fused->members.back().index == i) {
            t = group_time(g, *fused, device, plan.precision, share, plan.per_step[i], bandwidth);
        }  // else: an earlier member, timed with its group's last
        apply_stack_kernels(stack, i, bandwidth, t);
        const auto comm_it = tensor_comm_after.find(i);
        const double comm_all = comm_it != tensor_comm_after.end() ? comm_it->second : 0.0;
        const auto window = windows.find(i);
        const double comm = window != windows.end() ? std::max(0.0, comm_all - window->second) : comm_all;
        out.node_s[i] = t.seconds;
        ++stage.nodes;
        const double runs = plan.per_step[i] ? 1.0 : static_cast<double>(st.micro_batches);
        if (plan.per_step[i]) {
            stage.optimizer_s += t.seconds;
            out.per_step_flops += t.flops * share;
        } else {
            (i <= plan.last_forward.index ? stage.forward_s : stage.backward_s) += t.seconds;
            if (attention.score[i] && i <= plan.last_forward.index) {
                // The fused backward kernel computes the core's scores and probabilities again, on chip: their
                // arithmetic once more, counted at the start of the stage's backward work.
                stage.backward_s += t.compute_s;
                stage.roofline.flop += t.flops * runs;
                stage.roofline.compute_s += t.compute_s * runs;
            }
            if (!plan.recomputation.recomputed.empty() && plan.recomputation.recomputed[i] && !attention.in_core[i]) {
                stage.recompute_s += t.seconds;  // selective: this attention core's node runs again (a fused
                                                 // group's time comes with its last member)
            }
            out.backward_done[i] = stage.backward_s;
            stage.tensor_comm_s += comm;
            stage.tensor_comm_total_s += comm_all;
            out.per_microbatch_flops += t.flops * share;
        }
        const std::string kind = fused != nullptr ? std::string("FusedElementwise") : std::string(ir::to_string(node.op));
        if (record_timeline && !plan.per_step[i] && (t.seconds > 0 || comm > 0)) {
            const std::string label = fused != nullptr ? "fused " + std::to_string(fused->members.size()) + " ops"
                                      : node.name.empty() ? kind
                                                          : kind + " " + node.name;
            out.spans[s].push_back({label, t.seconds, comm, i <= plan.last_forward.index});
        }
        // The roofline counts what runs: a recomputed forward node runs twice per micro-batch.
        const compiler::Plan::Recomputation& rc = plan.recomputation;
        const bool again = st.recompute && !plan.per_step[i] && i <= plan.last_forward.index && rc.segments[s] > 0 &&
                           (!st.selective || (rc.recomputed[i] && !attention.in_core[i]));
        const double roof_runs = again ? 2 * runs : runs;
        StageRoofline& roof = stage.roofline;
        roof.flop += t.flops * roof_runs;
        (in_sram(device, level) ? roof.sram_bytes : roof.memory_bytes) += t.bytes * roof_runs;
        roof.compute_s += t.compute_s * roof_runs;
        roof.memory_s += t.memory_s * roof_runs;
        OpClassTime& cls = out.by_op[s][kind];
        cls.op = kind;
        ++cls.nodes;
        cls.seconds += t.seconds * runs;
        cls.flops += t.flops * runs;
        cls.memory_bound += t.memory_bound ? 1 : 0;
    }
    if (host != nullptr) {  // the executor's apply: one stage (the runtime runs data-parallel plans only)
        out.stages[0].optimizer_s += cpu_apply_seconds(device, traffic.back());
    }
    return out;
}

void add_stage_overheads(const compiler::Plan& plan, const Device& device, const std::vector<MemoryUse>& memory,
                         std::vector<StageTime>& stages) {
    const compiler::Strategy& st = plan.strategy;
    const int m = st.micro_batches;
    for (std::size_t s = 0; s < stages.size(); ++s) {
        StageTime& stage = stages[s];
        stage.stage = static_cast<int>(s);
        stage.memory = memory[s];
        if (st.recompute && plan.recomputation.segments[s] > 0) {
            // Full: the forward pass and its tensor-parallel all-reduces again. Selective: the attention cores'
            // nodes (time_stage_ops summed them), which hold no tensor-parallel communication.
            if (!st.selective) {
                stage.recompute_s = stage.forward_s + stage.tensor_comm_s / 2;
            }
            stage.backward_s += stage.recompute_s;
        } else {
            stage.recompute_s = 0;
        }
        if (st.zero) {
            stage.optimizer_s /= st.dp;
        }
        StageRoofline& roof = stage.roofline;
        double& weight_bytes = in_sram(device, memory[s].weights_level) ? roof.sram_bytes : roof.memory_bytes;
        if (memory[s].working_copy_bytes > 0) {  // the update refreshes the copy: the new weights read once more
            const double read_s = memory[s].parameters_bytes / level_bandwidth(device, memory[s].weights_level);
            const double write_s = memory[s].working_copy_bytes / device.local_bandwidth;
            stage.optimizer_s += read_s + write_s;
            weight_bytes += memory[s].parameters_bytes;
            roof.sram_bytes += memory[s].working_copy_bytes;
            roof.memory_s += read_s + write_s;
        }
        if (m > 1) {  // each micro-batch's weight gradients added to the sum of the earlier ones where they live
            const double bw = level_bandwidth(device, memory[s].weights_level);
            const double bytes = 3.0 * memory[s].gradients_bytes;
            stage.backward_s += (m - 1.0) / m * bytes / bw;
            weight_bytes += (m - 1.0) * bytes;
            roof.memory_s += (m - 1.0) * bytes / bw;
        }
    }
}

void finish_rooflines(const compiler::Strategy& strategy, std::vector<StageTime>& stages) {
    const auto m = static_cast<double>(strategy.micro_batches);
    for (StageTime& stage : stages) {
        StageRoofline& roof = stage.roofline;
        roof.link_s = m * (stage.tensor_comm_total_s + stage.respread_s) + stage.grad_allreduce_exposed_s +
                      stage.param_allgather_s;
        roof.busy_s = stage.busy_s + stage.grad_allreduce_exposed_s + stage.param_allgather_exposed_s;
        roof.bound = roof.memory_s >= roof.compute_s && roof.memory_s >= roof.link_s ? "memory"
                     : roof.link_s > roof.compute_s                                  ? "links"
                                                                                     : "compute";
    }
}

}  // namespace dojo::sim
