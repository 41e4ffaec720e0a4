/** \file
 * Training a catalog classifier on a labelled dataset: the loop that binds batches, runs the training graph,
 * applies the optimizer's assignments and evaluates on held-out data after every epoch.
 *
 * Determinism: parameters are initialised from the seed (SplitMix64 per parameter), the data order of each epoch
 * is epoch_order(seed, epoch), stochastic rounding is keyed by the seed and the step number, and the kernels are
 * deterministic: the same options and thread count give the same weights, bit for bit (with reference kernels, for
 * any thread count).
 * Precision: the catalog model passes through the precision policy before autodiff, so bf16/cfp8 rounding applies to
 * the forward products and the gradients of the backward ones; evaluation runs the same forward numerics.
 * Batches: training uses whole batches only (the last partial batch of an epoch is dropped, since the graph has a
 * static batch size); evaluation covers every test sample (a partial last batch is padded and its padding ignored).
 *
 * Data parallel (a ProcessGroup of N > 1 ranks, runtime/process_group.h): `batch` is the global batch; every rank
 * builds the step for batch / N samples, trains on its shard of each global batch (data::shard_order) and
 * averages the gradients over the ranks inside the step (runtime/gradient_sync.h), so that every rank applies the
 * same update: the result is one process's with the global batch, up to summation order (BatchNorm normalizes over
 * each rank's samples, as PyTorch's DistributedDataParallel does without SyncBatchNorm). cfp8 rounds every
 * batch-derived tensor as one process would by default (RoundingScope::Global: the ranks agree on each tensor's
 * max-abs, one scalar all-reduce per rounded tensor per step, and draw at global element indices); with
 * RoundingScope::Rank each rank rounds its own shard with no extra messages. Evaluation rounds each rank's test
 * batches on their own (its batches differ from one process's anyway). Rank 0 starts every rank from its weights,
 * reports progress, reads and writes checkpoints and the output model; the ranks evaluate a share of the test set
 * each and add up.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/compiler/build_step.h"
#include "dojo/compiler/precision_policy.h"
#include "dojo/data/dataset.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/gradient_sync.h"
#include "dojo/runtime/process_group.h"

namespace dojo::runtime {

/// Data parallel: what a batch-derived tensor's cfp8 bias and stochastic draws see (see the file comment).
enum class RoundingScope : std::uint8_t { Global, Rank };
/// "global", "rank"; throws UsageError otherwise.
RoundingScope parse_rounding_scope(std::string_view name);
std::string_view to_string(RoundingScope scope);

struct TrainOptions {
    std::string model = "mlp";  ///< a catalog spec or an .onnx file (frontend/model.h)
    compiler::Precision precision = compiler::Precision::Fp32;  ///< compiler/precision_policy.h
    Kernels kernels = Kernels::Fast;  ///< runtime/executor.h
    std::size_t batch = 64;
    int epochs = 1;
    autodiff::OptimizerConfig optimizer = autodiff::SgdConfig{};
    double learning_rate = 0.05;
    std::uint64_t seed = 0;
    /// samples per evaluation step; 0: the most (up to 500) whose arena fits in the training step's (or 256 MiB)
    std::size_t eval_batch = 0;
    std::size_t train_limit = 0;  ///< use only the first N training samples (0: all); for quick runs
    std::size_t test_limit = 0;   ///< evaluate on the first N test samples only (0: all)
    std::string checkpoint_dir;   ///< write checkpoints here (runtime/checkpoint.h); empty: none
    std::size_t checkpoint_every = 0;  ///< also checkpoint every N steps (0: only at the end of each epoch)
    bool resume = false;          ///< continue from the checkpoint in checkpoint_dir
    bool overwrite = false;       ///< a fresh run may replace another run's checkpoint in checkpoint_dir
    std::string out_path;         ///< ONNX models: write the trained model here (frontend/onnx.h export_onnx)
    bool profile = false;         ///< time the training steps by op kind (TrainResult::profile)
    GradientSyncOptions sync;     ///< data parallel: how gradients are averaged over the ranks
    RoundingScope rounding_scope = RoundingScope::Global;  ///< data parallel: how cfp8 rounds the batch's tensors
    /// Data parallel: each rank's training set is its own shard of the data (a clip store's training clips split by
    /// rank, each rank decoding only its own). Each rank then draws its local batches from its own samples in its
    /// own seeded order, and an epoch has as many steps as the smallest shard fills. Without it every rank holds all
    /// the training data and takes its slice of each global batch (the same steps as one process). Either way every
    /// rank holds the whole test set and scores its share of it.
    bool rank_local_data = false;
};

struct EpochResult {
    int epoch = 0;               ///< 1-based
    double train_loss = 0;       ///< mean over the epoch's batches
    double test_loss = 0;        ///< mean softmax cross-entropy over the test set
    double test_accuracy = 0;    ///< fraction of test samples whose arg-max logit is the label (binary targets:
                                 ///< of test outputs whose sign is the label's)
    double test_iou = -1;        ///< binary targets: |predicted 1s and labelled 1s| / |either| over the test set; -1
                                 ///< otherwise
    double train_seconds = 0;
    double samples_per_second = 0;
    /// Wall time of each of the epoch's steps run by this process (batch in, forward, backward, update): a rate
    /// taken from their median ignores cold first steps and the odd interrupted one.
    std::vector<double> step_seconds;
};

struct Progress {
    int epoch = 0;
    std::size_t batch = 0;    ///< batches done in this epoch
    std::size_t batches = 0;  ///< batches per epoch
    double loss = 0;          ///< mean over the epoch so far
    double samples_per_second = 0;
    double seconds_left = 0;  ///< estimate for the whole run
};

struct TrainResult {
    std::vector<EpochResult> epochs;  ///< the epochs finished by this run (a resumed run omits earlier ones)
    std::size_t parameter_count = 0;
    std::size_t executor_bytes = 0;  ///< storage the training and evaluation executors hold (runtime/executor.h)
    std::uint64_t parameter_digest = 0;  ///< FNV-1a 64 of the final parameters' bytes: equal digests, equal weights
    std::uint64_t resumed_from_step = 0;  ///< 0 unless resumed
    std::vector<OpProfile> profile;       ///< with TrainOptions::profile: the training steps' time by op kind
    // Data parallel (zero / empty on one rank).
    int ranks = 1;
    std::size_t gradient_buckets = 0;
    std::size_t wire_bytes_per_step = 0;   ///< gradient bytes this rank sends per step
    double exposed_comm_seconds = 0;       ///< time the steps waited for gradients (not hidden by the backward pass)
    double allreduce_seconds_per_step = 0; ///< the buckets' reductions of a step, wall time summed, mean over the
                                           ///< steps after the first (what `dojo sim` predicts for the plan)
    bool replicas_agree = true;            ///< every rank ended with the same parameters (digests compared)
};

/// The training step train_classifier runs for `options` on data like `train`, `batch` samples per rank: the one
/// step builder's (compiler/build_step.h), after checking that the model's output fits the data's labels
/// (UsageError otherwise). `dojo sim` compiles the same step: the same-graph test compares the two.
compiler::Step training_step(const TrainOptions& options, const data::Dataset& train, std::int64_t batch);

/// How train_classifier lowers `model`'s training step for this CPU (exec_plan.h): the logits and the updated
/// values kept (apply() and the loss read them after run()); data-parallel training adds its sync points to these.
ExecutorOptions training_executor_options(const compiler::Step& model, Kernels kernels, bool profile = false);

/// Trains `options.model` on `train`, evaluating on `test` after each epoch; `progress` (may be empty) is called
/// about every 100 ms. Throws UsageError for invalid options (batch 0, no epochs, learning rate <= 0, a batch larger
/// than the data, resuming a checkpoint made with another model, precision, optimizer, seed or batch, resuming from
/// a directory without a checkpoint, a fresh run into a directory holding another run's checkpoint without
/// `overwrite`, an --out path that cannot be written), IoError for an unwritable checkpoint directory or a
/// damaged checkpoint, and dojo::Error if the loss or the parameters stop being finite (naming the epoch and batch,
/// and the step the checkpoint holds: checkpoints are written from finite state only).
TrainResult train_classifier(const TrainOptions& options, const data::Dataset& train, const data::Dataset& test,
                             const std::function<void(const Progress&)>& progress);

/// The same on every rank of `group` (data parallel; see above). Also throws UsageError if the ranks do not divide
/// the batch. `progress` is called on rank 0 only.
TrainResult train_classifier(const TrainOptions& options, const data::Dataset& train, const data::Dataset& test,
                             const std::function<void(const Progress&)>& progress, ProcessGroup& group);

}  // namespace dojo::runtime
