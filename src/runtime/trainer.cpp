#include "dojo/runtime/trainer.h"

#include <algorithm>
#include <array>
#include <limits>
#include <chrono>
#include <map>
#include <numeric>
#include <span>
#include <cmath>
#include <string>

#include "dojo/compiler/build_step.h"
#include "dojo/compiler/gradient_buckets.h"
#include "dojo/compiler/plan.h"
#include "dojo/data/batches.h"
#include "dojo/data/prefetcher.h"
#include "dojo/frontend/model.h"
#include "dojo/frontend/onnx.h"
#include "dojo/runtime/checkpoint.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/executor.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"
#include "dojo/util/random.h"

namespace dojo::runtime {
namespace {

using Clock = std::chrono::steady_clock;
using ir::NodeId;

constexpr std::size_t kMaxEvalBatch = 500;                   // the automatic evaluation batch's largest
constexpr std::size_t kEvalArenaFloor = std::size_t{256} << 20;  // an evaluation may always take this much

void validate(const TrainOptions& o, std::size_t train_size) {
    if (o.batch == 0) {
        throw UsageError("batch size must be at least 1");
    }
    if (o.epochs < 1) {
        throw UsageError("epochs must be at least 1, got " + std::to_string(o.epochs));
    }
    if (!(o.learning_rate > 0) || std::isinf(o.learning_rate)) {
        throw UsageError("learning rate must be a positive number, got " + std::to_string(o.learning_rate));
    }
    if (o.batch > train_size) {
        throw UsageError("batch size " + std::to_string(o.batch) + " is larger than the " +
                         std::to_string(train_size) + " training samples");
    }
}

// Parameters and states with given values (ONNX initializers) take them; the other parameters ~ U(-bound, bound)
// from their own stream, which the seed and the parameter's position decide, or a constant; states with a rule
// take its constant (the optimizer's moments have none and start at 0).
void initialise(Executor& executor, const ir::Graph& graph, const compiler::Step& model, std::uint64_t seed) {
    for (const auto& [id, given] : model.values) {
        std::copy(given.begin(), given.end(), executor.value(id).data.begin());
    }
    const std::vector<NodeId>& parameters = graph.parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        if (model.values.contains(parameters[i])) {
            continue;
        }
        const frontend::ParameterInit& rule = model.init.at(parameters[i]);
        SplitMix64 random(seed * 0x2545F4914F6CDD1DULL + i + 1);
        for (float& v : executor.value(parameters[i]).data) {
            v = rule.uniform_bound > 0 ? static_cast<float>((2 * random.unit() - 1) * rule.uniform_bound)
                                       : static_cast<float>(rule.constant);
        }
    }
    for (const NodeId state : graph.states()) {  // e.g. running variances, which start at 1
        const auto rule = model.init.find(state);
        if (rule != model.init.end() && !model.values.contains(state)) {
            std::fill(executor.value(state).data.begin(), executor.value(state).data.end(),
                      static_cast<float>(rule->second.constant));
        }
    }
}

// The outputs per sample a model needs for `data`: a logit per class, or (binary targets) one per label.
int model_outputs(const data::Dataset& data) {
    return data.binary ? static_cast<int>(data.labels_per_sample) : data.classes;
}

data::TargetLayout target_layout(const compiler::Step& step) {
    return step.target_kind == compiler::TargetKind::ClassIds || step.target_kind == compiler::TargetKind::Binary
               ? data::TargetLayout::ClassIds  // ids, or 0s and 1s, as exact floats
               : data::TargetLayout::OneHot;
}

std::string optimizer_name(const autodiff::OptimizerConfig& optimizer) {
    return std::holds_alternative<autodiff::SgdConfig>(optimizer) ? "sgd" : "adamw";
}

// The persistent leaves a checkpoint holds: parameters, then optimizer state.
std::vector<NodeId> persistent_leaves(const ir::Graph& graph) {
    std::vector<NodeId> leaves = graph.parameters();
    leaves.insert(leaves.end(), graph.states().begin(), graph.states().end());
    return leaves;
}

void require_same_run(const Checkpoint& c, const TrainOptions& o, const std::string& dir) {
    auto check = [&](const std::string& what, const std::string& saved, const std::string& now) {
        if (saved != now) {
            throw UsageError("the checkpoint in " + dir + " was made with " + what + " " + saved + "; this run has " +
                             what + " " + now + ": resume with the options of the original run");
        }
    };
    check("model", c.model, o.model);
    check("precision", c.precision, std::string(compiler::to_string(o.precision)));
    check("optimizer", c.optimizer, optimizer_name(o.optimizer));
    check("seed", std::to_string(c.seed), std::to_string(o.seed));
    check("batch", std::to_string(c.batch), std::to_string(o.batch));
}

// Before a run writes into its checkpoint directory: resuming needs a checkpoint there, and a fresh run replaces
// only a checkpoint of the same run (model, precision, optimizer, seed, batch) unless told to overwrite it.
void guard_checkpoint_directory(const TrainOptions& o) {
    const std::string& dir = o.checkpoint_dir;
    if (o.resume) {
        if (!has_checkpoint(dir)) {
            throw UsageError("nothing to resume: " + dir + " holds no checkpoint (train once with --checkpoint " + dir +
                             " first, or drop --resume)");
        }
        return;
    }
    if (!has_checkpoint(dir) || o.overwrite) {
        return;
    }
    Checkpoint c;
    try {
        c = read_checkpoint(dir);
    } catch (const Error& unreadable) {
        throw UsageError(dir + " holds a checkpoint this run would replace, and it cannot be read (" +
                         std::string(unreadable.what()) + "); pass --overwrite to replace it, or choose another "
                         "--checkpoint directory");
    }
    try {
        require_same_run(c, o, dir);
    } catch (const UsageError&) {
        throw UsageError(dir + " holds the checkpoint of another run (model " + c.model + ", precision " + c.precision +
                         ", optimizer " + c.optimizer + ", seed " + std::to_string(c.seed) + ", batch " +
                         std::to_string(c.batch) + ", step " + std::to_string(c.global_step) +
                         "); pass --overwrite to replace it, --resume to continue it, or choose another --checkpoint "
                         "directory");
    }
}

// What the checkpoint directory holds, for a message about a run that stopped.
std::string checkpoint_state(const TrainOptions& o, std::int64_t checkpointed_step, bool wrote) {
    if (o.checkpoint_dir.empty()) {
        return "no checkpoint was asked for";
    }
    if (!wrote) {
        return "this run wrote no checkpoint: the checkpoint in " + o.checkpoint_dir + " is unchanged" +
               (o.resume ? " (step " + std::to_string(checkpointed_step) + ")" : std::string());
    }
    return "the checkpoint in " + o.checkpoint_dir + " now holds step " + std::to_string(checkpointed_step) +
           ", written by this run before the divergence was seen";
}

std::uint64_t digest(const Executor& executor, const std::vector<NodeId>& parameters) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64
    for (const NodeId p : parameters) {
        const ir::Storage<float>& data = executor.value(p).data;
        const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
        for (std::size_t i = 0; i < data.size() * sizeof(float); ++i) {
            hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
        }
    }
    return hash;
}

