// Functional simulation (functional_sim.h): a partitioned plan run program by program with real copies and sums.
#include "dojo/proof/functional_sim.h"

#include <algorithm>
#include <barrier>
#include <exception>
#include <thread>
#include <cstring>
#include <limits>
#include <memory>
#include <random>

#include "dojo/compiler/insert_transfers.h"
#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/schedule.h"
#include "dojo/compiler/split_tensor_parallel.h"
#include "dojo/ir/elementwise.h"
#include "dojo/ir/op.h"
#include "dojo/runtime/executor.h"
#include "dojo/util/error.h"

namespace dojo::proof {

using runtime::Executor;
using runtime::ExecutorOptions;
using runtime::Kernels;

namespace {

using compiler::Plan;
using compiler::ProgramPart;
using compiler::StageProgram;
using ir::NodeId;

using Values = std::vector<float>;

bool is_scalar_input(const autodiff::TrainingGraph& step, NodeId id) {
    return id == step.learning_rate || (step.bias_correction1.valid() && id == step.bias_correction1) ||
           (step.bias_correction2.valid() && id == step.bias_correction2) ||
           step.graph.node(id).name == ir::kStepInputName;  // stochastic rounding's and dropout's step number
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

// Writes the per-step scalars (learning rate, AdamW's bias corrections for step 1, the step number 0) into a leaf if it is one.
bool set_scalar(const autodiff::TrainingGraph& step, NodeId training, ir::Buffer<float>& to, float learning_rate) {
    if (training == step.learning_rate) {
        to.data[0] = learning_rate;
        return true;
    }
    if (step.graph.node(training).name == ir::kStepInputName) {
        to.data[0] = 0.0f;  // the run's first step, as dojo train's
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
        out.parameters.push_back(executor.value(p).data.to_vector());
    }
    for (const NodeId s : g.states()) {
        out.states.push_back(executor.value(s).data.to_vector());
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

// One device of the tensor-parallel group (the only one with tp = 1): its stage programs, and where each training
// node is in the graph they were cut from.
struct Device {
    std::vector<StageProgram> programs;
    std::vector<NodeId> source;  // [training node]: its node in the source graph (invalid where not live)
    std::map<std::uint32_t, std::pair<int, std::int64_t>> held;  // training leaf -> (split axis, groups) on it
};

std::vector<Device> devices_of(const Plan& plan) {
    std::vector<Device> devices;
    if (plan.strategy.tp == 1) {
        Device d;
        d.programs = compiler::insert_transfers(plan);
        for (std::uint32_t i = 0; i < plan.step.graph.size(); ++i) {
            d.source.push_back(NodeId{i});
        }
        devices.push_back(std::move(d));
        return devices;
    }
    for (const compiler::DeviceProgram& program : compiler::split_tensor_parallel(plan)) {
        Device d;
        d.programs = compiler::insert_transfers(plan, program);
        d.source = program.local;
        for (const compiler::DeviceProgram::Leaf& leaf : program.leaves) {
            d.held[leaf.training.index] = {leaf.split_axis, leaf.groups};
        }
        devices.push_back(std::move(d));
    }
    return devices;
}

// Runs a step: see the file comment of functional_sim.h. With tp > 1 every program runs on the tp devices side by
// side, one thread each; at each of its all-reduce points the devices meet and every one takes the sum of their
// values in rank order.
class PartitionedStep {
public:
    // `plan`'s stages are the pipeline's chunks; `schedule` orders their tasks (compiler/schedule.h).
    PartitionedStep(const Plan& plan, const StepInputs& inputs, const compiler::Strategy& schedule)
        : plan_(plan), schedule_(schedule), inputs_(inputs), g_(plan.step.graph), tp_(plan.strategy.tp),
          dp_(plan.strategy.dp),
          pp_(plan.strategy.pp), m_(plan.strategy.micro_batches), devices_(devices_of(plan)), meet_(tp_),
          parts_(static_cast<std::size_t>(tp_)) {
        const std::size_t programs = devices_[0].programs.size();
        executors_.resize(static_cast<std::size_t>(tp_));
        for (int t = 0; t < tp_; ++t) {
            executors_[static_cast<std::size_t>(t)].resize(programs);
            for (std::size_t p = 0; p < programs; ++p) {
                const StageProgram& prog = program(t, p);
                if (prog.empty()) {
                    continue;
                }
                ExecutorOptions options = reference_options();
                if (!prog.all_reduce_after.empty()) {
                    options.sync_points = prog.all_reduce_after;
                    options.on_computed = [this, t, p](std::size_t k) { all_reduce(t, p, k); };
                    options.before_read = [](std::size_t) {};
                }
                executors_[static_cast<std::size_t>(t)][p] = std::make_unique<Executor>(prog.graph, options);
            }
        }
        // Each replica's and device's parameters and states: the device's block of each.
        parameters_.assign(static_cast<std::size_t>(dp_), std::vector<std::vector<Values>>(static_cast<std::size_t>(tp_)));
        states_ = parameters_;
        for (int r = 0; r < dp_; ++r) {
            for (int t = 0; t < tp_; ++t) {
                for (std::size_t i = 0; i < g_.parameters().size(); ++i) {
                    held(r, t, parameters_)->push_back(block(inputs.parameters[i], g_.parameters()[i], t));
                }
                for (std::size_t i = 0; i < g_.states().size(); ++i) {
                    held(r, t, states_)->push_back(block(inputs.states[i], g_.states()[i], t));
                }
            }
        }
    }

    StepOutcome run() {
        std::vector<std::vector<std::map<std::uint32_t, Values>>> accumulated(
            static_cast<std::size_t>(dp_), std::vector<std::map<std::uint32_t, Values>>(static_cast<std::size_t>(tp_)));
        std::vector<std::map<std::uint32_t, Values>> last_exported;  // replica 0's last micro-batch, per device
        double loss_sum = 0;
        for (int r = 0; r < dp_; ++r) {
            // The chunks' forward and backward programs in the order of the pipeline schedule (compiler/schedule.h:
            // 1F1B, or interleaved), device by device, each as soon as what it receives exists: several
            // micro-batches are in flight, each with its own values. A micro-batch is finished once its every task
            // has run; its loss and gradients are then summed, in micro-batch order.
            const std::vector<std::vector<compiler::PipelineTask>> order = compiler::pipeline_schedule(schedule_);
            std::vector<std::vector<std::map<std::uint32_t, Values>>> exported(
                static_cast<std::size_t>(m_), std::vector<std::map<std::uint32_t, Values>>(static_cast<std::size_t>(tp_)));
            std::vector<int> tasks_left(static_cast<std::size_t>(m_), 2 * pp_);  // pp_: the chunks
            std::vector<std::size_t> next(order.size(), 0);
            int finished = 0;  // micro-batches 0 .. finished - 1 are summed
            for (bool progressed = true; progressed;) {
                progressed = false;
                for (std::size_t s = 0; s < order.size(); ++s) {
                    auto& at = next[s];
                    while (at < order[s].size()) {
                        const compiler::PipelineTask& task = order[s][at];
                        const auto p = static_cast<std::size_t>(
                            3 * task.chunk + static_cast<int>(task.backward ? ProgramPart::Backward : ProgramPart::Forward));
                        auto& values = exported[static_cast<std::size_t>(task.micro)];
                        if (!program(0, p).empty()) {
                            const auto& receives = program(0, p).receives;
                            if (!std::all_of(receives.begin(), receives.end(), [&](const StageProgram::Receive& rc) {
                                    return values[0].count(rc.value.index) != 0;
                                })) {
                                break;  // waits for another stage
                            }
                            for (int t = 0; t < tp_; ++t) {
                                feed_leaves(t, p, r, task.micro);
                                receive(t, p, values[static_cast<std::size_t>(t)]);
                            }
                            run_group(p);
                            for (int t = 0; t < tp_; ++t) {
                                collect(t, p, values[static_cast<std::size_t>(t)]);
                            }
                        }
                        --tasks_left[static_cast<std::size_t>(task.micro)];
                        ++at;
                        progressed = true;
                    }
                }
                while (finished < m_ && tasks_left[static_cast<std::size_t>(finished)] == 0) {
                    auto& values = exported[static_cast<std::size_t>(finished)];
                    const float loss = values[0].at(devices_[0].source[plan_.step.loss.index].index)[0];
                    for (int t = 1; t < tp_; ++t) {  // replicated: every device computed the same
                        out_.replicas_agree =
                            out_.replicas_agree &&
                            values[static_cast<std::size_t>(t)].at(device(t).source[plan_.step.loss.index].index)[0] == loss;
                    }
                    loss_sum += loss;
                    // Gradients the update programs read: summed over the micro-batches in order.
                    for (int t = 0; t < tp_; ++t) {
                        accumulate(t, values[static_cast<std::size_t>(t)],
                                   accumulated[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)], finished);
                    }
                    if (r == 0 && finished == m_ - 1) {
                        last_exported = std::move(values);
                    }
                    values.clear();
                    ++finished;
                }
            }
            if (finished < m_) {
                throw Error("functional simulation: the pipeline schedule stopped with micro-batch " +
                            std::to_string(finished) + " unfinished (a task waits for a value no task computes)");
            }
        }
        update(accumulated, last_exported);
        out_.loss = loss_sum / (dp_ * m_);
        out_.pipeline_chunks = pp_;
        // Each parameter and state put back together from replica 0's devices' blocks.
        out_.parameters = whole(parameters_, g_.parameters());
        out_.states = whole(states_, g_.states());
        for (int r = 1; r < dp_; ++r) {
            out_.replicas_agree = out_.replicas_agree && parameters_[static_cast<std::size_t>(r)] == parameters_[0];
        }
        return std::move(out_);
    }

private:
    const Device& device(int t) const { return devices_[static_cast<std::size_t>(t)]; }
    const StageProgram& program(int t, std::size_t p) const { return device(t).programs[p]; }
    Executor& executor(int t, std::size_t p) { return *executors_[static_cast<std::size_t>(t)][p]; }
    std::vector<Values>* held(int r, int t, std::vector<std::vector<std::vector<Values>>>& store) {
        return &store[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)];
    }
    std::pair<int, std::int64_t> layout_of(int t, NodeId leaf) const {
        const auto it = device(t).held.find(leaf.index);
        return it == device(t).held.end() ? std::pair<int, std::int64_t>{-1, 1} : it->second;
    }
    Values block(const Values& full, NodeId leaf, int t) const {
        const auto [axis, groups] = layout_of(t, leaf);
        return block_of(full, g_.type(leaf).shape, axis, tp_, t, groups);
    }

    // Device t's all-reduce point k of program p (on its thread): meet, rank 0 sums in rank order, all take it.
    void all_reduce(int t, std::size_t p, std::size_t k) {
        ir::Storage<float>& value = executor(t, p).value(program(t, p).all_reduce_after[k]).data;
        parts_[static_cast<std::size_t>(t)] = &value;
        meet_.arrive_and_wait();
        if (t == 0) {
            sum_.assign(parts_[0]->begin(), parts_[0]->end());
            for (std::size_t other = 1; other < parts_.size(); ++other) {
                for (std::size_t e = 0; e < sum_.size(); ++e) {
                    sum_[e] += (*parts_[other])[e];
                }
            }
            ++out_.all_reduces;
            out_.all_reduce_bytes += static_cast<double>(sum_.size() * sizeof(float));
        }
        meet_.arrive_and_wait();
        value = sum_;
        meet_.arrive_and_wait();
    }

    // Program p on every device of the group.
    void run_group(std::size_t p) {
        if (tp_ == 1) {
            executor(0, p).run();
            return;
        }
        std::vector<std::thread> threads;
        std::vector<std::exception_ptr> failed(static_cast<std::size_t>(tp_));
        for (int t = 0; t < tp_; ++t) {
            threads.emplace_back([&, t] {
                try {
                    executor(t, p).run();
                } catch (...) {
                    failed[static_cast<std::size_t>(t)] = std::current_exception();
                }
            });
        }
        for (std::thread& thread : threads) {
            thread.join();
        }
        for (const std::exception_ptr& e : failed) {
            if (e) {
                std::rethrow_exception(e);
            }
        }
    }

    void feed_leaves(int t, std::size_t p, int r, int k) {
        const StageProgram& prog = program(t, p);
        Executor& ex = executor(t, p);
        for (const StageProgram::Leaf& leaf : prog.leaves) {
            ir::Buffer<float>& to = ex.value(leaf.here);
            const ir::Node& node = g_.node(leaf.training);
            if (node.op == ir::OpKind::Parameter) {
                const std::size_t idx = index_in(g_.parameters(), leaf.training);
                copy_into(to, (*held(r, t, parameters_))[idx], "parameter '" + node.name + "'");
                if (plan_.stage[leaf.training.index] != prog.stage) {  // a parameter read on another stage
                    ++out_.transfers;
                    out_.transfer_bytes += static_cast<double>(to.data.size() * sizeof(float));
                }
            } else if (node.op == ir::OpKind::State) {
                const std::size_t idx = index_in(g_.states(), leaf.training);
                copy_into(to, (*held(r, t, states_))[idx], "state '" + node.name + "'");
            } else if (!set_scalar(plan_.step, leaf.training, to, inputs_.learning_rate)) {
                // A data input: this (replica, micro-batch)'s shard of the global batch (its block on the device).
                const Values& global = inputs_.data.at(node.name);
                const auto size = static_cast<std::size_t>(node.type.shape.numel());
                const std::size_t shard = static_cast<std::size_t>(r * m_ + k);
                const Values mine(global.begin() + static_cast<std::ptrdiff_t>(shard * size),
                                  global.begin() + static_cast<std::ptrdiff_t>((shard + 1) * size));
                copy_into(to, block_of(mine, node.type.shape, leaf.split_axis, tp_, t, leaf.groups),
                          "input '" + node.name + "'");
            }
        }
    }

    void receive(int t, std::size_t p, const std::map<std::uint32_t, Values>& exported) {
        const StageProgram& prog = program(t, p);
        Executor& ex = executor(t, p);
        for (const StageProgram::Receive& rc : prog.receives) {
            const auto it = exported.find(rc.value.index);
            if (it == exported.end()) {
                throw Error("functional simulation: stage " + std::to_string(prog.stage) + " " +
                            compiler::to_string(prog.part) + " receives node #" + std::to_string(rc.value.index) +
                            " before stage " + std::to_string(rc.from_stage) + " " +
                            compiler::to_string(rc.from_part) + " has computed it");
            }
            copy_into(ex.value(rc.input), it->second, "a received value");
            if (rc.from_stage != prog.stage) {
                ++out_.transfers;
                out_.transfer_bytes += static_cast<double>(it->second.size() * sizeof(float));
            }
        }
    }

    void collect(int t, std::size_t p, std::map<std::uint32_t, Values>& exported) {
        const StageProgram& prog = program(t, p);
        for (const NodeId o : prog.graph.outputs()) {
            exported[prog.origin[o.index].index] = executor(t, p).value(o).data.to_vector();
        }
    }

    void accumulate(int t, const std::map<std::uint32_t, Values>& exported, std::map<std::uint32_t, Values>& sums,
                    int k) const {
        for (const StageProgram& prog : device(t).programs) {
            if (prog.part != ProgramPart::Update || prog.empty()) {
                continue;
            }
            for (const StageProgram::Receive& rc : prog.receives) {
                if (rc.from_part == ProgramPart::Update) {
                    continue;  // computed once per step by another update program
                }
                const Values& g_rk = exported.at(rc.value.index);
                Values& sum = sums[rc.value.index];
                if (k == 0) {
                    sum = g_rk;
                } else {
                    for (std::size_t e = 0; e < sum.size(); ++e) {
                        sum[e] += g_rk[e];
                    }
                }
            }
        }
    }

    // ZeRO-1: replica r owns elements [n r / dp, n (r + 1) / dp) of each of its devices' tensors.
    std::pair<std::size_t, std::size_t> share(std::size_t n, int r) const {
        return {n * static_cast<std::size_t>(r) / static_cast<std::size_t>(dp_),
                n * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(dp_)};
    }
    void keep_share(std::span<float> v, int r) const {
        const auto [begin, end] = share(v.size(), r);
        for (std::size_t e = 0; e < v.size(); ++e) {
            v[e] = e >= begin && e < end ? v[e] : std::numeric_limits<float>::quiet_NaN();
        }
    }

    // The all-reduce over the replicas, the update programs, the assignments, and with zero=1 the all-gather.
    void update(const std::vector<std::vector<std::map<std::uint32_t, Values>>>& accumulated,
                const std::vector<std::map<std::uint32_t, Values>>& last_exported) {
        // All-reduce over the replicas in rank order, then the mean over the global batch's dp * m shards.
        std::vector<std::map<std::uint32_t, Values>> mean(static_cast<std::size_t>(tp_));
        const float shards = static_cast<float>(dp_ * m_);
        for (int t = 0; t < tp_; ++t) {
            for (const auto& [node, first] : accumulated[0][static_cast<std::size_t>(t)]) {
                Values sum = first;
                for (int r = 1; r < dp_; ++r) {
                    const Values& other = accumulated[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)].at(node);
                    for (std::size_t e = 0; e < sum.size(); ++e) {
                        sum[e] += other[e];
                    }
                }
                for (float& v : sum) {
                    v /= shards;
                }
                if (dp_ > 1) {
                    ++out_.all_reduces;
                    out_.all_reduce_bytes += static_cast<double>(sum.size() * sizeof(float));
                }
                mean[static_cast<std::size_t>(t)].emplace(node, std::move(sum));
            }
        }
        const bool sharded = plan_.strategy.zero && dp_ > 1;
        if (sharded) {
            check_elementwise_update();
            for (int r = 0; r < dp_; ++r) {
                for (int t = 0; t < tp_; ++t) {
                    for (Values& v : *held(r, t, states_)) {
                        keep_share(v, r);
                    }
                }
            }
        }
        // Each replica updates its own copy. An update program may read another stage's per-step values (a shared
        // optimizer term): each runs once everything it receives exists.
        for (int r = 0; r < dp_; ++r) {
            std::vector<std::map<std::uint32_t, Values>> updated(static_cast<std::size_t>(tp_));
            std::vector<std::size_t> pending;
            for (std::size_t p = 0; p < devices_[0].programs.size(); ++p) {
                if (program(0, p).part == ProgramPart::Update && !program(0, p).empty()) {
                    pending.push_back(p);
                }
            }
            while (!pending.empty()) {
                const auto ready = std::find_if(pending.begin(), pending.end(), [&](std::size_t p) {
                    return std::all_of(program(0, p).receives.begin(), program(0, p).receives.end(),
                                       [&](const StageProgram::Receive& rc) {
                                           return rc.from_part != ProgramPart::Update ||
                                                  updated[0].count(rc.value.index) != 0;
                                       });
                });
                if (ready == pending.end()) {
                    throw Error("functional simulation: the update programs read each other's values in a cycle");
                }
                const std::size_t p = *ready;
                pending.erase(ready);
                for (int t = 0; t < tp_; ++t) {
                    feed_update(t, p, r, mean[static_cast<std::size_t>(t)], updated[static_cast<std::size_t>(t)], sharded);
                }
                run_group(p);
                for (int t = 0; t < tp_; ++t) {
                    collect(t, p, updated[static_cast<std::size_t>(t)]);
                }
            }
            for (int t = 0; t < tp_; ++t) {
                assign(r, t, updated[static_cast<std::size_t>(t)], last_exported[static_cast<std::size_t>(t)], sharded);
            }
        }
        if (sharded) {
            all_gather();
        }
    }

    void check_elementwise_update() const {
        for (const Device& d : devices_) {
            for (const StageProgram& prog : d.programs) {
                if (prog.part != ProgramPart::Update) {
                    continue;
                }
                for (std::uint32_t i = 0; i < prog.graph.size(); ++i) {
                    const ir::OpKind op = prog.graph.node(NodeId{i}).op;
                    if (!ir::is_leaf(op) && !ir::is_elementwise_map(op)) {
                        throw UsageError("functional simulation of zero=1: the optimizer update has a " +
                                         std::string(ir::op_info(op).name) + ", which is not elementwise; a "
                                         "replica's share of the update would need other shares");
                    }
                }
            }
        }
    }

    void feed_update(int t, std::size_t p, int r, const std::map<std::uint32_t, Values>& mean,
                     const std::map<std::uint32_t, Values>& updated, bool sharded) {
        feed_leaves(t, p, r, 0);
        const StageProgram& prog = program(t, p);
        Executor& ex = executor(t, p);
        for (const StageProgram::Receive& rc : prog.receives) {
            const bool per_step = rc.from_part == ProgramPart::Update;
            const auto& source = per_step ? updated : mean;
            const auto it = source.find(rc.value.index);
            if (it == source.end()) {
                throw Error("functional simulation: the update reads node #" + std::to_string(rc.value.index) +
                            ", which is not a gradient accumulated over the micro-batches");
            }
            copy_into(ex.value(rc.input), it->second, "an accumulated gradient");
            if (sharded && !per_step) {  // the reduce-scatter: this replica's share of the mean gradient
                keep_share(ex.value(rc.input).data, r);
            }
            if (per_step && rc.from_stage != prog.stage) {
                ++out_.transfers;
                out_.transfer_bytes += static_cast<double>(it->second.size() * sizeof(float));
            }
        }
    }

    // The training graph's assignments on replica r's device t: the update programs' new values, and the forward
    // state updates (BatchNorm statistics) of the last micro-batch.
    void assign(int r, int t, const std::map<std::uint32_t, Values>& updated,
                const std::map<std::uint32_t, Values>& last_exported, bool sharded) {
        for (const autodiff::Assignment& a : plan_.step.updates) {
            const NodeId here = device(t).source[a.value.index];
            if (!here.valid()) {
                continue;  // not live
            }
            const auto it = updated.find(here.index);
            const Values* value = it != updated.end() ? &it->second : nullptr;
            if (value == nullptr) {
                const auto last = last_exported.find(here.index);
                value = last == last_exported.end() ? nullptr : &last->second;
            }
            if (value == nullptr) {
                continue;  // not live: the unpartitioned step computes it no more than this one
            }
            const ir::Node& target = g_.node(a.target);
            const bool parameter = target.op == ir::OpKind::Parameter;
            std::vector<Values>& store = *held(r, t, parameter ? parameters_ : states_);
            Values& slot = store[index_in(parameter ? g_.parameters() : g_.states(), a.target)];
            slot = *value;
            if (sharded && it != updated.end()) {
                keep_share(slot, r);  // its share of the new values only
            }
        }
    }

    // ZeRO-1's all-gather: every replica takes each share of each device's tensors from its owner.
    void all_gather() {
        for (auto* store : {&parameters_, &states_}) {
            for (int t = 0; t < tp_; ++t) {
                for (std::size_t k = 0; k < (*held(0, t, *store)).size(); ++k) {
                    Values whole((*held(0, t, *store))[k].size());
                    for (int owner = 0; owner < dp_; ++owner) {
                        const auto [begin, end] = share(whole.size(), owner);
                        const Values& part = (*held(owner, t, *store))[k];
                        std::copy(part.begin() + static_cast<std::ptrdiff_t>(begin),
                                  part.begin() + static_cast<std::ptrdiff_t>(end),
                                  whole.begin() + static_cast<std::ptrdiff_t>(begin));
                    }
                    if (store == &parameters_) {
                        ++out_.all_gathers;
                        out_.all_gather_bytes += static_cast<double>(whole.size() * sizeof(float));
                        for (int r = 0; r < dp_; ++r) {
                            (*held(r, t, *store))[k] = whole;
                        }
                    } else {
                        (*held(0, t, *store))[k] = whole;  // reported whole; each replica keeps only its share
                    }
                }
            }
        }
    }

    // Replica 0's tensors, each put back together from its devices' blocks; a replicated one must agree.
    std::vector<Values> whole(std::vector<std::vector<std::vector<Values>>>& store, const std::vector<NodeId>& leaves) {
        std::vector<Values> out;
        for (std::size_t i = 0; i < leaves.size(); ++i) {
            std::vector<Values> blocks;
            for (int t = 0; t < tp_; ++t) {
                blocks.push_back((*held(0, t, store))[i]);
            }
            const auto [axis, groups] = layout_of(0, leaves[i]);
            if (axis < 0) {
                for (int t = 1; t < tp_; ++t) {
                    out_.replicas_agree = out_.replicas_agree && blocks[static_cast<std::size_t>(t)] == blocks[0];
                }
            }
            out.push_back(whole_of(blocks, g_.type(leaves[i]).shape, axis, groups));
        }
        return out;
    }

    const Plan& plan_;
    compiler::Strategy schedule_;
    const StepInputs& inputs_;
    const ir::Graph& g_;
    int tp_, dp_, pp_, m_;
    std::vector<Device> devices_;
    std::vector<std::vector<std::unique_ptr<Executor>>> executors_;  // [device][program]
    // [replica][device][parameter or state]: that device's block of it
    std::vector<std::vector<std::vector<Values>>> parameters_, states_;
    std::barrier<> meet_;
    std::vector<ir::Storage<float>*> parts_;
    Values sum_;
    StepOutcome out_;
};

}  // namespace

StepOutcome run_partitioned(const Plan& plan, const StepInputs& inputs) {
    check_inputs(plan, inputs);
    if (plan.strategy.virtual_stages == 1) {
        return PartitionedStep(plan, inputs, plan.strategy).run();
    }
    // Interleaved: the step cut into pp * vp chunks by the same balance (chunk k on device k mod pp), their tasks
    // in the interleaved order.
    Plan chunked = plan;
    compiler::Strategy chunks = plan.strategy;
    chunks.pp *= plan.strategy.virtual_stages;
    chunks.virtual_stages = 1;
    compiler::lay_out(chunked, chunks);
    return PartitionedStep(chunked, inputs, plan.strategy).run();
}

StepOutcome run_placed(const Plan& plan, const compiler::SpatialPlacement& placement, const StepInputs& inputs) {
    if (placement.stages.size() != static_cast<std::size_t>(plan.strategy.pp) || !placement.fits()) {
        throw UsageError("functional simulation of a placement: it must place every one of the plan's " +
                         std::to_string(plan.strategy.pp) + " stages and fit (see dojo plan's report)");
    }
    const std::int64_t pieces = placement.stages.front().pieces;
    for (const compiler::StagePlacement& stage : placement.stages) {
        if (stage.pieces != pieces) {
            throw UsageError("functional simulation of a placement: its stages stream their micro-batches in "
                             "different numbers of pieces (" + std::to_string(pieces) + " and " +
                             std::to_string(stage.pieces) + "); run it with --layout temporal");
        }
    }
    // The step at the piece's batch: each micro-batch of the plan is `pieces` micro-batches here.
    compiler::Strategy strategy = plan.strategy;
    strategy.micro_batches *= static_cast<int>(pieces);
    strategy.recompute = false;  // recomputation is planned per stage, not per layer: every activation is kept
    Plan layered = pieces == 1 && !plan.strategy.recompute
                       ? plan
                       : compiler::make_plan(plan.rebuild, plan.model, plan.global_batch, strategy);
    const ir::Graph& g = layered.step.graph;
    if (g.size() != plan.step.graph.size()) {
        throw Error("functional simulation of a placement: the step at a micro-batch of " +
                    std::to_string(layered.micro_batch) + " has " + std::to_string(g.size()) + " nodes, at " +
                    std::to_string(plan.micro_batch) + " it has " + std::to_string(plan.step.graph.size()));
    }
    // Every layer a stage of its own, numbered across the stages in order; a node no layer holds (a leaf no placed
    // node reads) goes with its stage's first layer.
    int offset = 0;
    std::vector<int> first_layer;
    for (const compiler::StagePlacement& stage : placement.stages) {
        first_layer.push_back(offset);
        offset += std::max<int>(1, static_cast<int>(stage.layers.size()));
    }
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const int s = plan.stage[i];
        if (s < 0) {
            continue;
        }
        const compiler::StagePlacement& stage = placement.stages[static_cast<std::size_t>(s)];
        const int layer = i < stage.layer_of.size() ? stage.layer_of[i] : -1;
        layered.stage[i] = first_layer[static_cast<std::size_t>(s)] + std::max(layer, 0);
    }
    layered.strategy.pp = offset;
    layered.strategy.virtual_stages = 1;  // layer after layer, each its own stage, in the 1F1B order
    check_inputs(layered, inputs);
    return PartitionedStep(layered, inputs, layered.strategy).run();
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

}  // namespace dojo::proof
