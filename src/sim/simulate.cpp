// simulate(): per-stage op times, memory plan, collectives on SimGrid, the 1F1B event run, energy (simulate.h).
#include "dojo/sim/simulate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "core_layout_time.h"
#include "dojo/compiler/schedule.h"
#include "dojo/sim/op_time.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

using compiler::Plan;
using ir::NodeId;
using ir::OpKind;


std::string bytes_text(double bytes) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3g GB", bytes / 1e9);
    return buffer;
}

// The bandwidth of a memory level; a machine without HBM (a bare tile) streams from SRAM (and does not fit).
double level_bandwidth(const Device& device, const std::string& level) {
    return level == "SRAM" || device.memory_bandwidth == 0 ? device.local_bandwidth : device.memory_bandwidth;
}

// Device index of (tensor rank, stage, replica): tensor rank fastest.
std::int64_t device_index(const compiler::Strategy& s, std::int64_t rank, std::int64_t stage, std::int64_t replica) {
    return rank + static_cast<std::int64_t>(s.tp) * (stage + static_cast<std::int64_t>(s.pp) * replica);
}

// "12.3%".
std::string fmt_percent(double fraction) {
    const long tenths = std::lround(fraction * 1000);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "%";
}

}  // namespace

SimResult simulate(const Plan& plan, const Topology& topology, const std::string& precision, bool record_timeline) {
    const auto started = std::chrono::steady_clock::now();
    check_precision(precision);
    const compiler::Strategy& st = plan.strategy;
    const Device& device = topology.device;
    if (st.devices() > device.count) {
        throw UsageError("strategy " + st.to_string() + " needs " + std::to_string(st.devices()) + " devices; " +
                         topology.machine + " has " + std::to_string(device.count) + " " + device.kind);
    }
    if (st.tp > topology.levels.front().devices) {
        throw UsageError("tp=" + std::to_string(st.tp) + " is larger than one " + topology.levels.front().kind + " (" +
                         std::to_string(topology.levels.front().devices) + " " + device.kind +
                         "): tensor parallelism stays inside it");
    }
    const ir::Graph& g = plan.step.graph;
    const int pp = st.pp;
    const int m = st.micro_batches;
    SimResult r;
    r.model = plan.model;
    r.machine = topology.machine;
    r.device = device.kind;
    r.precision = precision;
    r.strategy = st;
    r.global_batch = plan.global_batch;
    r.devices_used = st.devices();
    r.devices_total = device.count;

    const std::vector<MemoryUse> memory = plan_memory(plan, device, precision);

    // Collectives, registered once per distinct size, simulated together.
    // What a device keeps live through the step (the busiest stage's): on CPU hosts, whether a gradient bucket still
    // finds the cache after the step has streamed all of it through (network.h).
    double resident_bytes = 0;
    for (const MemoryUse& use : memory) {
        resident_bytes = std::max(resident_bytes, use.total_bytes());
    }
    Network network(topology, resident_bytes);
    std::vector<std::int64_t> tp_group;
    for (int rank = 0; rank < st.tp; ++rank) {
        tp_group.push_back(rank);
    }
    // Activations and gradients travel at 16 bits unless the precision is fp32 (the graph's bytes are F32).
    const double wire = precision == "fp32" ? 1.0 : 0.5;
    std::map<double, std::size_t> tp_handles;  // by bytes on the wire
    for (const auto& ar : plan.tensor.all_reduces) {
        if (tp_handles.count(ar.bytes * wire) == 0) {
            tp_handles[ar.bytes * wire] = network.all_reduce(tp_group, ar.bytes * wire);
        }
    }
    // The data-parallel all-reduce of each stage's gradient buckets (the plan's, as the runtime cuts them). On fixed
    // links a collective's time is affine in its bytes (steps x (latency + bytes / bandwidth), plus the reductions),
    // so the smallest and the largest bucket of a stage are simulated and the rest interpolated: exact, and a model
    // of thousands of buckets costs two simulations per stage. A device with a cache changes rates where a step's
    // flows leave it (network.h), so the buckets are fitted apart by which of their algorithms' steps do: a ring's
    // step moves bytes / n, a 2-D mesh's bytes / sqrt(n), a binomial tree's all the bytes.
    const auto P = static_cast<std::size_t>(pp);
    const std::vector<NodeId>& parameters = g.parameters();
    std::vector<std::vector<double>> bucket_bytes(P);  // [stage][bucket]: bytes on the wire per device
    struct BucketFit {                                // a stage's smallest and largest bucket, simulated
        double low_bytes = 0, high_bytes = 0;
        std::size_t low = 0, high = 0;                // their handles
    };
    std::vector<std::map<int, BucketFit>> grad_fits(P);  // [stage][cache regime]
    const auto cache_regime = [&](double bytes) {
        const double n = static_cast<double>(st.dp);
        return (beyond_cache(device, resident_bytes, bytes) ? 1 : 0) |
               (beyond_cache(device, resident_bytes, bytes / n) ? 2 : 0) |
               (beyond_cache(device, resident_bytes, bytes / std::sqrt(n)) ? 4 : 0);
    };
    std::vector<double> grad_bytes(P, 0.0);
    for (std::size_t s = 0; s < P && st.dp > 1; ++s) {
        for (const compiler::GradientBucket& bucket : plan.gradient_buckets[s]) {
            double bytes = 0;
            for (const std::size_t k : bucket.gradients) {
                bytes += plan.tensor.bytes_per_device(g, parameters[k]) * plan.gradient_wire_bytes / sizeof(float);
            }
            bucket_bytes[s].push_back(bytes);
            grad_bytes[s] += bytes;
        }
        if (bucket_bytes[s].empty()) {
            continue;
        }
        std::vector<std::int64_t> ring;
        for (int replica = 0; replica < st.dp; ++replica) {
            ring.push_back(device_index(st, 0, static_cast<std::int64_t>(s), replica));
        }
        std::map<int, std::pair<double, double>> extremes;  // regime -> smallest, largest bucket
        for (const double bytes : bucket_bytes[s]) {
            const auto [it, added] = extremes.emplace(cache_regime(bytes), std::pair{bytes, bytes});
            it->second = {std::min(it->second.first, bytes), std::max(it->second.second, bytes)};
        }
        for (const auto& [regime, low_high] : extremes) {
            BucketFit& fit = grad_fits[s][regime];
            fit.low_bytes = low_high.first;
            fit.high_bytes = low_high.second;
            fit.low = network.all_reduce(ring, fit.low_bytes);
            fit.high = fit.low_bytes == fit.high_bytes ? fit.low : network.all_reduce(ring, fit.high_bytes);
        }
    }
    // Pipeline sends, per device and micro-batch. A value the tensor-parallel group holds whole on every device is
    // sent as Megatron-LM's scatter/gather does (Narayanan et al. 2021, sec. 4.1): each of the tp devices sends its
    // 1/tp over its own link, and the receiving group all-gathers the pieces (half a ring all-reduce's steps) on its
    // fast links; a split value is sent as each device holds it.
    std::map<std::pair<int, int>, double> sends;    // (from, to) stage -> bytes per device per micro-batch
    std::map<std::pair<int, int>, double> gathers;  // (from, to) stage -> bytes the receivers all-gather
    for (const Plan::Transfer& t : plan.transfers) {
        const bool whole = st.tp > 1 && !plan.tensor.layout[t.node.index].split() &&
                           (plan.tensor.sequence_split.empty() || !plan.tensor.sequence_split[t.node.index]);
        sends[{t.from, t.to}] += whole ? t.bytes * wire / st.tp : t.bytes * wire;
        gathers[{t.from, t.to}] += whole ? t.bytes * wire : 0.0;
    }
    std::map<std::pair<int, int>, std::size_t> send_handles, gather_handles;
    std::map<double, std::size_t> gather_by_bytes;  // every stage's group is alike: one simulation per size
    for (const auto& [key, bytes] : sends) {
        send_handles[key] = network.send(device_index(st, 0, key.first, 0), device_index(st, 0, key.second, 0), bytes);
        if (gathers[key] > 0) {
            auto it = gather_by_bytes.find(gathers[key]);
            if (it == gather_by_bytes.end()) {
                it = gather_by_bytes.emplace(gathers[key], network.all_reduce(tp_group, gathers[key])).first;
            }
            gather_handles[key] = it->second;
        }
    }
    const std::vector<CollectiveTime> times = network.evaluate();

    // Per-stage op times.
    std::map<std::uint32_t, double> tp_comm_after;  // node -> its all-reduce time
    for (const auto& ar : plan.tensor.all_reduces) {
        tp_comm_after[ar.node.index] += times[tp_handles.at(ar.bytes * wire)].seconds;
    }
    r.stages.resize(static_cast<std::size_t>(pp));
    for (int s = 0; s < pp; ++s) {
        r.stage_devices.push_back(device_index(st, 0, s, 0));
    }
    std::vector<std::map<std::string, OpClassTime>> by_op(static_cast<std::size_t>(pp));
    double per_microbatch_flops = 0, per_step_flops = 0;
    std::vector<double> backward_done(g.size(), 0.0);  // [node]: its stage's backward compute up to and with it
    // Fused elementwise groups run where their last member is, as one pass (op_time.h: group_time).
    struct OpSpan {
        std::string name;
        double seconds = 0;
        double comm_s = 0;  // its tensor-parallel all-reduce, after it
        bool forward = true;
    };
    std::vector<std::vector<OpSpan>> stage_ops(static_cast<std::size_t>(pp));  // with record_timeline: in order
    std::vector<double> node_s(g.size(), 0.0);  // [node]: its time per run (a group's at its last member)
    // On a mesh of cores, the compiler's core placement (compiler/place_spatial.h) of each stage's layers.
    const bool on_mesh = device.mesh_columns > 0 && device.mesh_rows > 0;
    const compiler::CoreMesh mesh = on_mesh ? core_mesh(topology, precision) : compiler::CoreMesh{};
    const compiler::SpatialPlacement placement =
        on_mesh ? compiler::place_spatial(plan, mesh, precision, compiler::LayoutChoice::Auto,
                                          stage_cost(device, precision))
                : compiler::SpatialPlacement{};
    std::vector<int> fused_into(g.size(), -1);  // [node]: its group; -1 when it runs alone
    for (std::size_t k = 0; k < plan.fusion_groups.size(); ++k) {
        for (const NodeId member : plan.fusion_groups[k].members) {
            fused_into[member.index] = static_cast<int>(k);
        }
    }
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (ir::is_leaf(node.op) || !plan.live[i]) {
            continue;
        }
        const int group = fused_into[i];
        const auto s = static_cast<std::size_t>(plan.stage[i]);
        StageTime& stage = r.stages[s];
        const MemoryUse& mem = memory[s];
        const std::vector<NodeId>& reads =
            group >= 0 ? plan.fusion_groups[static_cast<std::size_t>(group)].externals : node.inputs;
        bool reads_weights = false;
        for (const NodeId input : reads) {
            const OpKind op = g.node(input).op;
            reads_weights = reads_weights || op == OpKind::Parameter || op == OpKind::State;
        }
        const std::string& level = plan.per_step[i] || (reads_weights && mem.working_copy_bytes == 0)
                                       ? mem.weights_level
                                       : mem.activations_level;
        const double bandwidth = level_bandwidth(device, level);
        const double share = plan.tensor.divided[i] ? static_cast<double>(st.tp) : 1.0;
        OpTime t;
        if (group < 0) {
            t = op_time(g, NodeId{i}, device, precision, share, plan.per_step[i], bandwidth);
        } else if (plan.fusion_groups[static_cast<std::size_t>(group)].members.back().index == i) {
            t = group_time(g, plan.fusion_groups[static_cast<std::size_t>(group)], device, precision, share,
                           plan.per_step[i], bandwidth);
        }  // else: an earlier member, timed with its group's last
        const double comm = tp_comm_after.count(i) != 0 ? tp_comm_after.at(i) : 0.0;
        node_s[i] = t.seconds;
        ++stage.nodes;
        const double runs = plan.per_step[i] ? 1.0 : static_cast<double>(m);
        if (plan.per_step[i]) {
            stage.optimizer_s += t.seconds;
            per_step_flops += t.flops * share;
        } else {
            (i <= plan.last_forward.index ? stage.forward_s : stage.backward_s) += t.seconds;
            backward_done[i] = stage.backward_s;
            stage.tensor_comm_s += comm;
            per_microbatch_flops += t.flops * share;
        }
        const std::string kind = group >= 0 ? std::string("FusedElementwise") : std::string(ir::to_string(node.op));
        if (record_timeline && !plan.per_step[i] && (t.seconds > 0 || comm > 0)) {
            const std::string label =
                group >= 0
                    ? "fused " + std::to_string(plan.fusion_groups[static_cast<std::size_t>(group)].members.size()) +
                          " ops"
                    : (node.name.empty() ? kind : kind + " " + node.name);
            stage_ops[s].push_back({label, t.seconds, comm, i <= plan.last_forward.index});
        }
        OpClassTime& cls = by_op[s][kind];
        cls.op = kind;
        ++cls.nodes;
        cls.seconds += t.seconds * runs;
        cls.flops += t.flops * runs;
        cls.memory_bound += t.memory_bound ? 1 : 0;
    }
    // Gradient accumulation over micro-batches: read, add, write the gradients once per micro-batch after the first.
    // Recomputation runs the stage's forward pass (and its tensor-parallel all-reduces) again in each backward task.
    // ZeRO stage 1: each replica updates its 1/dp share of the parameters.
    std::vector<std::vector<CoreSpan>> core_spans(static_cast<std::size_t>(pp));  // [stage]: per micro-batch
    std::vector<bool> on_rectangles(static_cast<std::size_t>(pp), false);  // [stage]: layers side by side
    for (const compiler::StagePlacement& sp : placement.stages) {
        if (sp.fits) {
            const auto s = static_cast<std::size_t>(sp.stage);
            core_spans[s] = time_core_layout(sp, mesh, plan, node_s, r.stages[s]);
            on_rectangles[s] = !sp.temporal && sp.regions.size() > 1;
        }
    }
    for (std::size_t s = 0; s < r.stages.size(); ++s) {
        r.stages[s].stage = static_cast<int>(s);
        r.stages[s].memory = memory[s];
        if (st.recompute && plan.recomputation.segments[s] > 0) {
            r.stages[s].recompute_s = r.stages[s].forward_s + r.stages[s].tensor_comm_s / 2;
            r.stages[s].backward_s += r.stages[s].recompute_s;
        }
        if (st.zero) {
            r.stages[s].optimizer_s /= st.dp;
        }
        if (memory[s].working_copy_bytes > 0) {  // the update refreshes the copy: the new weights read once more
            r.stages[s].optimizer_s += memory[s].parameters_bytes / level_bandwidth(device, memory[s].weights_level) +
                                       memory[s].working_copy_bytes / device.local_bandwidth;
        }
        if (m > 1) {
            const double bw = level_bandwidth(device, memory[s].weights_level);
            r.stages[s].backward_s += (m - 1.0) / m * 3.0 * memory[s].gradients_bytes / bw;
        }
    }

    // The pipeline schedule's event run over (chunk, micro-batch, forward/backward) tasks in the order of
    // compiler/schedule.h (1F1B, or interleaved with vp > 1: each chunk 1/vp of its device's stage's work). A chunk
    // boundary from the last device back to the first is timed as the boundary into the last device (the same
    // bytes on the same kind of link).
    const auto VP = static_cast<std::size_t>(st.virtual_stages);
    const std::size_t K = P * VP;
    const double chunk = 1.0 / static_cast<double>(VP);
    auto send_time = [&](int from, int to) {
        const auto it = send_handles.find({from, to});
        const auto gather = gather_handles.find({from, to});
        return (it == send_handles.end() ? 0.0 : times[it->second].seconds) +
               (gather == gather_handles.end() ? 0.0 : times[gather->second].seconds / 2);
    };
    const int last_device = static_cast<int>(P) - 1;
    // The hop from chunk `from` to chunk `to` (neighbours): its link (devices) and the stage pair that times it.
    auto hop = [&](std::size_t from, std::size_t to) {
        const auto a = static_cast<int>(from % P), b = static_cast<int>(to % P);
        const bool wrap = std::max(from, to) % P == 0;  // the last device's chunk and the next chunk's first
        const std::pair<int, int> timed = !wrap ? std::pair{a, b}
                                          : to > from ? std::pair{last_device - 1, last_device}
                                                      : std::pair{last_device, last_device - 1};
        return std::pair{std::pair{a, b}, timed};
    };
    const auto M = static_cast<std::size_t>(m);
    std::vector<std::vector<double>> f_end(K, std::vector<double>(M, -1)), b_end = f_end, b_start = f_end;
    const std::vector<std::vector<compiler::PipelineTask>> order = compiler::pipeline_schedule(st);
    // The timeline (record_timeline): tasks, their ops in the first and last micro-batch, sends.
    auto record_send = [&](const std::pair<int, int>& link, const std::pair<int, int>& timed, double start,
                           std::size_t micro) {
        if (record_timeline) {
            const auto sent = sends.find(timed);
            r.timeline.push_back({"send " + std::to_string(link.first) + "->" + std::to_string(link.second) + " (" +
                                      std::to_string(micro) + ")",
                                  "send", link.first, true, start, send_time(timed.first, timed.second),
                                  sent == sends.end() ? 0.0 : sent->second, {}});
        }
    };
    auto record_task = [&](std::size_t s, std::size_t micro, bool backward, double start) {
        if (!record_timeline) {
            return;
        }
        const StageTime& stage = r.stages[s];
        const double compute = backward ? stage.backward_s : stage.forward_s;
        r.timeline.push_back({std::string(backward ? "backward " : "forward ") + std::to_string(micro),
                              backward ? "backward" : "forward", static_cast<int>(s), false, start,
                              (compute + stage.tensor_comm_s / 2) * chunk, 0, {}});
        if ((micro != 0 && micro + 1 != M) || VP > 1) {  // a chunk runs part of the stage's ops: no op detail
            return;
        }
        for (const CoreSpan& span : core_spans[s]) {
            if (span.forward != backward) {
                r.timeline.push_back({span.name, "cores", static_cast<int>(s), false, start + span.offset_s,
                                      span.seconds, 0, span.track});
            }
        }
        if (on_rectangles[s]) {  // the ops' times on all cores are not this task's timeline: the rectangles' are
            return;
        }
        double comm_total = 0;  // the task's share of tensor-parallel time, spread over the ops that cause it
        for (const OpSpan& op : stage_ops[s]) {
            comm_total += op.forward != backward ? op.comm_s : 0.0;
        }
        const double comm_scale = comm_total > 0 ? stage.tensor_comm_s / 2 / comm_total : 0.0;
        double at = start;
        for (const OpSpan& op : stage_ops[s]) {
            if (op.forward == backward) {
                continue;
            }
            if (op.seconds > 0) {
                r.timeline.push_back({op.name, "op", static_cast<int>(s), false, at, op.seconds, 0, {}});
                at += op.seconds;
            }
            if (op.comm_s > 0) {
                r.timeline.push_back({"tensor-parallel all-reduce", "tensor-parallel", static_cast<int>(s), false, at,
                                      op.comm_s * comm_scale, 0, {}});
                at += op.comm_s * comm_scale;
            }
        }
    };
    // What each task waited for, to walk the critical path back from the step's end.
    struct TaskRecord {
        std::size_t stage = 0, micro = 0;  // stage: the device's
        bool backward = false;
        double start = 0;
        std::ptrdiff_t cause = -1;       // the task it waited for (-1: none, it started at 0)
        bool via_send = false;           // the cause's output crossed a link: [send_start, send_end]
        std::pair<int, int> link;        // the devices
        std::pair<int, int> timed;       // the stage pair whose send it is timed as
        double send_start = 0, send_end = 0;
    };
    std::vector<TaskRecord> tasks;
    std::vector<std::ptrdiff_t> last_task(P, -1);
    std::vector<std::vector<std::ptrdiff_t>> f_task(K, std::vector<std::ptrdiff_t>(M, -1)), b_task = f_task;
    std::vector<std::size_t> next(P, 0);
    std::vector<double> free_at(P, 0.0);
    std::map<std::pair<int, int>, double> link_free;
    std::size_t remaining = K * M * 2;
    // A value crossing from chunk `from` to chunk `to` once it is done at `done`: when it arrives at `to`'s device.
    auto cross = [&](std::size_t from, std::size_t to, double done, std::size_t micro, double ready,
                     std::ptrdiff_t cause, TaskRecord& task) {
        const auto [link, timed] = hop(from, to);
        const double start = std::max(done, link_free[link]);
        link_free[link] = start + send_time(timed.first, timed.second);
        if (link_free[link] > ready) {
            task.cause = cause;
            task.via_send = true;
            task.link = link;
            task.timed = timed;
            task.send_start = start;
            task.send_end = link_free[link];
        }
        record_send(link, timed, start, micro);
        return std::max(ready, link_free[link]);
    };
    while (remaining > 0) {
        bool progressed = false;
        for (std::size_t s = 0; s < P; ++s) {
            while (next[s] < order[s].size()) {
                const compiler::PipelineTask& scheduled = order[s][next[s]];
                const bool backward = scheduled.backward;
                const auto k = static_cast<std::size_t>(scheduled.chunk);
                const auto i = static_cast<std::size_t>(scheduled.micro);
                const StageTime& stage = r.stages[s];
                double ready = free_at[s];
                TaskRecord task;
                task.stage = s;
                task.micro = i;
                task.backward = backward;
                task.cause = last_task[s];
                if (!backward) {
                    if (k > 0) {
                        if (f_end[k - 1][i] < 0) {
                            break;
                        }
                        ready = cross(k - 1, k, f_end[k - 1][i], i, ready, f_task[k - 1][i], task);
                    }
                    f_end[k][i] = ready + (stage.forward_s + stage.tensor_comm_s / 2) * chunk;
                    free_at[s] = f_end[k][i];
                    record_task(s, i, false, ready);
                    f_task[k][i] = static_cast<std::ptrdiff_t>(tasks.size());
                } else {
                    if (f_end[k][i] < 0 || (k + 1 < K && b_end[k + 1][i] < 0)) {
                        break;
                    }
                    if (f_end[k][i] > ready) {
                        task.cause = f_task[k][i];
                    }
                    ready = std::max(ready, f_end[k][i]);
                    if (k + 1 < K) {
                        ready = cross(k + 1, k, b_end[k + 1][i], i, ready, b_task[k + 1][i], task);
                    }
                    b_start[k][i] = ready;
                    b_end[k][i] = ready + (stage.backward_s + stage.tensor_comm_s / 2) * chunk;
                    free_at[s] = b_end[k][i];
                    record_task(s, i, true, ready);
                    b_task[k][i] = static_cast<std::ptrdiff_t>(tasks.size());
                }
                task.start = ready;
                last_task[s] = static_cast<std::ptrdiff_t>(tasks.size());
                tasks.push_back(task);
                ++next[s];
                --remaining;
                progressed = true;
            }
        }
        if (!progressed) {
            throw Error("simulate: the pipeline schedule deadlocked (a bug: please report it)");
        }
    }
    // The gradient buckets' all-reduces during the last backward, one after another on the network, each as soon as
    // its last gradient is computed; then the optimizer update.
    std::vector<std::vector<double>> bucket_seconds(P);
    for (std::size_t s = 0; s < P; ++s) {
        if (bucket_bytes[s].empty()) {  // one replica, or a stage without parameters
            continue;
        }
        for (const double bytes : bucket_bytes[s]) {
            const BucketFit& fit = grad_fits[s].at(cache_regime(bytes));
            const double t_low = times[fit.low].seconds, t_high = times[fit.high].seconds;
            const double along = fit.high_bytes == fit.low_bytes ? 0.0
                                                                 : (bytes - fit.low_bytes) / (fit.high_bytes - fit.low_bytes);
            bucket_seconds[s].push_back(t_low + along * (t_high - t_low));
        }
        // ZeRO stage 1: each bucket is reduce-scattered (the first half of a ring all-reduce's steps), and after the
        // sharded update the parameters are all-gathered (the second half), with nothing left to hide it behind.
        if (st.zero) {
            for (double& seconds : bucket_seconds[s]) {
                seconds /= 2;
                r.stages[s].param_allgather_s += seconds;
            }
        }
    }
    // Where collectives run on the cores that compute (an MPI rank's communication thread: collective_cores =
    // "shared"), a bucket reduced while the backward pass still runs shares the cores with it: the rank's c compute
    // threads and the communication thread each get c / (c + 1) of a core, so both slow down by that much until one
    // of them is done.
    const double share = device.collectives_share_cores
                             ? static_cast<double>(device.parallel_units) / static_cast<double>(device.parallel_units + 1)
                             : 1.0;
    for (std::size_t s = 0; s < P; ++s) {
        StageTime& stage = r.stages[s];
        // The device's last backward task (chunk 0, the last micro-batch). Interleaved, its other chunks' gradients
        // were computed earlier: the buckets are timed as if the whole stage's backward ended with it.
        double last_end = b_end[s][M - 1];
        const double last_start =
            VP == 1 ? b_start[s][M - 1] : std::max(0.0, last_end - stage.backward_s - stage.tensor_comm_s / 2);
        double delay = 0;  // how much sharing the cores has set the backward pass back so far
        double network_free = last_start;
        for (std::size_t b = 0; b < bucket_seconds[s].size(); ++b) {
            double computed = 0;
            for (const std::size_t k : plan.gradient_buckets[s][b].gradients) {
                computed = std::max(computed, backward_done[plan.step.gradients[k].index]);
            }
            const double start = std::max(network_free, std::min(last_start + computed + delay, last_end));
            const double alone = bucket_seconds[s][b];
            double wall = alone;
            const double compute_left = last_end - start;
            if (share < 1.0 && compute_left > 0) {
                if (alone <= compute_left) {  // the bucket finishes first; the backward pass lost alone x (1/share - 1)
                    wall = alone / share;
                    last_end += wall - alone;
                    delay += wall - alone;
                } else {  // the backward pass finishes first, then the bucket runs alone
                    wall = compute_left / share + (alone - compute_left);
                    delay += compute_left / share - compute_left;
                    last_end = start + compute_left / share;
                }
            }
            network_free = start + wall;
            stage.grad_allreduce_s += wall;
            if (record_timeline) {
                r.timeline.push_back({"gradient bucket " + std::to_string(b), "gradient all-reduce",
                                      static_cast<int>(s), true, start, wall, bucket_bytes[s][b], {}});
            }
        }
        stage.grad_allreduce_exposed_s = std::max(0.0, network_free - last_end);
        stage.finish_s = std::max(network_free, last_end) + stage.optimizer_s + stage.param_allgather_s;
        if (record_timeline && stage.optimizer_s > 0) {
            r.timeline.push_back({"optimizer", "optimizer", static_cast<int>(s), false,
                                  stage.finish_s - stage.param_allgather_s - stage.optimizer_s, stage.optimizer_s, 0, {}});
        }
        if (record_timeline && stage.param_allgather_s > 0) {
            r.timeline.push_back({"parameter all-gather", "gradient all-reduce", static_cast<int>(s), true,
                                  stage.finish_s - stage.param_allgather_s, stage.param_allgather_s, grad_bytes[s], {}});
        }
        stage.busy_s = m * (stage.forward_s + stage.backward_s + stage.tensor_comm_s) + stage.optimizer_s;
        if (stage.finish_s > r.step_s) {
            r.step_s = stage.finish_s;
            r.critical_stage = static_cast<int>(s);
        }
    }
    const StageTime& critical = r.stages[static_cast<std::size_t>(r.critical_stage)];
    r.exposed_comm_s = critical.grad_allreduce_exposed_s;
    {  // The critical path, grouped by item.
        std::map<std::string, CriticalItem> items;
        auto add = [&](const std::string& what, double seconds, const std::string& why) {
            if (seconds > 0) {
                CriticalItem& item = items[what];
                item.what = what;
                item.seconds += seconds;
                item.why = why;
            }
        };
        auto costliest_op = [&](std::size_t s) {
            const OpClassTime* top = nullptr;
            double total = 0;
            for (const auto& [name, cls] : by_op[s]) {
                total += cls.seconds;
                top = (top == nullptr || cls.seconds > top->seconds) ? &cls : top;
            }
            return top == nullptr ? std::string()
                                  : fmt_percent(top->seconds / total) + " of its compute is " + top->op +
                                        (top->memory_bound > 0 ? " (memory-bound in " + std::to_string(top->memory_bound) +
                                                                     " of " + std::to_string(top->nodes) + " nodes)"
                                                               : "");
        };
        const std::size_t cs = static_cast<std::size_t>(r.critical_stage);
        add("stage " + std::to_string(cs) + " optimizer", critical.optimizer_s,
            "the update runs once per step, after the gradients are reduced");
        add("stage " + std::to_string(cs) + " gradient all-reduce, not hidden", critical.grad_allreduce_exposed_s,
            "its last buckets finish after the backward pass: " + std::to_string(plan.gradient_buckets[cs].size()) +
                " buckets over " + std::to_string(st.dp) + " replicas");
        add("stage " + std::to_string(cs) + " parameter all-gather", critical.param_allgather_s,
            "zero=1: after the sharded update, each replica gathers the other " + std::to_string(st.dp - 1) +
                " shares of the parameters");
        for (std::ptrdiff_t k = b_task[cs][M - 1]; k >= 0;) {
            const TaskRecord& task = tasks[static_cast<std::size_t>(k)];
            const StageTime& stage = r.stages[task.stage];
            const std::string name = "stage " + std::to_string(task.stage);
            add(name + (task.backward ? " backward compute" : " forward compute"),
                (task.backward ? stage.backward_s - stage.recompute_s : stage.forward_s) * chunk,
                costliest_op(task.stage));
            if (task.backward && stage.recompute_s > 0) {
                const int segments = plan.recomputation.segments[task.stage];
                add(name + " recomputation", stage.recompute_s * chunk,
                    "recompute=1: the backward task runs the forward pass again, segment by segment from " +
                        std::to_string(segments) + (segments == 1 ? " checkpoint set" : " checkpoint sets"));
            }
            add(name + " tensor-parallel all-reduces", stage.tensor_comm_s / 2 * chunk,
                "Megatron-style all-reduces over tp=" + std::to_string(st.tp) + " wait on the compute");
            if (task.via_send) {
                const std::string link =
                    "pipeline send " + std::to_string(task.link.first) + "->" + std::to_string(task.link.second);
                const auto sent = sends.find(task.timed);  // none: the stages pass nothing but the schedule
                add(link, task.send_end - task.send_start,
                    bytes_text(sent == sends.end() ? 0.0 : sent->second) +
                        (task.backward ? " of gradients" : " of activations") +
                        " per micro-batch cross the link between the stages");
                if (task.cause >= 0) {
                    const TaskRecord& from = tasks[static_cast<std::size_t>(task.cause)];
                    const StageTime& other = r.stages[from.stage];
                    const double from_end =
                        from.start + ((from.backward ? other.backward_s : other.forward_s) + other.tensor_comm_s / 2) *
                                         chunk;
                    add(link + ", waiting for the link", task.send_start - from_end,
                        "an earlier micro-batch still holds the link");
                }
            }
            k = task.cause;
        }
        double on_path = 0;
        for (const auto& [what, item] : items) {
            on_path += item.seconds;
        }
        // Where a bucket shares the cores with the backward pass, the last backward task ran longer than alone.
        add("stage " + std::to_string(cs) + " backward, slowed by the all-reduce on its cores",
            device.collectives_share_cores ? r.step_s - on_path : 0.0,
            "the communication thread takes 1 of " + std::to_string(device.parallel_units + 1) +
                " shares of the cores while a bucket is reduced");
        for (auto& [what, item] : items) {
            item.share = item.seconds / r.step_s;
            r.critical_path.push_back(item);
        }
        std::stable_sort(r.critical_path.begin(), r.critical_path.end(),
                         [](const CriticalItem& a, const CriticalItem& b) { return a.seconds > b.seconds; });
    }
    r.pipeline_bubble_s = std::max(0.0, r.step_s - critical.busy_s - critical.grad_allreduce_exposed_s -
                                            critical.param_allgather_s);
    r.model_flops = (per_microbatch_flops * m + per_step_flops) * st.dp;
    r.achieved_flops = r.model_flops / r.step_s;
    const auto peak = device.matrix_flops.count(precision) != 0 ? device.matrix_flops.at(precision)
                                                                : device.matrix_flops.at("fp32");
    r.utilization = r.achieved_flops / (static_cast<double>(r.devices_used) * peak);
    r.samples_per_s = static_cast<double>(plan.global_batch) / r.step_s;

    // Busiest stage's op classes.
    std::size_t busiest = 0;
    for (std::size_t s = 0; s < P; ++s) {
        busiest = r.stages[s].busy_s > r.stages[busiest].busy_s ? s : busiest;
    }
    for (const auto& [name, cls] : by_op[busiest]) {
        r.ops.push_back(cls);
    }
    std::sort(r.ops.begin(), r.ops.end(), [](const OpClassTime& a, const OpClassTime& b) { return a.seconds > b.seconds; });

    // Memory fit: the stage short by the most, in full, and how many others are short (a 128-stage pipeline that
    // does not fit would otherwise make a report of 128 sentences).
    const auto capacity_of = [&](const StageTime& stage) {
        return device.memory_bytes + (stage.memory.activations_level == "SRAM" ? 0 : device.local_bytes);
    };
    const auto needed_by = [](const StageTime& stage) {
        return stage.memory.activations_level == "SRAM" ? stage.memory.total_bytes() - stage.memory.activations_bytes
                                                         : stage.memory.total_bytes();
    };
    const StageTime* worst = nullptr;
    std::size_t short_stages = 0;
    for (const StageTime& stage : r.stages) {
        if (!stage.memory.fits) {
            ++short_stages;
            if (worst == nullptr ||
                needed_by(stage) - capacity_of(stage) > needed_by(*worst) - capacity_of(*worst)) {
                worst = &stage;
            }
        }
    }
    if (worst != nullptr) {
        r.fits = false;
        const double needed = needed_by(*worst), capacity = capacity_of(*worst);
        r.fit_report = "stage " + std::to_string(worst->stage) + ": needs " + bytes_text(needed) + " of " +
                       (device.local_bytes > 0 ? "SRAM + " + device.memory_name + " share" : device.memory_name) +
                       " per " + device.kind + " but has " + bytes_text(capacity) + " (short by " +
                       bytes_text(needed - capacity) + "); largest tensor: " + worst->memory.largest_tensor + " (" +
                       bytes_text(worst->memory.largest_tensor_bytes) + ")";
        if (short_stages > 1) {
            r.fit_report += "; " + std::to_string(short_stages - 1) + " other stage" + (short_stages > 2 ? "s" : "") +
                            " of " + std::to_string(r.stages.size()) + " short by less";
        }
    }

    // Per core, on a mesh: the spatial placement of each stage's layers (compiler/place_spatial.h). A stage whose
    // layers no core layout holds does not fit, even where the chip's total SRAM and HBM share would.
    if (on_mesh) {
        const compiler::StagePlacement* first_short = nullptr;
        std::size_t short_core_stages = 0;
        for (const compiler::StagePlacement& sp : placement.stages) {
            StageTime& stage = r.stages[static_cast<std::size_t>(sp.stage)];
            stage.core_fits = sp.fits;
            stage.core_placement =
                !sp.fits ? "no core layout fits"
                : sp.temporal
                    ? std::to_string(sp.layers.size()) + " layers in turn on all cores, " + sp.residency
                    : std::to_string(sp.layers.size()) + " layers on " + std::to_string(sp.regions.size()) +
                          " rectangles of cores, " + sp.residency;
            if (!sp.fits) {
                ++short_core_stages;
                first_short = first_short == nullptr ? &sp : first_short;
            }
        }
        if (first_short != nullptr && r.fits) {
            r.fits = false;
            r.fit_report = first_short->report;
            if (short_core_stages > 1) {
                r.fit_report += "; " + std::to_string(short_core_stages - 1) + " other stage" +
                                (short_core_stages > 2 ? "s" : "") + " do not fit either";
            }
        }
    }

    // Collectives report (per occurrence).
    if (!plan.tensor.all_reduces.empty()) {
        double bytes = 0, seconds = 0;
        for (const auto& ar : plan.tensor.all_reduces) {
            bytes += ar.bytes * wire;
            seconds += times[tp_handles.at(ar.bytes * wire)].seconds;
        }
        const auto count = static_cast<double>(plan.tensor.all_reduces.size());
        r.collectives.push_back({"tensor-parallel all-reduce", static_cast<std::int64_t>(count) * m, bytes / count,
                                 st.tp, times[tp_handles.begin()->second].algorithm, seconds / count});
    }
    if (st.dp > 1 && !bucket_seconds[busiest].empty()) {
        const double buckets = static_cast<double>(bucket_seconds[busiest].size());
        r.collectives.push_back({"gradient all-reduce (stage " + std::to_string(busiest) + ", per bucket)",
                                 static_cast<std::int64_t>(buckets), grad_bytes[busiest] / buckets, st.dp,
                                 times[grad_fits[busiest].rbegin()->second.high].algorithm,
                                 r.stages[busiest].grad_allreduce_s / buckets});
    }
    for (const auto& [key, handle] : send_handles) {
        r.collectives.push_back({"pipeline send " + std::to_string(key.first) + "->" + std::to_string(key.second), m,
                                 sends.at(key), 2, times[handle].algorithm, send_time(key.first, key.second)});
    }

    // Energy.
    const double idle = device.power_w * device.idle_power_fraction;
    double device_energy = static_cast<double>(device.count) * idle * r.step_s;
    for (const StageTime& stage : r.stages) {
        device_energy += static_cast<double>(st.tp) * st.dp * (device.power_w - idle) * stage.busy_s;
    }
    const double rest_w = std::max(0.0, topology.machine_power_w - static_cast<double>(device.count) * device.power_w);
    r.energy_j = device_energy + rest_w * r.step_s;
    r.average_power_w = r.energy_j / r.step_s;
    r.simulation_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return r;
}

}  // namespace dojo::sim
