/** \file
 * Training checkpoints: everything needed to continue a run exactly where it stopped — parameters, optimizer
 * state, the position in the data (epoch and batch) and the run's identity (model, precision, optimizer, seed,
 * batch). Randomness needs no saved state: data order, initialisation and stochastic rounding are pure functions
 * of the seed and the position.
 *
 * File: <dir>/checkpoint.dojo, little-endian:
 *   "DOJOCKPT"  u32 version (kCheckpointVersion)  u32 header length  header (JSON text)
 *   per tensor: u32 name length, name, u64 element count, that many f32
 *   u32 CRC-32 (zlib) of every byte before it
 * Writes are atomic: a temporary file in the same directory is written, flushed with fsync, renamed over the old
 * checkpoint, and the directory is synced; a crash at any point leaves the previous checkpoint intact.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dojo::runtime {

inline constexpr std::uint32_t kCheckpointVersion = 1;
inline constexpr const char* kCheckpointFile = "checkpoint.dojo";

struct NamedTensor {
    std::string name;
    std::vector<float> values;
};

struct Checkpoint {
    // Identity of the run: resuming with different values is refused.
    std::string model;
    std::string precision;
    std::string optimizer;
    std::uint64_t seed = 0;
    std::uint64_t batch = 0;
    // Position: the next batch to run.
    int epoch = 1;                   ///< 1-based epoch of the next batch
    std::uint64_t batch_in_epoch = 0;  ///< 0-based index of the next batch within that epoch
    std::uint64_t global_step = 0;   ///< steps taken so far
    double epoch_loss_sum = 0;       ///< sum of the losses of this epoch's batches so far
    std::vector<NamedTensor> tensors;  ///< parameters and optimizer state, by graph leaf name
};

/// Writes `checkpoint` to `dir` atomically (see above), creating `dir` if needed. Throws IoError naming the path
/// and the system error if it cannot (the previous checkpoint, if any, is left as it was).
void write_checkpoint(const std::string& dir, const Checkpoint& checkpoint);

/// Reads the checkpoint in `dir`. Throws IoError if there is none, or if it is truncated, corrupted (CRC), of
/// another format or version; the message names the file and the problem.
Checkpoint read_checkpoint(const std::string& dir);

/// True if `dir` holds a checkpoint file.
bool has_checkpoint(const std::string& dir);

/// Creates `dir` if needed and checks that a file can be created in it; throws IoError naming the directory and the
/// reason otherwise. Run before training, so that an unwritable directory fails at once, not after an epoch.
void require_writable_directory(const std::string& dir);

}  // namespace dojo::runtime
