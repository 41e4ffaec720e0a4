// make_plan: the model at micro-batch size, its training graph, tensor-parallel layouts, pipeline stages, transfers.
#include "dojo/compiler/plan.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

#include "dojo/compiler/recompute.h"
#include "dojo/compiler/verify_plan.h"
#include "dojo/ir/verify.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;


// Plan::fusion_groups for a laid-out plan (stages, rhythm, transfers and tensor layouts set).
std::vector<FusionGroup> fuse_elementwise(const Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    std::vector<bool> kept(g.size(), false), closing;
    kept[plan.last_forward.index] = true;
    if (plan.strategy.dp > 1) {
        closing.assign(g.size(), false);
    }
    for (const NodeId grad : plan.step.gradients) {
        if (grad.valid()) {
            kept[grad.index] = true;
            if (!closing.empty()) {
                closing[grad.index] = true;
            }
        }
    }
    for (const autodiff::Assignment& a : plan.step.updates) {
        kept[a.value.index] = true;
    }
    for (const Plan::Transfer& t : plan.transfers) {
        kept[t.node.index] = true;
    }
    std::vector<int> kind(g.size());  // nodes that run apart (stage, per step, divided by tp) fuse apart
    for (std::size_t i = 0; i < g.size(); ++i) {
        kind[i] = plan.stage[i] * 4 + (plan.per_step[i] ? 2 : 0) + (plan.tensor.divided[i] ? 1 : 0);
    }
    return find_fusion_groups(g, plan.live, kept, closing, kind);
}