struct Evaluation {
    double loss_sum = 0;  ///< softmax cross-entropy summed over the labels (binary: sigmoid cross-entropy)
    double correct = 0;   ///< labels whose arg-max logit is the label (binary: whose logit has the label's sign)
    double true_positive = 0, false_positive = 0, false_negative = 0;  ///< binary targets' outputs
};

// The binary targets' part of `sums` for the `count` samples of a batch: logits [batch, outputs].
void score_binary(const float* logits, const data::Dataset& test, std::span<const std::uint32_t> samples,
                  std::size_t first, std::size_t count, Evaluation& sums) {
    const std::size_t outputs = test.labels_per_sample;
    for (std::size_t s = 0; s < count; ++s) {
        const std::uint32_t* labels = test.labels.data() + static_cast<std::size_t>(samples[first + s]) * outputs;
        const float* row = logits + s * outputs;
        for (std::size_t o = 0; o < outputs; ++o) {
            const double x = row[o];
            const bool label = labels[o] != 0, predicted = x > 0;
            sums.loss_sum += std::max(x, 0.0) - x * (label ? 1.0 : 0.0) + std::log1p(std::exp(-std::abs(x)));
            sums.correct += predicted == label ? 1.0 : 0.0;
            sums.true_positive += predicted && label ? 1.0 : 0.0;
            sums.false_positive += predicted && !label ? 1.0 : 0.0;
            sums.false_negative += !predicted && label ? 1.0 : 0.0;
        }
    }
}

// Evaluates the test samples `samples` (indices into `test`).
Evaluation evaluate(Executor& executor, const compiler::Forward& model, const data::Dataset& test,
                    std::span<const std::uint32_t> samples, std::size_t batch) {
    const std::size_t rows = test.labels_per_sample;
    std::vector<float> targets(batch * rows * (test.binary ? 1 : static_cast<std::size_t>(test.classes)));
    Evaluation sums;
    const auto classes = static_cast<std::size_t>(test.classes);
    for (std::size_t b = 0; b < data::batch_count(samples.size(), batch); ++b) {
        const std::size_t count =
            data::fill_batch(test, samples, b, batch, executor.value(model.input).data, targets,
                             test.binary ? data::TargetLayout::ClassIds : data::TargetLayout::OneHot);
        executor.run();
        const ir::Storage<float>& logits = executor.value(model.logits).data;
        if (test.binary) {
            score_binary(logits.data(), test, samples, b * batch, count, sums);
            continue;
        }
        for (std::size_t i = 0; i < count * rows; ++i) {  // a row of logits per label
            const float* row = logits.data() + i * classes;
            const std::size_t label = test.labels[samples[b * batch + i / rows] * rows + i % rows];
            std::size_t best = 0;
            double max = row[0];
            for (std::size_t c = 1; c < classes; ++c) {
                if (row[c] > row[best]) {
                    best = c;
                }
                max = std::max(max, static_cast<double>(row[c]));
            }
            double sum = 0;
            for (std::size_t c = 0; c < classes; ++c) {
                sum += std::exp(row[c] - max);
            }
            sums.loss_sum += max + std::log(sum) - row[label];
            sums.correct += best == label ? 1.0 : 0.0;
        }
    }
    return sums;
}

