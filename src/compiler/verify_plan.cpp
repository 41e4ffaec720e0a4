// The Plan's invariants between compile passes (verify_plan.h).
#include "dojo/compiler/verify_plan.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "dojo/util/check.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;

void check_layouts(const Plan& plan, std::size_t n) {
    const TensorParallel& t = plan.tensor;
    DOJO_CHECK(t.tp == plan.strategy.tp && t.layout.size() == n && t.divided.size() == n)
        << "tensor layouts for tp=" << t.tp << " of " << t.layout.size() << " nodes; the plan has tp="
        << plan.strategy.tp << " and " << n << " nodes";
    for (std::size_t i = 0; i < n; ++i) {
        DOJO_CHECK(t.layout[i].split_axis < plan.step.graph.type(NodeId{static_cast<std::uint32_t>(i)}).shape.rank())
            << "node " << i << " is split along axis " << t.layout[i].split_axis << " beyond its rank";
    }
}

void check_liveness(const Plan& plan, std::size_t n) {
    const ir::Graph& g = plan.step.graph;
    DOJO_CHECK(plan.live.size() == n && plan.live[plan.last_forward.index]) << "liveness of " << plan.live.size()
                                                                            << " nodes without the loss";
    for (const NodeId grad : plan.step.gradients) {
        DOJO_CHECK(!grad.valid() || plan.live[grad.index]) << "gradient node " << grad.index << " is not live";
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            DOJO_CHECK(!plan.live[i] || plan.live[in.index]) << "live node " << i << " reads dead node " << in.index;
        }
    }
}

void check_stages(const Plan& plan, std::size_t n) {
    const ir::Graph& g = plan.step.graph;
    DOJO_CHECK(plan.stage.size() == n) << "stages of " << plan.stage.size() << " nodes of " << n;
    for (std::uint32_t i = 0; i < n; ++i) {
        const bool computed = !ir::is_leaf(g.node(NodeId{i}).op);
        if (!computed) {
            continue;
        }
        const int s = plan.stage[i];
        DOJO_CHECK(plan.live[i] ? s >= 0 && s < plan.strategy.pp : s == -1)
            << "node " << i << " (" << (plan.live[i] ? "live" : "dead") << ") is on stage " << s << " of "
            << plan.strategy.pp;
        if (i > plan.last_forward.index) {
            continue;
        }
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            DOJO_CHECK(ir::is_leaf(g.node(in).op) || plan.stage[in.index] <= s)
                << "forward node " << i << " on stage " << s << " reads node " << in.index << " of the later stage "
                << plan.stage[in.index];
        }
    }
}

void check_transfers(const Plan& plan, std::size_t n) {
    const ir::Graph& g = plan.step.graph;
    DOJO_CHECK(plan.per_step.size() == n && plan.saved.size() == n) << "per-step and saved tables of the wrong size";
    std::set<std::pair<std::uint32_t, int>> sent;
    for (const Plan::Transfer& t : plan.transfers) {
        DOJO_CHECK(t.from == plan.stage[t.node.index] && t.to != t.from && t.bytes >= 0)
            << "transfer of node " << t.node.index << " from stage " << t.from << " to " << t.to;
        DOJO_CHECK(sent.emplace(t.node.index, t.to).second)
            << "node " << t.node.index << " is sent to stage " << t.to << " twice";
    }
    const std::vector<bool> local = computed_locally(g);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!plan.live[i] || ir::is_leaf(g.node(NodeId{i}).op)) {
            continue;
        }
        for (const NodeId in : g.node(NodeId{i}).inputs) {
            const bool crosses = !ir::is_leaf(g.node(in).op) && !local[in.index] &&
                                 plan.stage[in.index] != plan.stage[i];
            DOJO_CHECK(!crosses || sent.contains({in.index, plan.stage[i]}))
                << "node " << i << " on stage " << plan.stage[i] << " reads node " << in.index << " of stage "
                << plan.stage[in.index] << " with no transfer";
        }
    }
}

