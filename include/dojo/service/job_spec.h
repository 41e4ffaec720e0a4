/** \file
 * A job as the API takes it: `{"kind": "train"|"sim", "args": {...}, "priority": "high"|"normal"|"low", "slots": N,
 * "ranks": R}` (a train job on R MPI ranks of slots / R threads each; 1 by default).
 * `args` holds the CLI's positional `model` and its long options with dashes as underscores
 * (`{"model": "mlp", "epochs": 1, "train_limit": 12800}` is `dojo train mlp --epochs 1 --train-limit 12800`): strings,
 * numbers, true for a flag, or an array of numbers (`sample_shape`). Only the options a job may set are taken (the
 * service chooses where outputs go: --out, --checkpoint, --resume, --trace, --json are its own).
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dojo::service {

enum class Priority : std::uint8_t { Low = 0, Normal = 1, High = 2 };
std::string_view to_string(Priority priority);
Priority parse_priority(std::string_view text);  ///< UsageError unless high, normal or low

struct JobSpec {
    std::string kind;            ///< "train" or "sim"
    nlohmann::json args;         ///< an object: model, then options (validated)
    Priority priority = Priority::Normal;
    int slots = 1;               ///< cores (train: threads) the job holds while it runs
    int ranks = 1;               ///< train: MPI ranks (data parallel) sharing the slots; a divisor of slots
};

/// Parses and validates a request body. UsageError naming the field and what it must be: not JSON, not an object,
/// unknown fields, wrong types, an unknown kind or option, a missing or empty model, slots outside 1..max_slots,
/// a body over 64 KiB.
JobSpec parse_job_request(std::string_view body, int max_slots);

/// The command line the job runs: `dojo KIND MODEL --option value ... --json`, with the service's own options for
/// outputs under `job_dir` (train: --checkpoint job_dir/checkpoint, --metrics job_dir/metrics.jsonl, --resume when
/// `resume`, --threads slots / ranks, and for an ONNX model --out job_dir/artifacts/model.onnx; sim: --trace
/// job_dir/artifacts/trace.json); with ranks > 1 under `mpirun -np RANKS` (found on PATH), its ranks told to die with
/// it (DOJO_DIE_WITH_PARENT).
std::vector<std::string> job_argv(const JobSpec& spec, const std::string& dojo, const std::string& job_dir,
                                  bool resume);

nlohmann::json to_json(const JobSpec& spec);
JobSpec job_spec_from_json(const nlohmann::json& stored);

}  // namespace dojo::service