// Rank 0's values of `leaves` to every rank, in one broadcast.
void broadcast_leaves(ProcessGroup& group, Executor& executor, const std::vector<NodeId>& leaves) {
    if (!group.distributed()) {
        return;
    }
    std::vector<float> packed;
    for (const NodeId leaf : leaves) {
        packed.insert(packed.end(), executor.value(leaf).data.begin(), executor.value(leaf).data.end());
    }
    group.broadcast(std::span(packed));
    std::size_t at = 0;
    for (const NodeId leaf : leaves) {
        ir::Storage<float>& values = executor.value(leaf).data;
        std::copy(packed.begin() + static_cast<std::ptrdiff_t>(at),
                  packed.begin() + static_cast<std::ptrdiff_t>(at + values.size()), values.begin());
        at += values.size();
    }
}

// The first `limit` samples of `full` (all of them for 0), copied into `storage` only when that is fewer.
const data::Dataset& first_samples(const data::Dataset& full, std::size_t limit, data::Dataset& storage) {
    if (limit == 0 || limit >= full.size()) {
        return full;
    }
    storage.name = full.name;
    storage.sample_shape = full.sample_shape;
    storage.classes = full.classes;
    storage.labels_per_sample = full.labels_per_sample;
    storage.tokens = full.tokens;
    storage.labels.assign(full.labels.begin(),
                          full.labels.begin() + static_cast<std::ptrdiff_t>(limit * full.labels_per_sample));
    storage.make = full.make;
    if (!full.make) {
        storage.samples.assign(full.samples.begin(),
                               full.samples.begin() + static_cast<std::ptrdiff_t>(
                                                          limit * static_cast<std::size_t>(full.sample_numel())));
    }
    return storage;
}

// Where training starts: epoch and batch within it (1-based, 0-based), steps taken, the epoch's loss so far.
struct Position {
    int epoch = 1;
    std::size_t batch = 0;
    std::int64_t global_step = 0;
    double loss_sum = 0;
};

// Loads the checkpoint in options.checkpoint_dir into the persistent `leaves` and returns its position.
Position resume(const TrainOptions& options, const ir::Graph& graph, const std::vector<NodeId>& leaves,
                Executor& executor) {
    const Checkpoint c = read_checkpoint(options.checkpoint_dir);
    require_same_run(c, options, options.checkpoint_dir);
    for (const NodeId leaf : leaves) {
        const std::string& name = graph.node(leaf).name;
        const auto found = std::find_if(c.tensors.begin(), c.tensors.end(),
                                        [&](const NamedTensor& t) { return t.name == name; });
        ir::Storage<float>& values = executor.value(leaf).data;
        if (found == c.tensors.end() || found->values.size() != values.size()) {
            throw IoError("the checkpoint in " + options.checkpoint_dir + " has no tensor '" + name + "' of " +
                          std::to_string(values.size()) + " elements; it belongs to another model");
        }
        std::copy(found->values.begin(), found->values.end(), values.begin());
    }
    return Position{c.epoch, static_cast<std::size_t>(c.batch_in_epoch), static_cast<std::int64_t>(c.global_step),
                    c.epoch_loss_sum};
}

// Every rank starts from rank 0's weights and position (the same as its own, unless resumed; so a hand-edited rank
// or a different library version cannot start a replica apart).
void agree_on_start(ProcessGroup& group, Executor& executor, const std::vector<NodeId>& leaves, Position& position) {
    if (!group.distributed()) {
        return;
    }
    broadcast_leaves(group, executor, leaves);
    std::vector<double> packed{static_cast<double>(position.epoch), static_cast<double>(position.batch),
                               static_cast<double>(position.global_step), position.loss_sum};
    group.broadcast(std::as_writable_bytes(std::span(packed)));
    position = Position{static_cast<int>(packed[0]), static_cast<std::size_t>(packed[1]),
                        static_cast<std::int64_t>(packed[2]), packed[3]};
}

struct TestScores {
    double loss = 0, accuracy = 0, iou = -1;  // iou: binary targets only
};

// The fewest training samples any rank holds (rank-local data).
std::size_t smallest_shard(ProcessGroup& group, std::size_t local_samples) {
    std::array<double, 1> samples{static_cast<double>(local_samples)};
    group.allreduce_min(std::span(samples));
    return static_cast<std::size_t>(samples[0]);
}