void check_fusion(const Plan& plan, std::size_t n) {
    std::vector<bool> grouped(n, false);
    for (const FusionGroup& group : plan.fusion_groups) {
        DOJO_CHECK(!group.members.empty() && group.exported.size() == group.members.size())
            << "a fusion group of " << group.members.size() << " members and " << group.exported.size()
            << " export flags";
        DOJO_CHECK(std::is_sorted(group.members.begin(), group.members.end(),
                                  [](NodeId a, NodeId b) { return a.index < b.index; }))
            << "a fusion group's members are out of graph order";
        const std::uint32_t first = group.members.front().index;
        for (const NodeId m : group.members) {
            DOJO_CHECK(plan.live[m.index] && !grouped[m.index]) << "node " << m.index << " is dead or in two groups";
            DOJO_CHECK(plan.stage[m.index] == plan.stage[first] && plan.per_step[m.index] == plan.per_step[first])
                << "fusion group of node " << first << " spans stages or rhythms at node " << m.index;
            grouped[m.index] = true;
        }
    }
}

void check_recompute(const Plan& plan, std::size_t n) {
    const Plan::Recomputation& r = plan.recomputation;
    if (!plan.strategy.recompute) {
        DOJO_CHECK(r.checkpoint.empty() && r.segments.empty()) << "recomputation planned without recompute=1";
        return;
    }
    const auto stages = static_cast<std::size_t>(plan.strategy.pp);
    DOJO_CHECK(r.checkpoint.size() == n && r.segment.size() == n && r.segments.size() == stages &&
               r.checkpoint_bytes.size() == stages && r.segment_bytes.size() == stages)
        << "recomputation tables of the wrong sizes";
    DOJO_CHECK(r.recomputed.size() == (plan.strategy.selective ? n : 0))
        << "recomputed-node table of the wrong size for recompute=" << (plan.strategy.selective ? "selective" : "full");
    for (std::size_t i = 0; i < r.recomputed.size(); ++i) {  // only forward values are recomputed, never kept too
        DOJO_CHECK(!r.recomputed[i] || (i <= plan.last_forward.index && !r.checkpoint[i]))
            << "node " << i << " is recomputed but is not a forward value, or is also kept";
    }
}

void check_buckets(const Plan& plan) {
    const std::vector<NodeId>& parameters = plan.step.graph.parameters();
    DOJO_CHECK(plan.gradient_buckets.size() == static_cast<std::size_t>(plan.strategy.pp))
        << plan.gradient_buckets.size() << " bucket lists for " << plan.strategy.pp << " stages";
    std::vector<int> seen(plan.step.gradients.size(), 0);
    for (std::size_t s = 0; s < plan.gradient_buckets.size(); ++s) {
        for (const GradientBucket& bucket : plan.gradient_buckets[s]) {
            for (const std::size_t k : bucket.gradients) {
                DOJO_CHECK(k < seen.size() && plan.stage[parameters[k].index] == static_cast<int>(s))
                    << "gradient " << k << " is bucketed on stage " << s << ", away from its parameter";
                ++seen[k];
            }
        }
    }
    for (std::size_t k = 0; k < seen.size(); ++k) {
        const NodeId grad = plan.step.gradients[k];
        const bool expected = grad.valid() && plan.live[grad.index] && plan.stage[parameters[k].index] >= 0;
        DOJO_CHECK(seen[k] == (expected ? 1 : 0)) << "gradient " << k << " is in " << seen[k] << " buckets";
    }
}

}  // namespace

void verify_plan(const Plan& plan, std::string_view after_pass) {
    const std::vector<CompilePass>& passes = compile_passes();
    const auto last = std::find_if(passes.begin(), passes.end(),
                                   [&](const CompilePass& p) { return p.name == after_pass; });
    DOJO_CHECK(last != passes.end()) << "verify_plan: no compile pass '" << after_pass << "'";
    const auto upto = static_cast<std::size_t>(last - passes.begin());
    const std::size_t n = plan.step.graph.size();
    try {
        const std::vector<void (*)(const Plan&, std::size_t)> checks = {
            check_layouts, check_liveness, check_stages, check_transfers, check_fusion, check_recompute,
            [](const Plan& p, std::size_t) { check_buckets(p); }};
        for (std::size_t k = 0; k <= upto && k < checks.size(); ++k) {
            checks[k](plan, n);
        }
    } catch (const InternalError& broken) {
        throw InternalError("the Plan of " + plan.model + " (" + plan.strategy.to_string() + ") after the '" +
                            std::string(after_pass) + "' pass: " + broken.what());
    }
}

}  // namespace dojo::compiler
