/** \file
 * Deterministic mini-batches: the order of an epoch is a seeded permutation (own Fisher-Yates over SplitMix64,
 * util/random.h, so it is the same on every platform and standard library), and batches are cut from it.
 *
 * Position in the data is (epoch, batch index): enough to resume a run exactly where it stopped.
 */
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dojo/data/dataset.h"

namespace dojo::data {

/// The sample order of `epoch` for a dataset of `size` samples: a permutation of 0..size-1, a pure function of
/// (seed, epoch, size).
std::vector<std::uint32_t> epoch_order(std::uint64_t seed, std::uint64_t epoch, std::size_t size);

/// Data-parallel sharding: rank `rank` of `ranks` takes the `rank`-th slice of `global_batch / ranks` samples of every
/// whole global batch of `order`, so that its batch b (of global_batch / ranks samples) is its share of global batch b
/// and the ranks together see exactly the samples one process with `global_batch` would. The trailing partial global
/// batch is left out. Precondition: `ranks` divides `global_batch`.
std::vector<std::uint32_t> shard_order(std::span<const std::uint32_t> order, std::size_t global_batch, int ranks,
                                       int rank);

/// How a batch's labels are written (compiler/build_step.h decides which a model trains against).
enum class TargetLayout : std::uint8_t {
    OneHot,    ///< [batch_size * labels_per_sample, classes] class probabilities: a row per label
    ClassIds,  ///< [batch_size * labels_per_sample] class ids, as exact floats
};

/// Copies batch `batch` of `order` into `samples` ([batch_size, sample...]) and `targets` in `layout` (a sample's
/// labels together). The last batch of an epoch may be partial; `count` samples are written and the rest of the
/// buffers are left as they were. Returns the number of samples written.
std::size_t fill_batch(const Dataset& dataset, std::span<const std::uint32_t> order, std::size_t batch,
                       std::size_t batch_size, std::span<float> samples, std::span<float> targets,
                       TargetLayout layout = TargetLayout::OneHot);

/// Number of batches of `batch_size` covering `size` samples (the last may be partial).
inline std::size_t batch_count(std::size_t size, std::size_t batch_size) { return (size + batch_size - 1) / batch_size; }

}  // namespace dojo::data