// The forward nodes (live, computed) cut into `stages` consecutive runs of about equal cost, cut where few bytes
// cross. First the least bound on a run's cost that `stages` runs can keep with cuts anywhere (the linear partition
// problem: a binary search on the bound, each checked greedily), so that no stage carries a large node beyond its
// share because of where a boundary fell. Then the fewest-bytes cuts that keep the bound within kSlack of it: cuts
// are allowed only where at most T bytes cross to later nodes, for the least such T (a binary search over the
// distinct crossing sizes). A transformer is then cut between layers, where only the residual stream crosses, as
// Megatron-LM cuts it, rather than after a fused QKV projection (three times as much). Runs are then split further,
// most nodes first, until there are `stages` of them. [node] -> stage; -1 for the rest.
std::vector<int> partition_min_max(const std::vector<double>& cost, const std::vector<double>& bytes,
                                   const std::vector<bool>& live, const ir::Graph& g, NodeId last_forward, int stages,
                                   double total) {
    constexpr double kSlack = 0.02;
    std::vector<std::uint32_t> nodes;
    std::vector<std::size_t> position(last_forward.index + 1, SIZE_MAX);
    for (std::uint32_t i = 0; i <= last_forward.index; ++i) {
        if (live[i] && !ir::is_leaf(g.node(NodeId{i}).op)) {
            position[i] = nodes.size();
            nodes.push_back(i);
        }
    }
    // crossing[k]: bytes of values computed before position k and read by a forward node at k or later.
    std::vector<double> crossing(nodes.size() + 1, 0.0);
    {
        std::vector<std::size_t> last_read(nodes.size(), 0);
        for (std::size_t k = 0; k < nodes.size(); ++k) {
            for (const NodeId in : g.node(NodeId{nodes[k]}).inputs) {
                if (in.index <= last_forward.index && position[in.index] != SIZE_MAX) {
                    last_read[position[in.index]] = std::max(last_read[position[in.index]], k);
                }
            }
        }
        std::vector<double> delta(nodes.size() + 2, 0.0);
        for (std::size_t k = 0; k < nodes.size(); ++k) {
            if (last_read[k] > k) {
                delta[k + 1] += bytes[nodes[k]];
                delta[last_read[k] + 1] -= bytes[nodes[k]];
            }
        }
        double running = 0;
        for (std::size_t k = 0; k <= nodes.size(); ++k) {
            running += delta[k];
            crossing[k] = running;
        }
    }
    // Greedy runs of cost at most `bound`, each cut at the last position with at most `allowed` bytes crossing
    // before the bound is passed; the first position of each run, or nothing if some run finds no such position.
    auto runs_under = [&](double bound, double allowed) {
        std::vector<std::size_t> starts{0};
        std::size_t k = 0;
        while (k < nodes.size()) {
            double sum = 0;
            std::size_t end = k, cut = SIZE_MAX;
            while (end < nodes.size() && (sum + cost[nodes[end]] <= bound || end == k)) {
                sum += cost[nodes[end]];
                ++end;
                if (end == nodes.size() || crossing[end] <= allowed) {
                    cut = end;
                }
            }
            if (cut == SIZE_MAX) {
                return std::vector<std::size_t>{};
            }
            k = cut;
            if (k < nodes.size()) {
                starts.push_back(k);
            }
        }
        return starts;
    };
    auto feasible = [&](double bound, double allowed) {
        const std::vector<std::size_t> runs = runs_under(bound, allowed);
        return !runs.empty() && static_cast<int>(runs.size()) <= stages;
    };
    auto least_bound = [&](double allowed) {
        double lo = 0, hi = std::max(total, 0.0);
        for (const std::uint32_t i : nodes) {
            lo = std::max(lo, cost[i]);
        }
        hi = std::max(hi, lo);
        if (!feasible(hi, allowed)) {
            return std::numeric_limits<double>::infinity();
        }
        for (int it = 0; it < 60 && hi - lo > 1e-12 * hi; ++it) {
            const double mid = 0.5 * (lo + hi);
            (feasible(mid, allowed) ? hi : lo) = mid;
        }
        return hi;
    };
    const double anywhere = std::numeric_limits<double>::infinity();
    const double best = least_bound(anywhere);
    std::vector<double> sizes(crossing.begin() + 1, crossing.end() - 1);
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    double allowed = anywhere, bound = best;
    std::size_t lo = 0, hi = sizes.size();  // the least index whose size keeps the bound within the slack
    while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        const double b = least_bound(sizes[mid]);
        if (b <= (1 + kSlack) * best) {
            hi = mid;
            allowed = sizes[mid];
            bound = b;
        } else {
            lo = mid + 1;
        }
    }
    std::vector<std::size_t> starts = runs_under(bound, allowed);
    while (static_cast<int>(starts.size()) < stages) {  // split the run of most nodes in two halves by cost
        std::size_t widest = 0, widest_len = 0;
        for (std::size_t r = 0; r < starts.size(); ++r) {
            const std::size_t end = r + 1 < starts.size() ? starts[r + 1] : nodes.size();
            if (end - starts[r] > widest_len) {
                widest = r;
                widest_len = end - starts[r];
            }
        }
        if (widest_len < 2) {
            break;  // fewer nodes than stages: make_plan's check prevents it
        }
        const std::size_t begin = starts[widest], end = begin + widest_len;
        double run = 0, half = 0;
        for (std::size_t k = begin; k < end; ++k) {
            run += cost[nodes[k]];
        }
        std::size_t cut = begin + 1;
        for (std::size_t k = begin; k + 1 < end; ++k) {
            half += cost[nodes[k]];
            cut = k + 1;
            if (half >= run / 2) {
                break;
            }
        }
        starts.insert(starts.begin() + static_cast<std::ptrdiff_t>(widest) + 1, cut);
    }
    std::vector<int> stage(last_forward.index + 1, -1);
    for (std::size_t r = 0; r < starts.size(); ++r) {
        const std::size_t end = r + 1 < starts.size() ? starts[r + 1] : nodes.size();
        for (std::size_t k = starts[r]; k < end; ++k) {
            stage[nodes[k]] = static_cast<int>(r);
        }
    }
    return stage;
}

