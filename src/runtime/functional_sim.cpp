// Functional simulation (functional_sim.h): a partitioned plan run program by program with real copies and sums.
#include "dojo/runtime/functional_sim.h"

#include <algorithm>
#include <barrier>
#include <exception>
#include <thread>
#include <cstring>
#include <limits>
#include <memory>
#include <random>

#include "dojo/compiler/insert_transfers.h"
#include "dojo/compiler/split_tensor_parallel.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/op.h"
#include "dojo/runtime/executor.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

using compiler::Plan;
using compiler::ProgramPart;
using compiler::StageProgram;
using ir::NodeId;

using Values = std::vector<float>;

bool is_scalar_input(const autodiff::TrainingGraph& step, NodeId id) {
    return id == step.learning_rate || (step.bias_correction1.valid() && id == step.bias_correction1) ||
           (step.bias_correction2.valid() && id == step.bias_correction2);
}

// The index of `id` in `list`, or throws.
std::size_t index_in(const std::vector<NodeId>& list, NodeId id) {
    const auto it = std::find(list.begin(), list.end(), id);
    if (it == list.end()) {
        throw Error("functional simulation: leaf #" + std::to_string(id.index) + " is not in its graph's list");
    }
    return static_cast<std::size_t>(it - list.begin());
}

void copy_into(ir::Buffer<float>& to, const Values& from, const std::string& what) {
    if (to.data.size() != from.size()) {
        throw UsageError("functional simulation: " + what + " has " + std::to_string(from.size()) +
                         " values; the plan's graph expects " + std::to_string(to.data.size()));
    }
    std::copy(from.begin(), from.end(), to.data.begin());
}

// Checks that `inputs` match the plan's graph at its global batch.
void check_inputs(const Plan& plan, const StepInputs& inputs) {
    const ir::Graph& g = plan.step.graph;
    if (inputs.parameters.size() != g.parameters().size() || inputs.states.size() != g.states().size()) {
        throw UsageError("functional simulation: " + std::to_string(inputs.parameters.size()) + " parameters and " +
                         std::to_string(inputs.states.size()) + " states given; the model has " +
                         std::to_string(g.parameters().size()) + " and " + std::to_string(g.states().size()));
    }
    for (const NodeId id : g.inputs()) {
        if (is_scalar_input(plan.step, id)) {
            continue;
        }
        const auto it = inputs.data.find(g.node(id).name);
        if (it == inputs.data.end()) {
            throw UsageError("functional simulation: no data for the model's input '" + g.node(id).name + "'");
        }
        const auto per_micro_batch = static_cast<std::size_t>(g.type(id).shape.numel());
        const auto shards = static_cast<std::size_t>(plan.strategy.dp * plan.strategy.micro_batches);
        if (it->second.size() != per_micro_batch * shards) {
            throw UsageError("functional simulation: input '" + g.node(id).name + "' has " +
                             std::to_string(it->second.size()) + " values; batch " +
                             std::to_string(plan.global_batch) + " needs " + std::to_string(per_micro_batch * shards));
        }
    }
}

// Writes the per-step scalars (learning rate, AdamW's bias corrections for step 1) into a leaf if it is one.
bool set_scalar(const autodiff::TrainingGraph& step, NodeId training, ir::Buffer<float>& to, float learning_rate) {
    if (training == step.learning_rate) {
        to.data[0] = learning_rate;
        return true;
    }
    if (const auto* adam = std::get_if<autodiff::AdamWConfig>(&step.optimizer)) {
        if (step.bias_correction1.valid() && training == step.bias_correction1) {
            to.data[0] = static_cast<float>(autodiff::bias_correction(adam->beta1, 1));
            return true;
        }
        if (step.bias_correction2.valid() && training == step.bias_correction2) {
            to.data[0] = static_cast<float>(autodiff::bias_correction(adam->beta2, 1));
            return true;
        }
    }
    return false;
}

ExecutorOptions reference_options() {
    ExecutorOptions options;
    options.kernels = Kernels::Reference;
    return options;
}

}  // namespace