// The samples this rank feeds in `epoch`, in order, local batch after local batch: its slice of every global batch
// of the seeded epoch order, or (rank-local data) its own shard in an order seeded by the rank too.
std::vector<std::uint32_t> rank_order(const TrainOptions& options, const data::Dataset& train, int epoch,
                                      ProcessGroup& group) {
    const auto epoch_index = static_cast<std::uint64_t>(epoch - 1);
    if (options.rank_local_data) {
        const std::uint64_t seed = options.seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(group.rank());
        return data::epoch_order(seed, epoch_index, train.size());
    }
    std::vector<std::uint32_t> order = data::epoch_order(options.seed, epoch_index, train.size());
    return group.distributed() ? data::shard_order(order, options.batch, group.size(), group.rank()) : order;
}

// The model's forward at `batch` samples in inference form, for evaluation, with the training's numerics (its step
// input stays 0).
compiler::Forward evaluation_forward(const TrainOptions& options, const data::Dataset& test,
                                     const compiler::PrecisionPolicy& policy, std::size_t batch) {
    return compiler::build_forward(frontend::load_model(options.model, static_cast<std::int64_t>(batch),
                                                        test.sample_shape, model_outputs(test),
                                                        frontend::ImportMode::Inference),
                                   policy);
}

// The evaluation batch when none was asked for: the most samples, at most 500 and the test set's size, whose
// inference arena fits in `budget_bytes`, so that evaluating never takes much more memory than training (a network
// whose activations are large per sample, like the occupancy network's lifted voxels, evaluates in smaller batches).
// Halved from the top; at least 1.
std::size_t automatic_eval_batch(const TrainOptions& options, const data::Dataset& test,
                                 const compiler::PrecisionPolicy& policy, std::size_t budget_bytes) {
    std::size_t batch = std::max<std::size_t>(1, std::min<std::size_t>(kMaxEvalBatch, test.size()));
    while (batch > 1) {
        const compiler::Forward forward = evaluation_forward(options, test, policy, batch);
        const ExecutorOptions lowering{options.kernels, true, {forward.logits}};
        if (lower_cpu(forward.graph, lowering).memory.arena_bytes <= budget_bytes) {
            break;
        }
        batch /= 2;
    }
    return batch;
}

// The executor's hooks of a data-parallel run: each gradient handed to `sync` when computed and waited for before it
// is read; with the global rounding scope, the batch-sharded inputs and a max-abs agreed over the ranks. `sync` and
// `running` are set by the caller once the executor exists.
void add_data_parallel_hooks(ExecutorOptions& o, const TrainOptions& options, const compiler::Step& model,
                             const autodiff::TrainingGraph& step, ProcessGroup& group,
                             std::unique_ptr<GradientSync>& sync, Executor*& running) {
    if (options.rounding_scope == RoundingScope::Global) {
        o.batch_shard_inputs = {model.input, model.target};
        o.shard_index = static_cast<std::uint64_t>(group.rank());
        o.agree_max_abs = [&group](float local) {
            // A NaN on any rank must win, as it does in one process's max-abs; MPI_MAX does not order NaNs, so it
            // travels as a flag beside the value.
            const bool nan = std::isnan(local);
            std::array<double, 2> value_and_nan{nan ? 0.0 : static_cast<double>(local), nan ? 1.0 : 0.0};
            group.allreduce_max(std::span(value_and_nan));
            return value_and_nan[1] > 0 ? std::numeric_limits<float>::quiet_NaN()
                                        : static_cast<float>(value_and_nan[0]);
        };
    }
    o.sync_points = step.gradients;
    o.on_computed = [&sync, &running, &step](std::size_t k) {
        sync->ready(k, running->value(step.gradients[k]).data);
    };
    o.before_read = [&sync, &running, &step](std::size_t k) {
        sync->wait(k, running->value(step.gradients[k]).data);
    };
}

// The per-step scalar inputs of step `global_step`: the learning rate, the step number the roundings draw from, and
// AdamW's bias corrections.
void set_step_scalars(Executor& executor, const autodiff::TrainingGraph& step, NodeId step_input,
                      const TrainOptions& options, std::int64_t global_step) {
    executor.value(step.learning_rate).data[0] = static_cast<float>(options.learning_rate);
    if (step_input.valid()) {
        executor.value(step_input).data[0] = static_cast<float>(global_step);
    }
    if (const auto* adam = std::get_if<autodiff::AdamWConfig>(&options.optimizer)) {
        executor.value(step.bias_correction1).data[0] =
            static_cast<float>(autodiff::bias_correction(adam->beta1, global_step));
        executor.value(step.bias_correction2).data[0] =
            static_cast<float>(autodiff::bias_correction(adam->beta2, global_step));
    }
}

// Writes a run's checkpoints (rank 0 alone: every rank holds the same parameters and optimizer state), only ever from
// finite state, and remembers which step the directory holds for the message if the run diverges.
struct CheckpointWriter {
    const TrainOptions& options;
    const ir::Graph& graph;
    const std::vector<NodeId>& leaves;
    Executor& executor;
    bool root;
    std::int64_t checkpointed_step;  ///< the step the checkpoint in the directory holds
    bool wrote = false;              ///< whether this run wrote it

