/** \file
 * Fidelity against published figures: a validation table (validation/published.toml, described in
 * docs/validation.md) lists published measurements and totals, each with its source, and predict() computes what
 * OpenDojo says for the same setting with the same machine presets. No row has a constant of its own.
 *
 * A row is one of three kinds:
 *   step       a training step simulated as `dojo sim` does (model, machine, batch, precision, strategy,
 *              optimizer); metrics samples_per_s, step_time, flops_per_device (model FLOP/s per device used)
 *   allreduce  one all-reduce of `bytes` over the machine's first `devices` devices, simulated as the step's
 *              collectives are; metric bus_bandwidth (NCCL's busbw: bytes / time x 2 (n - 1) / n)
 *   machine    a derived total of the machine (machine/machine.h totals): peak_flops.<precision>, sram,
 *              device_memory, power, units.<kind>, bandwidth.<zone>.<what> (e.g. bandwidth.tile.off-tile)
 * A row's `value` is a quantity with its unit ("27176", "230 GB/s", "362 TFLOP/s", "440 MiB"), in the dimension its
 * metric has.
 *
 * What a row proves (role()): a `machine` row is a consistency check (the published total is a sum of the preset's
 * own inputs: it shows the preset was entered right, not that the simulator predicts anything); `step` and
 * `allreduce` rows are predictions (the simulator computes the figure). A prediction whose published figure is not a
 * measurement (`measured = false`, with a note saying what it is) is told apart: it is compared, never counted in the
 * headline error.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dojo/machine/quantity.h"

namespace dojo::sim {

struct ValidationRow {
    std::string name;
    std::string kind;                  ///< "step", "allreduce" or "machine"
    std::string machine;               ///< preset spec
    std::string metric;
    machine::Quantity published;
    std::string source;                ///< where the published figure is (a URL)
    std::string note;                  ///< how the setting maps onto OpenDojo's, where it is not one to one
    bool measured = true;              ///< false: the published figure is an expectation or estimate, not a measurement
    // step
    std::string model;
    std::int64_t batch = 0;
    std::string precision = "bf16";
    std::string strategy;
    std::string optimizer = "adamw";
    std::string software;              ///< a stack of machines/software the GPUs run (empty: the kinds' defaults)
    std::string grad_compression = "none";  ///< data-parallel gradients on the wire: none (FP32), bf16 or cfp8
    // allreduce
    std::int64_t devices = 0;
    double bytes = 0;
    std::string where;                 ///< "file:line", for messages
};

struct ValidationResult {
    ValidationRow row;
    double predicted = 0;              ///< in the SI unit of the row's dimension
    double error = 0;                  ///< (predicted - published) / published
    /// A step row: whether the simulated plan fits the memory of the devices that ran it (a run that was measured
    /// did fit, so false says the memory model is wrong there; the step is timed as if it fitted). Other rows: none.
    std::optional<bool> fits;
};

enum class RowRole { Consistency, Prediction, PredictionOfExpected };
RowRole role(const ValidationRow& row);
/// "consistency", "prediction", "prediction of an expected figure"
const char* to_string(RowRole role);

/// Reads a validation table. UsageError naming the file, line (and column for bad TOML) and key for a malformed
/// row: unknown kind or metric, a missing key, a value in the wrong dimension.
std::vector<ValidationRow> load_validation_table(const std::string& path);

/// The default table shipped with OpenDojo (validation/published.toml in the source tree).
std::string default_validation_table();

/// What OpenDojo predicts for `row`, with machine presets from `machines_dir`.
ValidationResult predict(const ValidationRow& row, const std::string& machines_dir);

}  // namespace dojo::sim