StepOutcome run_unpartitioned(const Plan& plan, const StepInputs& inputs) {
    const compiler::Strategy& st = plan.strategy;
    if (st.devices() != 1 || st.micro_batches != 1) {
        throw UsageError("run_unpartitioned: the plan is partitioned (" + st.to_string() + "); build it with dp=1");
    }
    check_inputs(plan, inputs);
    const autodiff::TrainingGraph& step = plan.step;
    const ir::Graph& g = step.graph;
    ExecutorOptions options = reference_options();
    for (const autodiff::Assignment& a : step.updates) {  // computed and kept for apply()
        options.keep.push_back(a.value);
    }
    Executor executor(g, options);
    for (std::size_t k = 0; k < g.parameters().size(); ++k) {
        copy_into(executor.value(g.parameters()[k]), inputs.parameters[k], "parameter '" + g.node(g.parameters()[k]).name + "'");
    }
    for (std::size_t k = 0; k < g.states().size(); ++k) {
        copy_into(executor.value(g.states()[k]), inputs.states[k], "state '" + g.node(g.states()[k]).name + "'");
    }
    for (const NodeId id : g.inputs()) {
        if (!set_scalar(step, id, executor.value(id), inputs.learning_rate)) {
            copy_into(executor.value(id), inputs.data.at(g.node(id).name), "input '" + g.node(id).name + "'");
        }
    }
    executor.run();
    StepOutcome out;
    out.loss = executor.value(step.loss).data[0];
    executor.apply(step.updates);
    for (const NodeId p : g.parameters()) {
        out.parameters.push_back(executor.value(p).data);
    }
    for (const NodeId s : g.states()) {
        out.states.push_back(executor.value(s).data);
    }
    return out;
}

