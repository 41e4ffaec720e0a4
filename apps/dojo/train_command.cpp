// `dojo train`: parse, load, train, print.
#include "train_command.h"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "dojo/compiler/gradient_buckets.h"
#include "dojo/data/dataset.h"
#include "dojo/data/fleet/pipeline.h"
#include "dojo/frontend/catalog.h"
#include "dojo/frontend/model.h"
#include "dojo/frontend/onnx.h"
#include "dojo/runtime/process_group.h"
#include "dojo/runtime/trainer.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"

namespace dojo::cli {
namespace {

using nlohmann::json;

struct TrainCommandOptions {
    std::string model;
    std::string data = "fashion-mnist";
    std::string data_dir = data::kFashionMnistDir;
    bool strict = false;  // clips: a damaged clip is an error, not skipped
    std::string optimizer = "sgd";
    std::string precision = "fp32";
    int epochs = 1;
    std::int64_t batch = 64;
    std::optional<double> lr;            // unset: the optimizer's default
    double momentum = 0.9;
    std::optional<double> weight_decay;  // unset: the optimizer's default
    std::uint64_t seed = 0;
    std::int64_t train_limit = 0;
    std::int64_t test_limit = 0;
    std::vector<std::int64_t> sample_shape{1, 28, 28};
    std::int64_t eval_batch = 0;  // automatic
    int threads = 0;
    std::string kernels = "fast";
    std::string checkpoint_dir;
    std::string out_path;
    std::optional<std::int64_t> checkpoint_every;
    bool resume = false;
    bool overwrite = false;
    bool json_output = false;
    bool profile = false;
    std::string metrics_path;  // --metrics: progress as JSON lines, for a service or a plot
    // Data parallel (mpirun -np N dojo train ...)
    std::string grad_compression = "none";
    std::string reduce_order = "any";
    std::string rounding_scope = "global";
    double bucket_mib = 8;
    double timeout_s = 300;
};

std::string duration(double seconds) {
    const auto total = static_cast<long>(std::lround(seconds));
    return fmt::format("{:02}:{:02}", total / 60, total % 60);
}

// A one-line progress bar on stderr: redrawn in place on a terminal, printed at quarter-epoch steps otherwise.
class ProgressPrinter {
public:
    explicit ProgressPrinter(int epochs) : epochs_(epochs), tty_(::isatty(STDERR_FILENO) == 1) {}