    std::string state() const { return checkpoint_state(options, checkpointed_step, wrote); }

    void save(int epoch, std::size_t next_batch, double loss_sum, std::int64_t global_step) {
        if (!root) {
            return;
        }
        for (const NodeId leaf : leaves) {
            const ir::Storage<float>& values = executor.value(leaf).data;
            if (!std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); })) {
                throw Error("training diverged: '" + graph.node(leaf).name + "' is no longer finite after step " +
                            std::to_string(global_step) + "; " + state() +
                            "; lower the learning rate (--lr) or change the optimizer");
            }
        }
        Checkpoint c{options.model,
                     std::string(compiler::to_string(options.precision)),
                     optimizer_name(options.optimizer),
                     options.seed,
                     options.batch,
                     epoch,
                     next_batch,
                     static_cast<std::uint64_t>(global_step),
                     loss_sum,
                     {}};
        for (const NodeId leaf : leaves) {
            c.tensors.push_back({graph.node(leaf).name, executor.value(leaf).data.to_vector()});
        }
        write_checkpoint(options.checkpoint_dir, c);
        checkpointed_step = global_step;
        wrote = true;
    }
};

// Runs one step (its scalars set) and returns the global batch's loss: the mean of the ranks' means.
double run_step(Executor& executor, const autodiff::TrainingGraph& step, GradientSync* sync, ProcessGroup& group,
                std::int64_t global_step) {
    if (sync != nullptr) {
        sync->begin_step(global_step);
    }
    executor.run();
    double batch_loss = executor.value(step.loss).data[0];
    if (group.distributed()) {
        group.allreduce_sum(std::span(&batch_loss, 1));
        batch_loss /= group.size();
    }
    return batch_loss;
}

// The evaluation side of a run: the model's forward in inference form (BatchNorm uses the running statistics, as
// model.eval() in PyTorch) at the evaluation batch, sharing the training graph's parameter order, and its executor.
// The batch is the one asked for, or the most that fits in the training step's arena (train_arena_bytes).
struct Evaluator {
    std::size_t batch;
    compiler::Forward model;
    ExecutorOptions options;
    Executor executor;

    Evaluator(const TrainOptions& train, const data::Dataset& test, const compiler::PrecisionPolicy& policy,
              std::size_t train_arena_bytes)
        : batch(train.eval_batch != 0
                    ? train.eval_batch
                    : automatic_eval_batch(train, test, policy, std::max(train_arena_bytes, kEvalArenaFloor))),
          model(evaluation_forward(train, test, policy, batch)),
          options{train.kernels, true, {model.logits}},
          executor(lower_cpu(model.graph, options), options) {}
};

// What a run reports about itself before it trains: its ranks, gradient buckets and parameter count.
TrainResult run_facts(const ir::Graph& step, const GradientSync* sync, int ranks) {
    TrainResult result;
    result.ranks = ranks;
    if (sync != nullptr) {
        result.gradient_buckets = sync->buckets().size();
        for (const BucketStats& b : sync->buckets()) {
            result.wire_bytes_per_step += b.wire_bytes_per_step;
        }
    }
    for (const NodeId p : step.parameters()) {
        result.parameter_count += static_cast<std::size_t>(step.type(p).shape.numel());
    }
    return result;
}

// The test loss and accuracy after an epoch: the evaluation graph takes the trained parameters and rank 0's
// BatchNorm statistics (as the checkpoint holds them); each rank evaluates its share of the test set and the sums
// are added up.
TestScores evaluate_shared(ProcessGroup& group, Executor& executor,
                                          const std::vector<NodeId>& train_params, Executor& eval_executor,
                                          const compiler::Forward& eval_model, const std::vector<NodeId>& model_states,
                                          const data::Dataset& test, std::size_t eval_batch) {
    const std::vector<NodeId>& eval_params = eval_model.graph.parameters();
    for (std::size_t i = 0; i < train_params.size(); ++i) {
        eval_executor.value(eval_params[i]).data = executor.value(train_params[i]).data;
    }
    broadcast_leaves(group, executor, model_states);
    const std::vector<NodeId>& eval_states = eval_model.graph.states();
    for (std::size_t i = 0; i < model_states.size(); ++i) {  // both graphs create them in file order
        eval_executor.value(eval_states[i]).data = executor.value(model_states[i]).data;
    }
    const auto ranks = static_cast<std::size_t>(group.size());
    const auto rank = static_cast<std::size_t>(group.rank());
    const std::size_t first = test.size() * rank / ranks, last = test.size() * (rank + 1) / ranks;
    std::vector<std::uint32_t> share(last - first);
    std::iota(share.begin(), share.end(), static_cast<std::uint32_t>(first));
    const Evaluation sums = evaluate(eval_executor, eval_model, test, share, eval_batch);
    std::vector<double> totals{sums.loss_sum, sums.correct, sums.true_positive, sums.false_positive,
                               sums.false_negative};
    group.allreduce_sum(std::span(totals));
    const auto count = static_cast<double>(test.labels.size());  // labels: samples, tokens, or binary outputs
    const double either = totals[2] + totals[3] + totals[4];
    return {totals[0] / count, totals[1] / count, test.binary ? (either > 0 ? totals[2] / either : 1.0) : -1.0};
}