// Forward nodes in runs of least largest cost (`cost`, else FLOPs), cut where few bytes cross (partition_min_max). A later node goes on the earliest stage among its computed inputs
// and the parameters it reads; one with neither (an optimizer step on a moment: m * beta1) on the earliest stage
// among its readers. Leaves go on the stage of their first reader. Nodes outside `live` get no stage (-1).
std::vector<int> split_stages(const ir::Graph& g, NodeId last_forward, int stages, const std::vector<bool>& live,
                              const NodeCost& cost, const TensorParallel& tensor) {
    const std::size_t n = g.size();
    std::vector<int> stage(n, -1);
    double total = 0;
    std::vector<double> flops(last_forward.index + 1, 0.0);  // the cost balanced: FLOPs unless `cost` is set
    for (std::uint32_t i = 0; i <= last_forward.index; ++i) {
        if (live[i] && !ir::is_leaf(g.node(NodeId{i}).op)) {
            const double share = tensor.divided[i] ? static_cast<double>(tensor.tp) : 1.0;
            flops[i] = cost ? cost(g, NodeId{i}, share) : ir::cost_of(g, NodeId{i}).flops;
            total += flops[i];
        }
    }
    std::vector<double> bytes(last_forward.index + 1, 0.0);
    for (std::uint32_t i = 0; i <= last_forward.index; ++i) {
        bytes[i] = tensor.bytes_per_device(g, NodeId{i});
    }
    const std::vector<int> forward_stage = partition_min_max(flops, bytes, live, g, last_forward, stages, total);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (!live[i] || ir::is_leaf(node.op)) {
            continue;
        }
        int s = -1;
        if (i <= last_forward.index) {
            s = forward_stage[i];
            for (const NodeId input : node.inputs) {
                if (stage[input.index] < 0) {
                    stage[input.index] = s;  // a leaf's first reader
                }
            }
        } else {
            for (const NodeId input : node.inputs) {
                const int t = stage[input.index];
                const bool placed = !ir::is_leaf(g.node(input).op) || g.node(input).op == OpKind::Parameter;
                if (placed && t >= 0 && (s < 0 || t < s)) {
                    s = t;
                }
            }
        }
        stage[i] = s;
    }
    std::vector<std::vector<std::uint32_t>> readers(n);
    for (std::uint32_t j = 0; j < n; ++j) {
        for (const NodeId input : g.node(NodeId{j}).inputs) {
            readers[input.index].push_back(j);
        }
    }
    for (std::size_t i = n; i-- > 0;) {  // unplaced computed nodes: the earliest stage among their readers
        if (stage[i] >= 0 || !live[i] || ir::is_leaf(g.node(NodeId{static_cast<std::uint32_t>(i)}).op)) {
            continue;
        }
        for (const std::uint32_t j : readers[i]) {
            if (stage[j] >= 0 && (stage[i] < 0 || stage[j] < stage[i])) {
                stage[i] = stage[j];
            }
        }
        stage[i] = stage[i] < 0 ? stages - 1 : stage[i];
    }
    for (std::uint32_t i = 0; i < n; ++i) {  // the remaining leaves: their first reader's stage
        for (const NodeId input : g.node(NodeId{i}).inputs) {
            if (live[i] && stage[input.index] < 0) {
                stage[input.index] = stage[i];
            }
        }
    }
    return stage;
}

}  // namespace

std::string Strategy::to_string() const {
    return "dp=" + std::to_string(dp) + ",tp=" + std::to_string(tp) + ",pp=" + std::to_string(pp) +
           ",mb=" + std::to_string(micro_batches) +
           (virtual_stages > 1 ? ",vp=" + std::to_string(virtual_stages) : "") + (sp ? ",sp=1" : "") + (zero ? ",zero=1" : "") +
           (recompute ? (selective ? ",recompute=selective" : ",recompute=1") : "");
}

Strategy parse_strategy(std::string_view text) {
    Strategy s;
    std::set<std::string> seen;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        const std::string_view item = text.substr(start, end - start);
        const std::size_t eq = item.find('=');
        const std::string key(item.substr(0, eq));
        int value = 0;
        std::string_view digits = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        if (key == "recompute" && (digits == "full" || digits == "selective")) {
            s.selective = digits == "selective";
            digits = "1";
        }
        const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        int* field = key == "dp" ? &s.dp : key == "tp" ? &s.tp : key == "pp" ? &s.pp : key == "mb" ? &s.micro_batches
                     : key == "vp"                                                                  ? &s.virtual_stages
                                                                                                   : nullptr;
        bool* flag = key == "zero" ? &s.zero : key == "recompute" ? &s.recompute : key == "sp" ? &s.sp : nullptr;
        const bool in_range = field != nullptr ? value >= 1 : (value == 0 || value == 1);
        if ((field == nullptr && flag == nullptr) || eq == std::string_view::npos || parsed.ec != std::errc() ||
            parsed.ptr != digits.data() + digits.size() || !in_range || !seen.insert(key).second) {
            throw UsageError("strategy '" + std::string(text) + "': bad item '" + std::string(item) +
                             "'; write dp=N,tp=N,pp=N,mb=N (each a positive whole number, at most once; missing ones "
                             "are 1), optionally vp=N (model chunks per pipeline device: the interleaved schedule), sp=1 (sequence parallelism over tp), zero=1 (shard the optimizer state "
                             "over dp) and recompute=full (recompute activations in the backward pass; also recompute=1) or "
                             "recompute=selective (only attention's score tensors), or use --strategy auto");
        }
        if (field != nullptr) {
            *field = value;
        } else {
            *flag = value == 1;
        }
        start = end + 1;
    }
    return s;
}

double micro_batches_in_flight(const Strategy& strategy, int stage) {
    const int pp = strategy.pp, m = strategy.micro_batches, vp = strategy.virtual_stages;
    if (vp <= 1) {
        return static_cast<double>(std::min(pp - stage, m));
    }
    const int warmup = (pp - stage - 1) * 2 + (vp - 1) * pp;
    return static_cast<double>(std::min(warmup + 1, m * vp)) / vp;
}