namespace {

// A row-major tensor of `shape` seen as [outer, dim, inner] around `axis`, cut into tp blocks of `local` along dim.
struct Blocks {
    std::int64_t outer = 1, dim = 1, local = 1, inner = 1;
    // With `groups`, the axis holds that many equal parts and a block is its share of each (Megatron's q/k/v).
    Blocks(const ir::Shape& shape, int axis, std::int64_t tp, std::int64_t groups = 1) {
        for (int a = 0; a < shape.rank(); ++a) {
            (a < axis ? outer : a > axis ? inner : dim) *= shape[a];
        }
        outer *= groups;
        dim /= groups;
        local = dim / tp;
    }
    std::ptrdiff_t in_whole(std::int64_t o, std::int64_t r) const { return (o * dim + r * local) * inner; }
    std::ptrdiff_t in_block(std::int64_t o) const { return o * local * inner; }
    std::ptrdiff_t run() const { return local * inner; }
};

// Rank r's block of `full` (shaped `shape`) along `axis` of tp blocks; all of it for axis -1.
Values block_of(const Values& full, const ir::Shape& shape, int axis, int tp, int r, std::int64_t groups) {
    if (axis < 0) {
        return full;
    }
    const Blocks b(shape, axis, tp, groups);
    Values out(static_cast<std::size_t>(b.outer * b.run()));
    for (std::int64_t o = 0; o < b.outer; ++o) {
        std::copy_n(full.begin() + b.in_whole(o, r), b.run(), out.begin() + b.in_block(o));
    }
    return out;
}

// The inverse: `blocks` (one per rank) put back together along `axis`.
Values whole_of(const std::vector<Values>& blocks, const ir::Shape& shape, int axis, std::int64_t groups) {
    if (axis < 0) {
        return blocks.front();
    }
    const Blocks b(shape, axis, static_cast<std::int64_t>(blocks.size()), groups);
    Values out(static_cast<std::size_t>(shape.numel()));
    for (std::size_t r = 0; r < blocks.size(); ++r) {
        for (std::int64_t o = 0; o < b.outer; ++o) {
            std::copy_n(blocks[r].begin() + b.in_block(o), b.run(),
                        out.begin() + b.in_whole(o, static_cast<std::int64_t>(r)));
        }
    }
    return out;
}

// Tensor parallelism: the tp device programs of split_tensor_parallel run side by side, one thread each; after each
// node the layouts list as a partial sum, the devices meet and every one takes the sum of their values in rank order.
StepOutcome run_tensor_parallel(const Plan& plan, const StepInputs& inputs) {
    const compiler::Strategy& st = plan.strategy;
    if (st.dp != 1 || st.pp != 1 || st.micro_batches != 1 || st.zero || st.recompute) {
        throw UsageError("functional simulation runs tensor parallelism on its own for now (tp=N alone), not " +
                         st.to_string());
    }
    const std::vector<compiler::DeviceProgram> programs = compiler::split_tensor_parallel(plan);
    const autodiff::TrainingGraph& step = plan.step;
    const ir::Graph& g = step.graph;
    const int tp = st.tp;
    std::vector<std::unique_ptr<Executor>> executors(static_cast<std::size_t>(tp));
    std::vector<Values*> parts(static_cast<std::size_t>(tp));
    Values sum;
    std::barrier meet(tp);
    StepOutcome out;
    for (int r = 0; r < tp; ++r) {
        const compiler::DeviceProgram& prog = programs[static_cast<std::size_t>(r)];
        ExecutorOptions options = reference_options();
        for (const autodiff::Assignment& a : step.updates) {
            if (prog.local[a.value.index].valid()) {
                options.keep.push_back(prog.local[a.value.index]);
            }
        }
        options.sync_points = prog.all_reduce_after;
        options.on_computed = [&, r](std::size_t k) {
            const compiler::DeviceProgram& mine = programs[static_cast<std::size_t>(r)];
            Values& value = executors[static_cast<std::size_t>(r)]->value(mine.all_reduce_after[k]).data;
            parts[static_cast<std::size_t>(r)] = &value;
            meet.arrive_and_wait();
            if (r == 0) {
                sum = *parts[0];
                for (std::size_t other = 1; other < parts.size(); ++other) {
                    for (std::size_t e = 0; e < sum.size(); ++e) {
                        sum[e] += (*parts[other])[e];
                    }
                }
            }
            meet.arrive_and_wait();
            value = sum;
            meet.arrive_and_wait();
        };
        options.before_read = [](std::size_t) {};
        executors[static_cast<std::size_t>(r)] = std::make_unique<Executor>(prog.graph, options);
        Executor& ex = *executors[static_cast<std::size_t>(r)];
        for (const compiler::DeviceProgram::Leaf& leaf : prog.leaves) {
            const ir::Node& node = g.node(leaf.training);
            ir::Buffer<float>& to = ex.value(leaf.here);
            if (set_scalar(step, leaf.training, to, inputs.learning_rate)) {
                continue;
            }
            const Values& full = node.op == ir::OpKind::Parameter ? inputs.parameters[index_in(g.parameters(), leaf.training)]
                                 : node.op == ir::OpKind::State   ? inputs.states[index_in(g.states(), leaf.training)]
                                                                  : inputs.data.at(node.name);
            copy_into(to, block_of(full, node.type.shape, leaf.split_axis, tp, r, leaf.groups), "'" + node.name + "'");
        }
    }
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> failed(static_cast<std::size_t>(tp));
    for (int r = 0; r < tp; ++r) {
        threads.emplace_back([&, r] {
            try {
                executors[static_cast<std::size_t>(r)]->run();
            } catch (...) {
                failed[static_cast<std::size_t>(r)] = std::current_exception();
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    for (const std::exception_ptr& e : failed) {
        if (e) {
            std::rethrow_exception(e);
        }
    }
    for (const NodeId id : programs[0].all_reduce_after) {
        ++out.all_reduces;
        out.all_reduce_bytes += static_cast<double>(programs[0].graph.type(id).shape.numel()) * sizeof(float);
    }
    // The loss is replicated: every device computed the same one.
    out.loss = executors[0]->value(programs[0].local[step.loss.index]).data[0];
    for (int r = 1; r < tp; ++r) {
        out.replicas_agree = out.replicas_agree &&
                             executors[static_cast<std::size_t>(r)]->value(programs[static_cast<std::size_t>(r)]
                                                                               .local[step.loss.index]).data[0] ==
                                 static_cast<float>(out.loss);
    }
    // Updates, then each parameter and state put back together from the devices' blocks.
    out.parameters = inputs.parameters;
    out.states = inputs.states;
    for (const autodiff::Assignment& a : step.updates) {
        if (!programs[0].local[a.value.index].valid()) {
            continue;
        }
        const int axis = compiler::leaf_split_axis(plan, a.target);
        std::int64_t groups = 1;  // as the devices hold the target (its leaf's grouping)
        for (const compiler::DeviceProgram::Leaf& leaf : programs[0].leaves) {
            groups = leaf.training == a.target ? leaf.groups : groups;
        }
        std::vector<Values> blocks;
        for (int r = 0; r < tp; ++r) {
            blocks.push_back(executors[static_cast<std::size_t>(r)]
                                 ->value(programs[static_cast<std::size_t>(r)].local[a.value.index]).data);
        }
        const ir::Node& target = g.node(a.target);
        Values whole = whole_of(blocks, target.type.shape, axis, groups);
        if (axis < 0) {  // replicated: every device must have computed the same
            for (int r = 1; r < tp; ++r) {
                out.replicas_agree = out.replicas_agree && blocks[static_cast<std::size_t>(r)] == blocks[0];
            }
        }
        if (target.op == ir::OpKind::Parameter) {
            out.parameters[index_in(g.parameters(), a.target)] = std::move(whole);
        } else {
            out.states[index_in(g.states(), a.target)] = std::move(whole);
        }
    }
    return out;
}

}  // namespace

StepOutcome run_partitioned(const Plan& plan, const StepInputs& inputs) {
    const compiler::Strategy& st = plan.strategy;
    if (st.tp > 1) {
        check_inputs(plan, inputs);
        return run_tensor_parallel(plan, inputs);
    }
    if (st.sp) {
        throw UsageError("functional simulation does not run sp=1 plans yet (" + st.to_string() + ")");
    }
    check_inputs(plan, inputs);
    const std::vector<StageProgram> programs = compiler::insert_transfers(plan);  // UsageError for tp > 1
    const autodiff::TrainingGraph& step = plan.step;
    const ir::Graph& g = step.graph;
    const int dp = st.dp, pp = st.pp, m = st.micro_batches;
    std::vector<std::unique_ptr<Executor>> executors(programs.size());
    for (std::size_t p = 0; p < programs.size(); ++p) {
        if (!programs[p].empty()) {
            executors[p] = std::make_unique<Executor>(programs[p].graph, reference_options());
        }
    }
    // Each replica's parameters and states (the owners' copies), the gradients it accumulates, and per
    // (replica, micro-batch) the values programs export, by training-graph node.
    std::vector<std::vector<Values>> parameters(static_cast<std::size_t>(dp), inputs.parameters);
    std::vector<std::vector<Values>> states(static_cast<std::size_t>(dp), inputs.states);
    std::vector<std::map<std::uint32_t, Values>> accumulated(static_cast<std::size_t>(dp));
    StepOutcome out;
    double loss_sum = 0;

    auto feed_leaves = [&](const StageProgram& prog, Executor& ex, int r, int k) {
        for (const StageProgram::Leaf& leaf : prog.leaves) {
            ir::Buffer<float>& to = ex.value(leaf.here);
            const ir::Node& node = g.node(leaf.training);
            if (node.op == ir::OpKind::Parameter) {
                const std::size_t idx = index_in(g.parameters(), leaf.training);
                copy_into(to, parameters[static_cast<std::size_t>(r)][idx], "parameter '" + node.name + "'");
                if (plan.stage[leaf.training.index] != prog.stage) {  // a parameter read on another stage
                    ++out.transfers;
                    out.transfer_bytes += static_cast<double>(to.data.size() * sizeof(float));
                }
            } else if (node.op == ir::OpKind::State) {
                const std::size_t idx = index_in(g.states(), leaf.training);
                copy_into(to, states[static_cast<std::size_t>(r)][idx], "state '" + node.name + "'");
            } else if (!set_scalar(step, leaf.training, to, inputs.learning_rate)) {
                // A data input: this (replica, micro-batch)'s shard of the global batch.
                const Values& global = inputs.data.at(node.name);
                const std::size_t size = to.data.size();
                const std::size_t shard = static_cast<std::size_t>(r * m + k);
                std::memcpy(to.data.data(), global.data() + shard * size, size * sizeof(float));
            }
        }
    };
    auto collect = [&](const StageProgram& prog, Executor& ex, std::map<std::uint32_t, Values>& exported) {
        for (const NodeId o : prog.graph.outputs()) {
            exported[prog.origin[o.index].index] = ex.value(o).data;
        }
    };
    auto receive = [&](const StageProgram& prog, Executor& ex, const std::map<std::uint32_t, Values>& exported) {
        for (const StageProgram::Receive& rc : prog.receives) {
            const auto it = exported.find(rc.value.index);
            if (it == exported.end()) {
                throw Error("functional simulation: stage " + std::to_string(prog.stage) + " " +
                            compiler::to_string(prog.part) + " receives " + g.describe(rc.value) +
                            " before stage " + std::to_string(rc.from_stage) + " " +
                            compiler::to_string(rc.from_part) + " has computed it");
            }
            copy_into(ex.value(rc.input), it->second, "received " + g.describe(rc.value));
            if (rc.from_stage != prog.stage) {
                ++out.transfers;
                out.transfer_bytes += static_cast<double>(it->second.size() * sizeof(float));
            }
        }
    };

    std::map<std::uint32_t, Values> last_exported;  // replica 0's last micro-batch: forward state updates
    for (int r = 0; r < dp; ++r) {
        for (int k = 0; k < m; ++k) {
            std::map<std::uint32_t, Values> exported;
            std::vector<int> order;
            for (int s = 0; s < pp; ++s) {
                order.push_back(3 * s + static_cast<int>(ProgramPart::Forward));
            }
            for (int s = pp - 1; s >= 0; --s) {
                order.push_back(3 * s + static_cast<int>(ProgramPart::Backward));
            }
            for (const int p : order) {
                const StageProgram& prog = programs[static_cast<std::size_t>(p)];
                if (prog.empty()) {
                    continue;
                }
                Executor& ex = *executors[static_cast<std::size_t>(p)];
                feed_leaves(prog, ex, r, k);
                receive(prog, ex, exported);
                ex.run();
                collect(prog, ex, exported);
            }
            loss_sum += exported.at(step.loss.index)[0];
            // Gradients the update programs read: summed over the micro-batches in order.
            for (std::size_t p = 0; p < programs.size(); ++p) {
                if (programs[p].part != ProgramPart::Update || programs[p].empty()) {
                    continue;
                }
                for (const StageProgram::Receive& rc : programs[p].receives) {
                    if (rc.from_part == ProgramPart::Update) {
                        continue;  // computed once per step by another update program
                    }
                    const Values& g_rk = exported.at(rc.value.index);
                    Values& sum = accumulated[static_cast<std::size_t>(r)][rc.value.index];
                    if (k == 0) {
                        sum = g_rk;
                    } else {
                        for (std::size_t e = 0; e < sum.size(); ++e) {
                            sum[e] += g_rk[e];
                        }
                    }
                }
            }
            if (r == 0 && k == m - 1) {
                last_exported = std::move(exported);
            }
        }
    }
    // All-reduce over the replicas in rank order, then the mean over the global batch's dp * m shards.
    std::map<std::uint32_t, Values> mean;
    const float shards = static_cast<float>(dp * m);
    for (const auto& [node, first] : accumulated[0]) {
        Values sum = first;
        for (int r = 1; r < dp; ++r) {
            const Values& other = accumulated[static_cast<std::size_t>(r)].at(node);
            for (std::size_t e = 0; e < sum.size(); ++e) {
                sum[e] += other[e];
            }
        }
        for (float& v : sum) {
            v /= shards;
        }
        if (dp > 1) {
            ++out.all_reduces;
            out.all_reduce_bytes += static_cast<double>(sum.size() * sizeof(float));
        }
        mean.emplace(node, std::move(sum));
    }
    // ZeRO-1 (zero=1): replica r owns elements [n r / dp, n (r + 1) / dp) of every gradient, parameter and optimizer
    // state. The all-reduce above is then a reduce-scatter: it receives only its share of each mean gradient (the
    // rest is NaN, so a value that leaked into its share would show), keeps only its share of the optimizer state,
    // updates its share, and the parameters are all-gathered after. The update programs must be elementwise for a
    // share's update to need only that share.
    const bool sharded = st.zero && dp > 1;
    auto share = [&](std::size_t n, int r) {
        return std::pair{n * static_cast<std::size_t>(r) / static_cast<std::size_t>(dp),
                         n * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(dp)};
    };
    auto keep_share = [&](Values& v, int r) {
        const auto [begin, end] = share(v.size(), r);
        for (std::size_t e = 0; e < v.size(); ++e) {
            v[e] = e >= begin && e < end ? v[e] : std::numeric_limits<float>::quiet_NaN();
        }
    };
    if (sharded) {
        for (const StageProgram& prog : programs) {
            if (prog.part != ProgramPart::Update) {
                continue;
            }
            for (std::uint32_t i = 0; i < prog.graph.size(); ++i) {
                const ir::OpKind op = prog.graph.node(NodeId{i}).op;
                const bool leaf = ir::is_leaf(op);
                if (!leaf && !ir::is_elementwise_map(op)) {
                    throw UsageError("functional simulation of zero=1: the optimizer update has a " +
                                     std::string(ir::op_info(op).name) + ", which is not elementwise; a replica's "
                                     "share of the update would need other shares");
                }
            }
        }
        for (int r = 0; r < dp; ++r) {
            for (Values& v : states[static_cast<std::size_t>(r)]) {
                keep_share(v, r);
            }
        }
    }
    // Each replica updates its own copy. An update program may read another stage's per-step values (a shared
    // optimizer term): each runs once everything it receives exists.
    for (int r = 0; r < dp; ++r) {
        std::map<std::uint32_t, Values> updated;
        std::vector<std::size_t> pending;
        for (std::size_t p = 0; p < programs.size(); ++p) {
            if (programs[p].part == ProgramPart::Update && !programs[p].empty()) {
                pending.push_back(p);
            }
        }
        while (!pending.empty()) {
            const auto ready = std::find_if(pending.begin(), pending.end(), [&](std::size_t p) {
                return std::all_of(programs[p].receives.begin(), programs[p].receives.end(),
                                   [&](const StageProgram::Receive& rc) {
                                       return rc.from_part != ProgramPart::Update || updated.count(rc.value.index) != 0;
                                   });
            });
            if (ready == pending.end()) {
                throw Error("functional simulation: the update programs read each other's values in a cycle");
            }
            const StageProgram& prog = programs[*ready];
            Executor& ex = *executors[*ready];
            pending.erase(ready);
            feed_leaves(prog, ex, r, 0);
            for (const StageProgram::Receive& rc : prog.receives) {
                const bool per_step = rc.from_part == ProgramPart::Update;
                const auto& source = per_step ? updated : mean;
                const auto it = source.find(rc.value.index);
                if (it == source.end()) {
                    throw Error("functional simulation: the update reads " + g.describe(rc.value) +
                                ", which is not a gradient accumulated over the micro-batches");
                }
                copy_into(ex.value(rc.input), it->second, "value " + g.describe(rc.value));
                if (sharded && !per_step) {  // the reduce-scatter: this replica's share of the mean gradient
                    keep_share(ex.value(rc.input).data, r);
                }
                if (per_step && rc.from_stage != prog.stage) {
                    ++out.transfers;
                    out.transfer_bytes += static_cast<double>(it->second.size() * sizeof(float));
                }
            }
            ex.run();
            collect(prog, ex, updated);
        }
        for (const autodiff::Assignment& a : step.updates) {
            auto it = updated.find(a.value.index);
            const Values* value = it != updated.end() ? &it->second : nullptr;
            if (value == nullptr) {  // a forward state update (BatchNorm statistics): the last micro-batch's
                const auto last = last_exported.find(a.value.index);
                value = last == last_exported.end() ? nullptr : &last->second;
            }
            if (value == nullptr) {
                continue;  // not live: the unpartitioned step computes it no more than this one
            }
            const ir::Node& target = g.node(a.target);
            auto& store = target.op == ir::OpKind::Parameter ? parameters[static_cast<std::size_t>(r)]
                                                             : states[static_cast<std::size_t>(r)];
            const auto& list = target.op == ir::OpKind::Parameter ? g.parameters() : g.states();
            store[index_in(list, a.target)] = *value;
            if (sharded && it != updated.end()) {
                keep_share(store[index_in(list, a.target)], r);  // its share of the new values only
            }
        }
    }
    if (sharded) {  // the all-gather: every replica takes each share from its owner
        for (auto* held : {&parameters, &states}) {
            for (std::size_t k = 0; k < (*held)[0].size(); ++k) {
                Values whole((*held)[0][k].size());
                for (int owner = 0; owner < dp; ++owner) {
                    const auto [begin, end] = share(whole.size(), owner);
                    std::copy((*held)[static_cast<std::size_t>(owner)][k].begin() + static_cast<std::ptrdiff_t>(begin),
                              (*held)[static_cast<std::size_t>(owner)][k].begin() + static_cast<std::ptrdiff_t>(end),
                              whole.begin() + static_cast<std::ptrdiff_t>(begin));
                }
                if (held == &parameters) {
                    ++out.all_gathers;
                    out.all_gather_bytes += static_cast<double>(whole.size() * sizeof(float));
                    for (int r = 0; r < dp; ++r) {
                        (*held)[static_cast<std::size_t>(r)][k] = whole;
                    }
                } else {
                    (*held)[0][k] = whole;  // reported whole; each replica keeps only its share
                }
            }
        }
    }
    out.loss = loss_sum / (dp * m);
    out.parameters = parameters[0];
    out.states = states[0];
    for (int r = 1; r < dp; ++r) {
        out.replicas_agree = out.replicas_agree && parameters[static_cast<std::size_t>(r)] == parameters[0];
    }
    return out;
}

StepInputs seeded_inputs(const Plan& plan, std::int64_t global_batch, std::int64_t classes, std::uint64_t seed) {
    const ir::Graph& g = plan.step.graph;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> weight(-0.1f, 0.1f), unit(0.0f, 1.0f);
    std::int64_t vocabulary = 0;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::Node& node = g.node(NodeId{i});
        if (node.op == ir::OpKind::Gather && g.node(node.inputs.front()).op == ir::OpKind::Parameter) {
            const std::int64_t rows = g.type(node.inputs.front()).shape[0];
            vocabulary = vocabulary == 0 ? rows : std::min(vocabulary, rows);
        }
    }
    vocabulary = vocabulary == 0 ? classes : vocabulary;
    StepInputs in;
    for (const NodeId p : g.parameters()) {
        Values v(static_cast<std::size_t>(g.type(p).shape.numel()));
        for (float& x : v) {
            x = weight(rng);
        }
        in.parameters.push_back(std::move(v));
    }
    for (const NodeId s : g.states()) {
        in.states.emplace_back(static_cast<std::size_t>(g.type(s).shape.numel()), 0.0f);
    }
    for (const NodeId id : g.inputs()) {
        if (is_scalar_input(plan.step, id)) {
            continue;
        }
        const ir::TensorType& type = g.type(id);
        const auto per_sample = type.shape.numel() / plan.micro_batch;
        Values v(static_cast<std::size_t>(per_sample * global_batch));
        if (type.dtype == ir::DType::I64) {
            std::uniform_int_distribution<std::int64_t> id_of(0, std::max<std::int64_t>(vocabulary, 1) - 1);
            for (float& x : v) {
                x = static_cast<float>(id_of(rng));
            }
        } else if (g.node(id).name == "target" && type.shape.rank() >= 1) {
            const std::int64_t width = type.shape.dims().back();
            std::uniform_int_distribution<std::int64_t> hot(0, width - 1);
            for (std::size_t row = 0; row < v.size() / static_cast<std::size_t>(width); ++row) {
                v[row * static_cast<std::size_t>(width) + static_cast<std::size_t>(hot(rng))] = 1.0f;
            }
        } else {
            for (float& x : v) {
                x = unit(rng);
            }
        }
        in.data.emplace(g.node(id).name, std::move(v));
    }
    return in;
}

}  // namespace dojo::runtime
