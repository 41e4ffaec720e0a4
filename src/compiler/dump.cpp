// Text dumps of the compiler passes' decisions (dump.h).
#include "dojo/compiler/dump.h"

#include <cstdio>
#include <set>

#include "dojo/compiler/insert_transfers.h"
#include "dojo/compiler/schedule.h"
#include "dojo/compiler/split_tensor_parallel.h"
#include "dojo/ir/op.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;


std::string line(const char* format, auto... values) {
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, format, values...);
    return buffer;
}

std::string node_text(const ir::Graph& g, NodeId id) {
    return g.describe(id) + " " + g.type(id).to_string();
}

std::string layouts(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    if (plan.strategy.tp == 1) {
        return "tensor-parallel layouts: tp=1, every value whole on its device\n";
    }
    std::string out = line("tensor-parallel layouts over tp=%d (live computed nodes)\n", plan.strategy.tp);
    std::set<std::uint32_t> reduced;
    for (const auto& ar : plan.tensor.all_reduces) {
        reduced.insert(ar.node.index);
    }
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (!plan.live[i] || ir::is_leaf(g.node(NodeId{i}).op)) {
            continue;
        }
        const int axis = plan.tensor.layout[i].split_axis;
        const bool sequence = !plan.tensor.sequence_split.empty() && plan.tensor.sequence_split[i];
        const std::string where = reduced.count(i) != 0 ? "partial -> all-reduce"
                                  : sequence             ? "split along the tokens (sp)"
                                  : axis >= 0            ? "split axis " + std::to_string(axis)
                                                         : "whole";
        out += "  " + node_text(g, NodeId{i}) + ": " + where + (plan.tensor.divided[i] ? ", work / tp" : "") + "\n";
    }
    for (const NodeId c : plan.tensor.conflicts) {
        out += "  conflict (runs whole): " + g.describe(c) + "\n";
    }
    return out;
}

std::string stages(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::string out = line("pipeline stages: %d\n", plan.strategy.pp);
    for (int s = 0; s < plan.strategy.pp; ++s) {
        std::int64_t count = 0, all = 0;
        double flops = 0;
        NodeId first, last;
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            if (!plan.live[i] || plan.stage[i] != s || ir::is_leaf(g.node(NodeId{i}).op)) {
                continue;
            }
            ++all;
            if (i <= plan.last_forward.index) {
                ++count;
                flops += ir::cost_of(g, NodeId{i}).flops;
                first = first.valid() ? first : NodeId{i};
                last = NodeId{i};
            }
        }
        out += line("  stage %d: %lld forward nodes (%lld with backward and update), %.4g GFLOP forward per "
                    "micro-batch\n", s, static_cast<long long>(count), static_cast<long long>(all), flops / 1e9);
        if (first.valid()) {
            out += "    from " + g.describe(first) + "\n    to   " + g.describe(last) + "\n";
        }
    }
    return out;
}

std::string transfers(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::string out = line("transfers between stages (per micro-batch): %zu\n", plan.transfers.size());
    for (const Plan::Transfer& t : plan.transfers) {
        out += line("  %d -> %d %s %.6g MB: ", t.from, t.to, t.forward ? "forward " : "backward", t.bytes / 1e6) +
               node_text(g, t.node) + "\n";
    }
    return out;
}

std::string fusion(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::string out = line("elementwise fusion groups: %zu\n", plan.fusion_groups.size());
    for (std::size_t k = 0; k < plan.fusion_groups.size(); ++k) {
        const FusionGroup& group = plan.fusion_groups[k];
        const NodeId at = group.members.back();
        out += line("  group %zu (stage %d, %zu members, runs at #%u):", k, plan.stage[at.index],
                    group.members.size(), at.index);
        for (const NodeId m : group.members) {
            out += line(" #%u ", m.index) + std::string(ir::op_info(g.node(m).op).name);
        }
        out += "\n";
    }
    return out;
}

std::string recompute(const Plan& plan) {
    const Plan::Recomputation& rc = plan.recomputation;
    if (!plan.strategy.recompute) {
        return "recomputation: off (recompute=1 turns it on)\n";
    }
    std::string out = "recomputation per stage (bytes per device per micro-batch, F32)\n";
    for (std::size_t s = 0; s < rc.segments.size(); ++s) {
        out += rc.segments[s] == 0
                   ? line("  stage %zu: not recomputed (it would not save memory)\n", s)
                   : line("  stage %zu: %d segments, checkpoints %.6g MB, largest segment %.6g MB\n", s,
                          rc.segments[s], rc.checkpoint_bytes[s] / 1e6, rc.segment_bytes[s] / 1e6);
    }
    return out;
}