Plan make_plan(StepFactory build, std::string model, std::int64_t global_batch, const Strategy& strategy,
               NodeCost stage_cost, const CompileOptions& options) {
    if (strategy.virtual_stages > 1 && (strategy.pp < 2 || strategy.micro_batches % strategy.pp != 0)) {
        throw UsageError("vp=" + std::to_string(strategy.virtual_stages) + " interleaves model chunks over the " +
                         "pipeline: it needs pp of 2 or more and a number of micro-batches that pp divides (Megatron-LM's "
                         "interleaved schedule); " + strategy.to_string() + " has pp=" + std::to_string(strategy.pp) +
                         ", mb=" + std::to_string(strategy.micro_batches));
    }
    const std::int64_t per_step = static_cast<std::int64_t>(strategy.dp) * strategy.micro_batches;
    if (global_batch < 1 || global_batch % per_step != 0) {
        throw UsageError("batch " + std::to_string(global_batch) + " cannot be split into dp=" +
                         std::to_string(strategy.dp) + " replicas of " + std::to_string(strategy.micro_batches) +
                         " micro-batches; make the batch a multiple of " + std::to_string(per_step));
    }
    Plan plan;
    plan.model = std::move(model);
    plan.stage_cost = std::move(stage_cost);
    plan.strategy = strategy;
    plan.global_batch = global_batch;
    plan.micro_batch = global_batch / per_step;
    Step built = build(plan.micro_batch);
    plan.step = std::move(built.training);
    plan.precision = built.precision;
    plan.last_forward = plan.step.loss;
    plan.rebuild = std::move(build);
    lay_out(plan, strategy, options);
    return plan;
}

Plan make_plan(std::string_view model, std::int64_t global_batch, const Strategy& strategy,
               const autodiff::OptimizerConfig& optimizer, NodeCost stage_cost, Precision precision) {
    return make_plan(step_factory(std::string(model), StepOptions{make_policy(precision, 0), optimizer}),
                     std::string(model), global_batch, strategy, std::move(stage_cost));
}

namespace {

// ---- The compile passes (compile_passes()), each reading what the ones before it decided ------------------------

// Tensor-parallel layouts (tensor_parallel.h), with sequence parallelism when asked for.
void layouts_pass(Plan& plan) {
    plan.tensor = shard_tensor_parallel(plan.step.graph, plan.strategy.tp);
    if (plan.strategy.sp) {
        split_sequence(plan.tensor, plan.step.graph);
    }
}

// Live: what the loss, the gradients and the updated values depend on (the runtime skips the rest too, such as
// gradients of constants).
void liveness_pass(Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    plan.live.assign(g.size(), false);
    plan.live[plan.last_forward.index] = true;
    for (const NodeId grad : plan.step.gradients) {
        if (grad.valid()) {
            plan.live[grad.index] = true;
        }
    }
    for (const autodiff::Assignment& a : plan.step.updates) {
        plan.live[a.value.index] = true;
        plan.live[a.target.index] = true;
    }
    for (std::size_t i = g.size(); i-- > 0;) {
        if (plan.live[i]) {
            for (const NodeId input : g.node(NodeId{static_cast<std::uint32_t>(i)}).inputs) {
                plan.live[input.index] = true;
            }
        }
    }
}

void stages_pass(Plan& plan) {
    plan.stage = split_stages(plan.step.graph, plan.last_forward, plan.strategy.pp, plan.live, plan.stage_cost,
                              plan.tensor);
}

// Per node: once per step or per micro-batch, saved for the backward pass; the values that cross stages.
void transfers_pass(Plan& plan) {
    const ir::Graph& g = plan.step.graph;
    const NodeId loss = plan.last_forward;
    // Once per step: what the gradients (and the loss) do not depend on, after the forward pass.
    const std::size_t n = g.size();
    std::vector<bool> needed(n, false);
    needed[loss.index] = true;
    for (const NodeId grad : plan.step.gradients) {
        if (grad.valid()) {
            needed[grad.index] = true;
        }
    }
    for (std::size_t i = n; i-- > 0;) {
        if (needed[i]) {
            for (const NodeId input : g.node(NodeId{static_cast<std::uint32_t>(i)}).inputs) {
                needed[input.index] = true;
            }
        }
    }
    plan.per_step.assign(n, false);
    plan.saved.assign(n, false);
    plan.transfers.clear();
    std::map<std::pair<std::uint32_t, int>, std::size_t> sent;  // (value, to stage) -> transfer
    const std::vector<bool> local = computed_locally(g);        // recomputed where read, never sent
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = g.node(NodeId{i});
        const bool backward = i > loss.index;
        plan.per_step[i] = backward && !needed[i] && !ir::is_leaf(node.op);
        if (ir::is_leaf(node.op) || !plan.live[i]) {
            continue;
        }
        for (const NodeId input : node.inputs) {
            const ir::Node& from = g.node(input);
            if (ir::is_leaf(from.op)) {
                continue;
            }
            if (backward && !plan.per_step[i] && input.index <= loss.index) {
                plan.saved[input.index] = true;
            }
            const int a = plan.stage[input.index], b = plan.stage[i];
            if (a != b && !local[input.index] &&
                sent.emplace(std::make_pair(input.index, b), plan.transfers.size()).second) {
                plan.transfers.push_back({input, a, b, !backward, plan.tensor.bytes_per_device(g, input)});
            }
        }
    }
}