// The gradient buckets' reductions of a step, wall time summed, mean over the steps after the first. A rank that
// arrives early also waits for the others, so each reduction's time is the minimum over the ranks (the last to
// arrive waited for no one); the first step also sets up connections and buffers.
double allreduce_seconds_per_step(const GradientSync& sync, ProcessGroup& group) {
    std::vector<double> seconds = sync.reduce_seconds();
    group.allreduce_min(seconds);
    const std::size_t buckets = sync.buckets().size();
    const std::size_t steps = seconds.size() / buckets;
    if (steps <= 1) {
        return 0;
    }
    return std::accumulate(seconds.begin() + static_cast<std::ptrdiff_t>(buckets), seconds.end(), 0.0) /
           static_cast<double>(steps - 1);
}

// After the last epoch: the weights' digest and whether every rank ends with the same, the gradient traffic's cost,
// and where the steps' time went.
void report_outcome(TrainResult& result, const Executor& executor, const std::vector<NodeId>& params,
                    const GradientSync* sync, ProcessGroup& group) {
    result.parameter_digest = digest(executor, params);
    for (const std::uint64_t other : group.allgather(result.parameter_digest)) {
        result.replicas_agree = result.replicas_agree && other == result.parameter_digest;
    }
    if (sync != nullptr) {
        result.exposed_comm_seconds = sync->exposed_seconds();
        result.allreduce_seconds_per_step = allreduce_seconds_per_step(*sync, group);
    }
    result.profile = executor.profile();
}

// The trained parameters and the model's states, by name, written back into the ONNX file's initializers.
void export_trained(const TrainOptions& options, const ir::Graph& graph, const std::vector<NodeId>& model_states,
                    Executor& executor) {
    std::map<std::string, std::vector<float>> trained;
    for (const NodeId p : graph.parameters()) {
        trained[graph.node(p).name] = executor.value(p).data.to_vector();
    }
    for (const NodeId s : model_states) {
        trained[graph.node(s).name] = executor.value(s).data.to_vector();
    }
    frontend::export_onnx(options.model, options.out_path, trained);
}

// The compiled plan a run executes (compiler/plan.h): `model`'s step at `batch` samples a rank, data parallel over
// `ranks`, as `dojo sim --strategy dp=N` compiles it; its graph is a copy of the step's, with the same node ids.
compiler::Plan data_parallel_plan(const compiler::Step& model, const std::string& name, std::int64_t batch, int ranks) {
    compiler::Strategy strategy;
    strategy.dp = ranks;
    return compiler::make_plan(
        [&model, batch](std::int64_t micro_batch) {
            DOJO_CHECK(micro_batch == batch) << "the plan's micro-batch " << micro_batch << " is not the rank's batch";
            return model;
        },
        name, batch * ranks, strategy);
}

}  // namespace

RoundingScope parse_rounding_scope(std::string_view name) {
    if (name == "global") {
        return RoundingScope::Global;
    }
    if (name == "rank") {
        return RoundingScope::Rank;
    }
    throw UsageError("unknown --rounding-scope '" + std::string(name) + "'; expected global or rank");
}

std::string_view to_string(RoundingScope scope) { return scope == RoundingScope::Global ? "global" : "rank"; }

ExecutorOptions training_executor_options(const compiler::Step& model, Kernels kernels, bool profile) {
    ExecutorOptions options{kernels, true, {model.logits}, profile};
    for (const autodiff::Assignment& a : model.training.updates) {
        options.keep.push_back(a.value);  // apply() reads them after run()
    }
    options.in_place_updates = model.training.updates;  // the trainer applies every update after each run
    return options;
}