std::string buckets(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::string out = line("gradient buckets (at most %zu bytes of FP32 each)\n", plan.bucket_bytes);
    for (std::size_t s = 0; s < plan.gradient_buckets.size(); ++s) {
        for (std::size_t b = 0; b < plan.gradient_buckets[s].size(); ++b) {
            const GradientBucket& bucket = plan.gradient_buckets[s][b];
            out += line("  stage %zu bucket %zu: %zu elements:", s, b, bucket.elements);
            for (const std::size_t k : bucket.gradients) {
                out += " " + g.node(g.parameters()[k]).name;
            }
            out += "\n";
        }
    }
    return out;
}

// Stage programs, each with its receives (named by the training-graph node they carry) and all-reduces.
std::string stage_programs(const Plan& plan, const std::vector<StageProgram>& all,
                           const std::vector<NodeId>& training_of) {
    const ir::Graph& g = plan.step.graph;
    std::string out;
    for (const StageProgram& p : all) {
        if (p.empty()) {
            continue;
        }
        out += line("  stage %d %s: %zu nodes, %zu outputs, receives %zu", p.stage, to_string(p.part),
                    p.graph.size(), p.graph.outputs().size(), p.receives.size());
        out += p.all_reduce_after.empty() ? "\n" : line(", all-reduces %zu\n", p.all_reduce_after.size());
        for (const StageProgram::Receive& r : p.receives) {
            const NodeId value = training_of.empty() ? r.value : training_of[r.value.index];
            out += line("    from stage %d %s: ", r.from_stage, to_string(r.from_part)) + node_text(g, value);
            out += training_of.empty() ? "\n" : ", held here as " + p.graph.type(r.input).to_string() + "\n";
        }
    }
    return out;
}

std::string programs(const Plan& plan) {
    if (plan.strategy.tp == 1) {
        return "stage programs (insert_transfers)\n" + stage_programs(plan, insert_transfers(plan), {});
    }
    std::string out = "tensor-parallel device programs (split_tensor_parallel), each cut into stage programs "
                      "(insert_transfers); every rank's have rank 0's structure\n";
    try {
        const std::vector<DeviceProgram> devices = split_tensor_parallel(plan);
        for (const DeviceProgram& p : devices) {
            out += line("  rank %d: %zu nodes, %zu leaves, %zu all-reduces\n", p.rank, p.graph.size(),
                        p.leaves.size(), p.all_reduce_after.size());
        }
        out += "  rank 0's stage programs:\n" + stage_programs(plan, insert_transfers(plan, devices[0]),
                                                                devices[0].origin);
    } catch (const UsageError& e) {
        out += std::string("  not split: ") + e.what() + "\n";
    }
    return out;
}

std::string schedule(const Plan& plan) { return dump_schedule(plan.strategy); }

// What the liveness pass left out: computed nodes no loss, gradient or update needs (the runtime skips them too).
std::string liveness(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::size_t live = 0, computed = 0;
    std::string dead;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        if (ir::is_leaf(g.node(NodeId{i}).op)) {
            continue;
        }
        ++computed;
        live += plan.live[i] ? 1 : 0;
        if (!plan.live[i]) {
            dead += "  dead " + node_text(g, NodeId{i}) + "\n";
        }
    }
    return line("liveness: %zu of %zu computed nodes live\n", live, computed) + dead;
}

// Each pass's dump, in the order dump_pass_names lists them.
const std::vector<std::pair<std::string, std::string (*)(const Plan&)>>& dumps() {
    static const std::vector<std::pair<std::string, std::string (*)(const Plan&)>> table{
        {"layouts", layouts}, {"liveness", liveness}, {"stages", stages}, {"transfers", transfers}, {"fusion", fusion},
        {"recompute", recompute}, {"buckets", buckets}, {"programs", programs}, {"schedule", schedule}};
    return table;
}

}  // namespace

const std::vector<std::string>& dump_pass_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> all;
        for (const auto& entry : dumps()) {
            all.push_back(entry.first);
        }
        return all;
    }();
    return names;
}

std::string dump_pass(const Plan& plan, const std::string& name) {
    for (const auto& [pass, dump] : dumps()) {
        if (pass == name) {
            return dump(plan);
        }
    }
    std::string names;
    for (const std::string& n : dump_pass_names()) {
        names += (names.empty() ? "" : ", ") + n;
    }
    throw UsageError("unknown pass '" + name + "' to dump; the passes: " + names + " (and exec-plan for the CPU lowering, --dump for the placement)");
}

}  // namespace dojo::compiler