    void operator()(const runtime::Progress& p) {
        const double fraction = static_cast<double>(p.batch) / static_cast<double>(p.batches);
        const int quarter = static_cast<int>(fraction * 4);
        if (!tty_ && (quarter == last_quarter_ && p.epoch == last_epoch_)) {
            return;
        }
        last_quarter_ = quarter;
        last_epoch_ = p.epoch;
        constexpr int kWidth = 24;
        const int filled = static_cast<int>(fraction * kWidth);
        const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                                std::string(static_cast<std::size_t>(kWidth - filled), '.');
        std::cerr << (tty_ ? "\r" : "")
                  << fmt::format("epoch {}/{} [{}] {}/{} batches  loss {:.4f}  {:.0f} samples/s  ETA {}", p.epoch,
                                 epochs_, bar, p.batch, p.batches, p.loss, p.samples_per_second,
                                 duration(p.seconds_left))
                  << (tty_ ? "\033[K" : "\n") << std::flush;
        if (tty_ && p.batch == p.batches) {
            std::cerr << "\n";
        }
    }

private:
    int epochs_;
    bool tty_;
    int last_quarter_ = -1;
    int last_epoch_ = 0;
};

autodiff::OptimizerConfig optimizer_config(const TrainCommandOptions& o) {
    if (o.weight_decay && !(*o.weight_decay >= 0)) {
        throw UsageError(fmt::format("--weight-decay must be >= 0, got {}", *o.weight_decay));
    }
    if (o.optimizer == "sgd") {
        return autodiff::SgdConfig{o.momentum, o.weight_decay.value_or(0.0)};
    }
    if (o.optimizer == "adamw") {
        autodiff::AdamWConfig config;
        config.weight_decay = o.weight_decay.value_or(config.weight_decay);
        return config;
    }
    throw UsageError("unknown optimizer '" + o.optimizer + "'; expected sgd or adamw");
}

// A catalog language model's sequence length and vocabulary; none for other models (ONNX files included).
std::optional<frontend::SampleSpec> language_model_sample(const std::string& model) {
    if (model.ends_with(".onnx")) {
        return std::nullopt;
    }
    frontend::SampleSpec sample = frontend::catalog_sample(model);
    return sample.token_ids ? std::optional(std::move(sample)) : std::nullopt;
}

// A fleet clip store's train and held-out scenes, labelled by scene kind; names every clip skipped as damaged.
// On several MPI ranks, each rank decodes only its own training clips (clip i goes to rank i mod ranks), and all of
// the held-out ones (each rank scores its share of them).
std::pair<data::Dataset, data::Dataset> load_clips(const std::string& spec, bool strict, int rank, int ranks) {
    data::fleet::ClipSource source = data::fleet::parse_clip_source(spec);
    source.sampling.strict = source.sampling.strict || strict;
    data::fleet::ClipSampling own_clips = source.sampling;
    own_clips.rank = rank;
    own_clips.ranks = ranks;
    std::vector<data::fleet::SkippedClip> skipped;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    const auto progress = [tty](const char* split) {
        return [tty, split, last = std::size_t{0}](std::size_t done, std::size_t total) mutable {
            const std::size_t quarter = done * 4 / std::max<std::size_t>(total, 1);
            if (tty || quarter != last || done == total) {
                // One write a line: other MPI ranks' lines share this stream and must not land inside it.
                std::cerr << fmt::format("{}clips: decoding {} samples {}/{}{}{}", tty ? "\r" : "", split, done, total,
                                         tty ? "\033[K" : "\n", tty && done == total ? "\n" : "")
                          << std::flush;
                last = quarter;
            }
        };
    };
    std::pair<data::Dataset, data::Dataset> splits{
        data::fleet::load_clip_dataset(source.dir, own_clips, "train", skipped, progress("train")),
        data::fleet::load_clip_dataset(source.dir, source.sampling, "test", skipped, progress("held-out"))};
    std::cerr << fmt::format("clips: {} training and {} held-out samples of shape {} from {}{}\n",
                             splits.first.size(), splits.second.size(), splits.first.sample_shape.to_string(),
                             source.dir, ranks > 1 ? fmt::format(" (rank {} of {}: its own training clips)", rank, ranks) : "");
    if (!skipped.empty()) {
        std::cerr << fmt::format("clips: {} clip{} skipped as damaged (strict=1 makes this an error):\n", skipped.size(),
                                 skipped.size() == 1 ? "" : "s");
        for (const data::fleet::SkippedClip& s : skipped) {
            std::cerr << fmt::format("  {} {}{}: {}\n", s.shard, s.clip, s.camera.empty() ? "" : " camera " + s.camera,
                                     s.reason);
        }
    }
    return splits;
}

// The train and test splits that --data (and --data-dir) name.
// --train-limit and --test-limit as loaders take them: the first N samples, 0 for all (a negative limit is refused
// later, by name, with the other options).
std::size_t first_train(const TrainCommandOptions& o) {
    return o.train_limit > 0 ? static_cast<std::size_t>(o.train_limit) : 0;
}
std::size_t first_test(const TrainCommandOptions& o) {
    return o.test_limit > 0 ? static_cast<std::size_t>(o.test_limit) : 0;
}

std::pair<data::Dataset, data::Dataset> load_data(const TrainCommandOptions& o, const runtime::ProcessGroup& group) {
    const std::optional<frontend::SampleSpec> language = language_model_sample(o.model);
    if (o.data == "text") {
        if (!language || !language->causal) {
            throw UsageError("--data text trains a causal language model on a text file's bytes: use a catalog gpt "
                             "with vocab=256, e.g. gpt:layers=2,hidden=64,heads=4,seq=64,vocab=256");
        }
        if (o.data_dir == data::kFashionMnistDir) {
            throw UsageError("--data text needs --data-dir FILE, the text file to train on (docs/training.md)");
        }
        if (language->classes != 256) {
            throw UsageError("--data text reads bytes, 256 token ids, and " + o.model + " has a vocabulary of " +
                             std::to_string(language->classes) + ": build it with vocab=256");
        }
        const std::int64_t sequence = language->sample_shape[0];
        return {data::load_text(o.data_dir, sequence, data::Split::Train),
                data::load_text(o.data_dir, sequence, data::Split::Test)};
    }
    if (o.data == "synthetic" && language) {  // random token ids: for timing, not learnable
        const std::int64_t sequence = language->sample_shape[0];
        return {data::make_synthetic_tokens(o.train_limit > 0 ? static_cast<std::size_t>(o.train_limit) : 1000, sequence, language->classes,
                                            o.seed),
                data::make_synthetic_tokens(o.test_limit > 0 ? static_cast<std::size_t>(o.test_limit) : 100, sequence, language->classes,
                                            o.seed + 1)};
    }
    if (o.data == "fashion-mnist") {
        return {data::load_fashion_mnist(o.data_dir, data::Split::Train, first_train(o)),
                data::load_fashion_mnist(o.data_dir, data::Split::Test, first_test(o))};
    }
    if (o.data == "idx") {
        if (o.data_dir == data::kFashionMnistDir) {
            throw UsageError("--data idx needs --data-dir DIR, the directory of your IDX files (docs/training.md)");
        }
        std::pair<data::Dataset, data::Dataset> splits{
            data::load_idx_dataset(o.data_dir, data::Split::Train, first_train(o)),
            data::load_idx_dataset(o.data_dir, data::Split::Test, first_test(o))};
        // Classes come from the largest label; a split may lack the last classes, so both take the larger count.
        const int classes = std::max(splits.first.classes, splits.second.classes);
        splits.first.classes = splits.second.classes = classes;
        return splits;
    }
    if (o.data == "synthetic") {  // random values for speed measurements; only as many samples as the run uses
        const ir::Shape shape(o.sample_shape);
        if (o.sample_shape.empty() || std::any_of(o.sample_shape.begin(), o.sample_shape.end(),
                                                  [](std::int64_t d) { return d < 1; })) {
            throw UsageError("--sample-shape needs positive dimensions, e.g. 3,224,224");
        }
        return {data::make_synthetic(o.train_limit > 0 ? static_cast<std::size_t>(o.train_limit) : 60000, shape, 10,
                                     o.seed),
                data::make_synthetic(o.test_limit > 0 ? static_cast<std::size_t>(o.test_limit) : 10000, shape, 10,
                                     o.seed + 1)};
    }
    if (o.data.starts_with("clips:")) {
        return load_clips(o.data.substr(6), o.strict, group.rank(), group.size());
    }
    throw UsageError("unknown dataset '" + o.data +
                     "'; available: fashion-mnist, idx (with --data-dir), synthetic, text (with --data-dir FILE), "
                     "clips:DIR[,options] (a fleet clip store, docs/data.md)");
}

// A count option read as a signed number, so that "-5" is named as negative instead of wrapping around.
std::size_t size_option(const char* name, std::int64_t value, std::int64_t least) {
    if (value < least) {
        throw UsageError(fmt::format("{} must be at least {}, got {}", name, least, value));
    }
    return static_cast<std::size_t>(value);
}

// The command's options as the trainer takes them, each checked (UsageError naming the option); sets the OpenMP
// threads as --threads says (ranks on one host share its cores).
runtime::TrainOptions train_options_from(const TrainCommandOptions& o, const runtime::ProcessGroup& group) {
    runtime::TrainOptions options;
    constexpr int kMaxThreads = 1024;  // OpenMP's thread stacks alone would exhaust memory far above it
    if (o.threads < 0 || o.threads > kMaxThreads) {
        throw UsageError("--threads must be from 0 (one per core) to " + std::to_string(kMaxThreads) + ", got " +
                         std::to_string(o.threads));
    }
    if (o.threads > 0) {
        omp_set_num_threads(o.threads);
    } else if (group.local_size() > 1) {  // ranks on one host share its cores
        omp_set_num_threads(std::max(1, omp_get_num_procs() / group.local_size()));
    }
    options.sync.wire = runtime::parse_wire_format(o.grad_compression);
    options.sync.order = runtime::parse_reduce_order(o.reduce_order);
    options.rounding_scope = runtime::parse_rounding_scope(o.rounding_scope);
    options.sync.bucket_bytes = compiler::bucket_bytes_from_mib(o.bucket_mib);
    options.sync.seed = o.seed;
    options.model = o.model;
    if (o.kernels != "fast" && o.kernels != "reference") {
        throw UsageError("unknown --kernels '" + o.kernels + "'; expected fast or reference");
    }
    options.kernels = o.kernels == "fast" ? runtime::Kernels::Fast : runtime::Kernels::Reference;
    options.precision = compiler::parse_precision(o.precision);
    options.epochs = o.epochs;
    options.optimizer = optimizer_config(o);
    options.learning_rate = o.lr.value_or(o.optimizer == "adamw" ? 1e-3 : 0.05);
    if (!(options.learning_rate > 0)) {
        throw UsageError(fmt::format("--lr must be positive, got {}", options.learning_rate));
    }
    if (o.checkpoint_every && o.checkpoint_dir.empty()) {
        throw UsageError("--checkpoint-every needs --checkpoint DIR (where to write the checkpoints)");
    }
    if (!o.metrics_path.empty()) {
        require_output_path(o.metrics_path, "metrics (--metrics)");  // now, not after loading the data
    }
    options.batch = size_option("--batch", o.batch, 1);
    options.eval_batch = size_option("--eval-batch", o.eval_batch, 0);
    options.train_limit = size_option("--train-limit", o.train_limit, 0);
    options.test_limit = size_option("--test-limit", o.test_limit, 0);
    options.checkpoint_every = o.checkpoint_every ? size_option("--checkpoint-every", *o.checkpoint_every, 1) : 0;
    options.seed = o.seed;
    options.checkpoint_dir = o.checkpoint_dir;
    options.resume = o.resume;
    options.overwrite = o.overwrite;
    options.out_path = o.out_path;
    options.profile = o.profile;
    return options;
}

void train_and_report(const TrainCommandOptions& o, runtime::ProcessGroup& group) {
    runtime::TrainOptions options = train_options_from(o, group);
    const auto [train, test] = load_data(o, group);
    options.rank_local_data = group.distributed() && o.data.starts_with("clips:");
    if (!(train.sample_shape == test.sample_shape) || train.classes < 1) {
        throw UsageError("the training and test data differ in sample shape (" + train.sample_shape.to_string() +
                         " vs " + test.sample_shape.to_string() + ") or have no labels");
    }
    ProgressPrinter printer(o.epochs);
    std::ofstream metrics;
    if (!o.metrics_path.empty() && group.rank() == 0) {
        metrics.open(o.metrics_path, std::ios::app);
        if (!metrics) {
            throw IoError("cannot write the metrics file " + o.metrics_path + " (--metrics)");
        }
    }
    const auto report = [&](const runtime::Progress& p) {
        printer(p);
        if (metrics.is_open()) {  // one line a report (about every 100 ms): epoch, batches, mean loss so far
            metrics << nlohmann::json{{"epoch", p.epoch}, {"batch", p.batch}, {"batches", p.batches},
                                      {"loss", p.loss}, {"samples_per_second", p.samples_per_second}}
                           .dump()
                    << "\n" << std::flush;
        }
    };
    const runtime::TrainResult result = runtime::train_classifier(options, train, test, report, group);
    if (group.rank() != 0) {
        return;  // rank 0 reports for the job
    }
    // A compressed wire always takes the fixed-order path (runtime/gradient_sync.h).
    const std::string reduce_order = o.grad_compression != "none" ? "fixed" : o.reduce_order;
    if (!result.replicas_agree) {
        std::cerr << "dojo: warning: the ranks ended with different parameters (a reduction gave ranks different "
                     "bits); rank 0's are reported and saved\n";
    }

    json profile = json::array();
    double profiled_seconds = 0;
    for (const runtime::OpProfile& p : result.profile) {
        profile.push_back({{"op", p.op},
                           {"kernel", p.kernel},
                           {"nodes", p.nodes},
                           {"runs", p.runs},
                           {"seconds", p.seconds}});
        profiled_seconds += p.seconds;
    }
    if (o.json_output) {
        json epochs = json::array();
        for (const runtime::EpochResult& e : result.epochs) {
            json epoch{{"epoch", e.epoch},
                       {"train_loss", e.train_loss},
                       {"test_loss", e.test_loss},
                       {"test_accuracy", e.test_accuracy},
                       {"train_seconds", e.train_seconds},
                       {"samples_per_second", e.samples_per_second},
                       {"step_seconds", e.step_seconds}};
            if (e.test_iou >= 0) {
                epoch["test_iou"] = e.test_iou;
            }
            epochs.push_back(std::move(epoch));
        }
        std::cout << json{{"model", options.model},
                          {"data", o.data},
                          {"precision", o.precision},
                          {"optimizer", o.optimizer},
                          {"learning_rate", options.learning_rate},
                          {"batch", options.batch},
                          {"seed", options.seed},
                          {"threads", omp_get_max_threads()},
                          {"kernels", o.kernels},
                          {"parameters", result.parameter_count},
                          {"executor_bytes", result.executor_bytes},
                          {"parameter_digest", fmt::format("{:016x}", result.parameter_digest)},
                          {"resumed_from_step", result.resumed_from_step},
                          {"ranks", result.ranks},
                          {"data_parallel",
                           {{"gradient_compression", o.grad_compression},
                            {"reduce_order", reduce_order},
                            {"rounding_scope", runtime::to_string(options.rounding_scope)},
                            {"gradient_buckets", result.gradient_buckets},
                            {"wire_bytes_per_step", result.wire_bytes_per_step},
                            {"exposed_comm_seconds", result.exposed_comm_seconds},
                            {"allreduce_seconds_per_step", result.allreduce_seconds_per_step},
                            {"replicas_agree", result.replicas_agree}}},
                          {"epochs", epochs},
                          {"profile", profile}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::cout << fmt::format("model {} ({} parameters), {}, {} on {} samples, batch {}, lr {}, seed {}\n",
                             options.model, result.parameter_count, o.precision, o.optimizer,
                             o.train_limit > 0 ? std::min(options.train_limit, train.size()) : train.size(),
                             options.batch, options.learning_rate, options.seed);
    if (result.ranks > 1) {
        std::cout << fmt::format("data parallel: {} ranks x {} samples, {} gradient bucket{} ({:.2f} MB sent per "
                                 "rank and step, {} order, compression {}; all-reduce {:.3f} ms per step), {:.2f} s waiting for "
                                 "gradients\n",
                                 result.ranks, options.batch / static_cast<std::size_t>(result.ranks),
                                 result.gradient_buckets, result.gradient_buckets == 1 ? "" : "s",
                                 static_cast<double>(result.wire_bytes_per_step) / 1e6, reduce_order,
                                 o.grad_compression, result.allreduce_seconds_per_step * 1e3,
                                 result.exposed_comm_seconds);
    }
    if (result.resumed_from_step > 0) {
        std::cout << fmt::format("resumed from the checkpoint in {} at step {}\n", o.checkpoint_dir,
                                 result.resumed_from_step);
    }
    for (const runtime::EpochResult& e : result.epochs) {
        std::cout << fmt::format("epoch {}  train loss {:.4f}  test loss {:.4f}  test accuracy {:.4f}{}  {:.1f} s  "
                                 "{:.0f} samples/s\n",
                                 e.epoch, e.train_loss, e.test_loss, e.test_accuracy,
                                 e.test_iou >= 0 ? fmt::format("  test IoU {:.4f}", e.test_iou) : std::string(),
                                 e.train_seconds, e.samples_per_second);
    }
    std::cout << fmt::format("parameter digest {:016x}\n", result.parameter_digest);
    if (!result.profile.empty()) {
        std::cout << fmt::format("\ntraining steps by op kind ({:.2f} s in all):\n", profiled_seconds);
        std::cout << fmt::format("  {:<20} {:<9} {:>6} {:>10} {:>7}\n", "op", "kernel", "nodes", "seconds", "share");
        for (const runtime::OpProfile& p : result.profile) {
            std::cout << fmt::format("  {:<20} {:<9} {:>6} {:>10.3f} {:>6.1f}%\n", p.op, p.kernel, p.nodes, p.seconds,
                                     100.0 * p.seconds / std::max(profiled_seconds, 1e-12));
        }
    }
}

// Joins the MPI job (if launched by mpirun) and trains. An error on one rank ends the whole job at once: the other
// ranks could not know of it and would wait for this one until the deadline.
void run_train(const TrainCommandOptions& o) {
    const std::unique_ptr<runtime::ProcessGroup> group = runtime::ProcessGroup::from_environment(o.timeout_s);
    try {
        train_and_report(o, *group);
    } catch (const UsageError& e) {
        group->abort_job(fmt::format("dojo: rank {}: error: {}\n", group->rank(), e.what()), 2);
        throw;
    } catch (const Error& e) {
        group->abort_job(fmt::format("dojo: rank {}: error: {}\n", group->rank(), e.what()), 1);
        throw;
    }
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto options = std::make_shared<TrainCommandOptions>();
    CLI::App* train = app.add_subcommand("train", "Train a model on a dataset with Dojo's numerics; report test accuracy");
    train->add_option("model", options->model,
                      "an ONNX file exported from PyTorch (ops: " + frontend::onnx_supported_ops() +
                          "), or a catalog model: " + frontend::catalog_help())
        ->required();
    train->add_option("--out", options->out_path,
                      "ONNX models: write the trained model here (same graph, trained initializers)");
    train->add_option("--data", options->data,
                      "fashion-mnist (default; Debian's dataset-fashion-mnist), idx (your own IDX files in --data-dir; "
                      "see docs/training.md), synthetic (random data of Fashion-MNIST's size, or random token ids "
                      "for a language model, for timing), or text (a catalog gpt with vocab=256 learns the next byte "
                      "of the text file --data-dir FILE), clips:DIR[,KEY=VALUE...] (a fleet clip store made by "
                      "dojo data synth: samples are camera frames labelled by scene kind; keys cameras=main+rear, "
                      "size=WxH, sequence=, stride=, every=, augment=1, strict=1, and dojo data query's filters; "
                      "docs/data.md)");
    train->add_flag("--strict", options->strict,
                    "with --data clips:...: a damaged clip (corrupt or truncated stream, missing camera, label "
                    "checksum) is an error naming its shard, clip and camera, instead of being skipped and counted");
    train->add_option("--data-dir", options->data_dir,
                      "directory of the dataset files (default: Debian's); with --data text, the text file");
    train->add_option("--precision", options->precision,
                      "fp32 (default); bf16: matmul operands and gradients in BF16; cfp8: operands in cfp8_143 "
                      "(nearest), gradients in cfp8_152 (stochastic), per-tensor bias from max-abs. FP32 "
                      "accumulation, master weights and optimizer state in every case");
    train->add_option("--epochs", options->epochs, "passes over the training data (default 1)");
    train->add_option("--batch", options->batch, "samples per step (default 64); a partial last batch is dropped");
    train->add_option("--optimizer", options->optimizer, "sgd (momentum, default) or adamw");
    train->add_option("--lr", options->lr, "learning rate (default: 0.05 for sgd, 0.001 for adamw)");
    train->add_option("--momentum", options->momentum, "sgd momentum (default 0.9)");
    train->add_option("--weight-decay", options->weight_decay, "weight decay (default: 0 for sgd, 0.01 for adamw)");
    train->add_option("--seed", options->seed, "seed of initialisation and data order (default 0)");
    train->add_option("--train-limit", options->train_limit, "train on the first N samples only (default: all)");
    train->add_option("--test-limit", options->test_limit, "evaluate on the first N test samples only (default: all)");
    train->add_option("--sample-shape", options->sample_shape,
                      "--data synthetic: the shape of one sample, e.g. 3,224,224 (default 1,28,28)")
        ->delimiter(',');
    train->add_option("--eval-batch", options->eval_batch, "samples per evaluation step (default: the most, up to 500, whose memory fits in the training step's or 256 MiB; 0 is that default)");
    train->add_option("--threads", options->threads, "worker threads (default 0: one per core)");
    train->add_option("--kernels", options->kernels,
                      "fast (default): oneDNN for convolutions and matrix products, equal to the reference up to "
                      "summation order; reference: the op table's reference kernels everywhere, whose results do not "
                      "depend on --threads");
    train->add_option("--checkpoint", options->checkpoint_dir,
                      "directory for checkpoints (written atomically at the end of every epoch)");
    train->add_option("--checkpoint-every", options->checkpoint_every, "also checkpoint every N steps");
    train->add_flag("--resume", options->resume,
                    "continue from the checkpoint in --checkpoint DIR; ends with the same weights as an "
                    "uninterrupted run");
    train->add_flag("--overwrite", options->overwrite,
                    "let a fresh run replace the checkpoint of another run (another model, precision, optimizer, "
                    "seed or batch) in --checkpoint DIR; without it such a run is refused");
    train->add_flag("--json", options->json_output, "print the results as JSON on stdout");
    train->add_option("--metrics", options->metrics_path,
                      "append the progress as JSON lines to this file (epoch, batch, batches, loss, samples_per_second; "
                      "about every 100 ms), for a service's live plots");
    train->add_flag("--profile", options->profile,
                    "time every op of the training steps and print the time by op kind (and in --json)");
    train->add_option("--grad-compression", options->grad_compression,
                      "data parallel: the gradients' format on the wire: none (FP32, default), bf16 or cfp8 "
                      "(cfp8_152, bias per piece), both rounded stochastically");
    train->add_option("--reduce-order", options->reduce_order,
                      "data parallel: any (default; MPI's all-reduce) or fixed (sums in rank order: every rank and "
                      "every repeat of the run gets the same bits)");
    train->add_option("--rounding-scope", options->rounding_scope,
                      "data parallel with --precision cfp8: global (default; every rank rounds its share of a "
                      "batch tensor with the bias and random draws one process would use for the whole batch, "
                      "at one scalar all-reduce per rounded tensor and step) or rank (each rank rounds its own "
                      "shard; no extra messages)");
    train->add_option("--bucket-mib", options->bucket_mib,
                      "data parallel: gradient bucket size in MiB (default 8); a bucket is all-reduced as soon as "
                      "its gradients exist, while the backward pass goes on");
    train->add_option("--timeout", options->timeout_s,
                      "data parallel: seconds a collective may wait for the slowest rank before the job stops, "
                      "naming the missing rank (default 300)");
    train->footer("Progress goes to stderr; results to stdout. Same options, seed and thread count give the same "
                  "weights; with --kernels reference, the same weights for any thread count.\n\n"
                  "Data parallel: mpirun -np N dojo train ... trains one model on N processes (or hosts: "
                  "--hostfile); --batch is the global batch, split evenly over the ranks; the gradients are "
                  "averaged in buckets during the backward pass; rank 0 prints, evaluates with the others and "
                  "writes the checkpoints and the model. See docs/distributed.md.");
    train->callback([options] { run_train(*options); });
}

}  // namespace dojo::cli
