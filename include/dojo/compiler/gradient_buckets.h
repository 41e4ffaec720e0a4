/** \file
 * Data-parallel gradient buckets: how a step's gradients are grouped for the all-reduce, the same grouping for the
 * runtime (runtime/gradient_sync.h reduces each bucket as soon as its gradients are computed) and the simulator
 * (sim/simulate.h times each bucket's all-reduce from the moment the backward pass completes it).
 *
 * Gradients are taken in the order the backward pass computes them and cut into buckets of at most `bucket_bytes`
 * of FP32 (4 bytes per element); a gradient larger than that gets a bucket of its own. Small buckets start the
 * reduction early, behind the rest of the backward pass; each costs one collective's latency (PyTorch's
 * DistributedDataParallel cuts the same way, at 25 MiB by default; OpenDojo's default is 8 MiB).
 */
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "dojo/autodiff/training.h"

namespace dojo::compiler {

struct GradientBucket {
    std::vector<std::size_t> gradients;  ///< indices into TrainingGraph::gradients, in the order they are computed
    std::size_t elements = 0;            ///< FP32 elements of all of them
};

/// Bytes of a bucket of `mib` MiB (the --bucket-mib of dojo train and dojo sim), rounded up. UsageError unless it is
/// a positive number of at most 1,000,000 MiB.
std::size_t bucket_bytes_from_mib(double mib);

/// Cuts the gradients of `sizes` (elements each), taken in `ready_order` (a permutation of 0..n-1), into buckets of
/// at most bucket_bytes / 4 elements. Throws UsageError for a bucket size below 4 bytes, Error for a bad order.
std::vector<GradientBucket> cut_gradient_buckets(std::span<const std::size_t> sizes,
                                                 std::span<const std::size_t> ready_order, std::size_t bucket_bytes);

/// The order the backward pass of `step` computes its gradients in: graph order (the executor runs nodes in graph
/// order and a gradient ends its fused group). Gradients that are not computed (invalid ids) are left out.
std::vector<std::size_t> gradient_ready_order(const autodiff::TrainingGraph& step);

/// Elements of each of `step`'s gradients (0 for one that is not computed).
std::vector<std::size_t> gradient_sizes(const autodiff::TrainingGraph& step);

}  // namespace dojo::compiler