compiler::Step training_step(const TrainOptions& options, const data::Dataset& train, std::int64_t batch) {
    frontend::Model model = frontend::load_model(options.model, batch, train.sample_shape, model_outputs(train));
    model.binary_target = train.binary;
    if (!options.out_path.empty() && !model.from_onnx) {
        throw UsageError("--out writes the trained model back into its ONNX file; " + options.model +
                         " is a catalog model (train an exported .onnx model to get one back)");
    }
    if (model.dense_target) {
        throw UsageError("model '" + options.model + "' is a denoising UNet: it trains on noisy latents against their "
                         "noise, and `dojo train` reads labelled image datasets only for now; `dojo sim " +
                         options.model + " --machine NAME` simulates it");
    }
    compiler::Step step = compiler::build_step(
        std::move(model), compiler::StepOptions{compiler::make_policy(options.precision, options.seed),
                                                options.optimizer});
    const ir::Shape& logits_shape = step.training.graph.type(step.logits).shape;
    if (train.binary) {  // logits [batch, outputs]: an output per label
        if (logits_shape[1] != static_cast<std::int64_t>(train.labels_per_sample)) {
            throw UsageError("model '" + options.model + "' has " + std::to_string(logits_shape[1]) +
                             " outputs per sample and the data " + std::to_string(train.labels_per_sample) +
                             " yes/no labels: build the model for the data's grid");
        }
        return step;
    }
    // A label per row of logits: one per sample (a classifier), or one per position (a language model's next token).
    const auto rows_per_sample = static_cast<std::size_t>(logits_shape[0] / batch);
    const bool token_labels = step.target_kind == compiler::TargetKind::ClassIds;
    if (token_labels != train.tokens || rows_per_sample != train.labels_per_sample ||
        logits_shape[1] != train.classes) {
        throw UsageError(
            "model '" + options.model + "' predicts " + std::to_string(rows_per_sample) + " label(s) of " +
            std::to_string(logits_shape[1]) + " classes per sample, and the data has " +
            std::to_string(train.labels_per_sample) + " of " + std::to_string(train.classes) + ": " +
            (token_labels ? "a language model trains on token data (--data text --data-dir FILE, byte-level: "
                            "build it with vocab=256 and seq=N; or --data synthetic)"
                          : "an image model trains on labelled images (--data fashion-mnist, idx, synthetic)"));
    }
    return step;
}

TrainResult train_classifier(const TrainOptions& options, const data::Dataset& train_full,
                             const data::Dataset& test_full, const std::function<void(const Progress&)>& progress) {
    const std::unique_ptr<ProcessGroup> one = ProcessGroup::single();
    return train_classifier(options, train_full, test_full, progress, *one);
}