void fusion_pass(Plan& plan) { plan.fusion_groups = fuse_elementwise(plan); }

void recompute_pass(Plan& plan) { plan_recomputation(plan); }

void buckets_pass(Plan& plan) { bucket_gradients(plan, plan.bucket_bytes); }

}  // namespace

const std::vector<CompilePass>& compile_passes() {
    static const std::vector<CompilePass> passes = {
        {"layouts", layouts_pass},     {"liveness", liveness_pass}, {"stages", stages_pass},
        {"transfers", transfers_pass}, {"fusion", fusion_pass},     {"recompute", recompute_pass},
        {"buckets", buckets_pass},
    };
    return passes;
}

void lay_out(Plan& plan, const Strategy& strategy, const CompileOptions& options) {
    if (plan.global_batch != plan.micro_batch * strategy.dp * strategy.micro_batches) {
        throw UsageError("strategy " + strategy.to_string() + " does not split batch " +
                         std::to_string(plan.global_batch) + " into micro-batches of " +
                         std::to_string(plan.micro_batch));
    }
    const ir::Graph& g = plan.step.graph;
    std::int64_t forward_nodes = 0;
    for (std::uint32_t i = 0; i <= plan.last_forward.index; ++i) {
        forward_nodes += ir::is_leaf(g.node(NodeId{i}).op) ? 0 : 1;
    }
    if (strategy.pp > forward_nodes) {
        throw UsageError("pp=" + std::to_string(strategy.pp) + " stages for a model of " +
                         std::to_string(forward_nodes) + " forward ops; use fewer stages");
    }
    plan.strategy = strategy;
    if (options.verify) {
        ir::verify(g);
    }
    for (const CompilePass& pass : compile_passes()) {
        pass.run(plan);
        if (options.verify) {
            verify_plan(plan, pass.name);
        }
        if (options.after_pass) {
            options.after_pass(pass.name, plan);
        }
    }
}

std::vector<bool> computed_locally(const ir::Graph& g) {
    std::vector<bool> local(g.size(), false);
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (ir::is_leaf(node.op)) {
            continue;
        }
        local[i] = std::all_of(node.inputs.begin(), node.inputs.end(), [&](NodeId in) {
            const OpKind op = g.node(in).op;
            if (op == OpKind::Fill || op == OpKind::Constant) {
                return true;
            }
            if (op == OpKind::Input) {
                return g.type(in).shape.numel() == 1;  // the learning rate, bias corrections; not data
            }
            return op != OpKind::Parameter && op != OpKind::State && local[in.index];
        });
    }
    return local;
}

void bucket_gradients(Plan& plan, std::size_t bucket_bytes) {
    const std::vector<std::size_t> sizes = gradient_sizes(plan.step);
    const std::vector<ir::NodeId>& parameters = plan.step.graph.parameters();
    std::vector<std::vector<std::size_t>> order(static_cast<std::size_t>(plan.strategy.pp));
    for (const std::size_t k : gradient_ready_order(plan.step)) {
        const int stage = plan.stage[parameters[k].index];
        if (stage >= 0 && plan.live[plan.step.gradients[k].index]) {
            order[static_cast<std::size_t>(stage)].push_back(k);
        }
    }
    plan.bucket_bytes = bucket_bytes;
    plan.gradient_buckets.clear();
    for (const std::vector<std::size_t>& stage_order : order) {
        plan.gradient_buckets.push_back(cut_gradient_buckets(sizes, stage_order, bucket_bytes));
    }
}

}  // namespace dojo::compiler