TrainResult train_classifier(const TrainOptions& options, const data::Dataset& train_full,
                             const data::Dataset& test_full, const std::function<void(const Progress&)>& progress,
                             ProcessGroup& group) {
    data::Dataset train_storage;
    data::Dataset test_storage;
    const data::Dataset* train = &first_samples(train_full, options.train_limit, train_storage);
    const data::Dataset& test = first_samples(test_full, options.test_limit, test_storage);
    const int ranks = group.size();
    // Rank-local data: the global batch is drawn from all ranks' shards, each rank's share from its own.
    const std::size_t samples_for_batch =
        options.rank_local_data ? smallest_shard(group, train->size()) * static_cast<std::size_t>(ranks)
                                : train->size();
    validate(options, samples_for_batch);
    const bool root = group.rank() == 0;
    if (options.batch % static_cast<std::size_t>(ranks) != 0) {
        throw UsageError("the batch of " + std::to_string(options.batch) + " samples does not split evenly over " +
                         std::to_string(ranks) + " ranks; --batch is the global batch: use a multiple of " +
                         std::to_string(ranks));
    }
    const std::size_t local_batch = options.batch / static_cast<std::size_t>(ranks);
    const auto batch = static_cast<std::int64_t>(local_batch);

    // The training graph: the one step builder's (compiler/build_step.h), as `dojo sim` compiles it.
    if (!options.out_path.empty() && root) {
        require_output_path(options.out_path, "trained model (--out)");  // now, not after training
    }
    compiler::Step model = training_step(options, *train, batch);
    const compiler::Plan plan = data_parallel_plan(model, options.model, batch, ranks);
    const compiler::PrecisionPolicy policy = compiler::make_policy(options.precision, options.seed);
    const NodeId step_input = model.step_input;
    const NodeId target = model.target;
    // The model's own states (BatchNorm running statistics), by name: evaluation and export need them too.
    const std::vector<NodeId> model_states = model.model_states;
    const autodiff::TrainingGraph& step = plan.step;
    ExecutorOptions train_options = training_executor_options(model, options.kernels, options.profile);
    // Data parallel: every gradient is averaged over the ranks between its computation and the optimizer's read.
    std::unique_ptr<GradientSync> sync;
    Executor* running = nullptr;
    if (group.distributed()) {
        add_data_parallel_hooks(train_options, options, model, step, group, sync, running);
    }
    Executor executor(lower_cpu(plan, train_options), train_options);
    running = &executor;
    initialise(executor, step.graph, model, options.seed);
    if (group.distributed()) {
        // The buckets of the compiled plan (compiler/gradient_buckets.h): graph order is the order the executor
        // computes the gradients in, and the order the simulator assumes.
        const std::vector<std::size_t> sizes = compiler::gradient_sizes(step);
        const std::vector<std::size_t> ready_order = compiler::gradient_ready_order(step);
        DOJO_CHECK(std::is_sorted(ready_order.begin(), ready_order.end(), [&](std::size_t a, std::size_t b) {
            return executor.position(step.gradients[a]) < executor.position(step.gradients[b]);
        })) << "the executor computes the gradients out of graph order";
        sync = std::make_unique<GradientSync>(group, sizes, ready_order, options.sync);
    }

    Evaluator evaluator(options, test, policy, executor.bytes());
    const std::vector<NodeId>& train_params = step.graph.parameters();
    DOJO_CHECK(train_params.size() == evaluator.model.graph.parameters().size())
        << "train and eval graphs of " << options.model;
    DOJO_CHECK(model_states.size() == evaluator.model.graph.states().size())
        << "train and eval states of " << options.model;
    TrainResult result = run_facts(step.graph, sync.get(), ranks);

    const std::size_t batches = samples_for_batch / options.batch;
    const bool checkpointing = !options.checkpoint_dir.empty();
    if (checkpointing) {
        if (root) {
            guard_checkpoint_directory(options);
            require_writable_directory(options.checkpoint_dir);  // fail now, not after an epoch
        }
    } else if (options.resume) {
        throw UsageError("resuming needs the checkpoint directory (--checkpoint DIR)");
    }
    const std::vector<NodeId> leaves = persistent_leaves(step.graph);

    // Where to start: the beginning, or the checkpoint's position; every rank from rank 0's weights and position.
    Position position;
    if (options.resume && root) {
        position = resume(options, step.graph, leaves, executor);
    }
    agree_on_start(group, executor, leaves, position);
    result.resumed_from_step = static_cast<std::uint64_t>(position.global_step);
    const int first_epoch = position.epoch;
    const std::size_t first_batch = position.batch;
    std::int64_t global_step = position.global_step;
    const double resumed_loss_sum = position.loss_sum;
    CheckpointWriter checkpoints{options, step.graph, leaves, executor, root, global_step};
    const auto save = [&](int epoch, std::size_t next_batch, double loss_sum) {
        checkpoints.save(epoch, next_batch, loss_sum, global_step);
    };

    data::BatchPrefetcher prefetch(*train, local_batch, executor.value(model.input).data.size(),
                                   executor.value(target).data.size(), target_layout(model));
    const auto run_start = Clock::now();
    auto last_report = run_start;
    const std::int64_t first_step = global_step;
    const double total_steps = static_cast<double>(options.epochs) * static_cast<double>(batches) -
                               static_cast<double>(first_step);
    for (int epoch = first_epoch; epoch <= options.epochs; ++epoch) {
        prefetch.set_order(rank_order(options, *train, epoch, group));
        const auto epoch_start = Clock::now();
        const std::size_t start = epoch == first_epoch ? first_batch : 0;
        double loss_sum = epoch == first_epoch ? resumed_loss_sum : 0;
        std::vector<double> step_seconds;
        step_seconds.reserve(batches - std::min(start, batches));
        if (start < batches) {
            prefetch.request(start);
        }
        for (std::size_t b = start; b < batches; ++b) {
            const auto step_start = Clock::now();
            prefetch.take(executor.value(model.input).data, executor.value(target).data);
            if (b + 1 < batches) {
                prefetch.request(b + 1);  // filled while this step runs
            }
            ++global_step;
            set_step_scalars(executor, step, step_input, options, global_step);
            const double batch_loss = run_step(executor, step, sync.get(), group, global_step);
            if (!std::isfinite(batch_loss)) {
                throw Error("training diverged: the loss became " + std::to_string(batch_loss) + " at epoch " +
                            std::to_string(epoch) + ", batch " + std::to_string(b + 1) +
                            "; lower the learning rate (--lr) or change the optimizer" +
                            (checkpointing ? "; " + checkpoints.state() : std::string()));
            }
            executor.apply(step.updates);
            step_seconds.push_back(std::chrono::duration<double>(Clock::now() - step_start).count());
            loss_sum += batch_loss;
            if (checkpointing && options.checkpoint_every > 0 &&
                global_step % static_cast<std::int64_t>(options.checkpoint_every) == 0) {
                save(epoch, b + 1, loss_sum);
            }
            const auto now = Clock::now();
            if (progress && root && (now - last_report > std::chrono::milliseconds(100) || b + 1 == batches)) {
                last_report = now;
                const double elapsed = std::chrono::duration<double>(now - run_start).count();
                const double done = static_cast<double>(global_step - first_step);
                const double epoch_elapsed = std::chrono::duration<double>(now - epoch_start).count();
                progress(Progress{epoch, b + 1, batches, loss_sum / static_cast<double>(b + 1),
                                  static_cast<double>((b + 1 - start) * options.batch) / epoch_elapsed,
                                  elapsed / done * (total_steps - done)});
            }
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        const TestScores scores = evaluate_shared(group, executor, train_params, evaluator.executor,
                                                  evaluator.model, model_states, test, evaluator.batch);
        result.epochs.push_back(EpochResult{epoch, loss_sum / static_cast<double>(batches), scores.loss,
                                            scores.accuracy, scores.iou, seconds,
                                            static_cast<double>((batches - start) * options.batch) / seconds,
                                            std::move(step_seconds)});
        if (checkpointing) {
            save(epoch + 1, 0, 0.0);
        }
    }
    report_outcome(result, executor, train_params, sync.get(), group);
    result.executor_bytes = executor.bytes() + evaluator.executor.bytes();  // the two arenas
    if (!options.out_path.empty() && root) {
        export_trained(options, step.graph, model_states, executor);
    }
    return result;
}

}  // namespace dojo::runtime
