/** \file
 * Data-parallel gradient averaging: the mean of every gradient over the ranks of a ProcessGroup, in buckets that
 * are reduced while the backward pass goes on (as PyTorch's DistributedDataParallel and Horovod do).
 *
 * Use, each step: begin_step(step); ready(k, g) as soon as gradient k is computed (its values are copied into the
 * bucket; a bucket whose gradients are all in goes to the communication thread at once); wait(k, g) before anything
 * reads gradient k (waits for its bucket, then writes the mean over the ranks into g). Buckets are cut along the
 * order the gradients become ready (the constructor's `ready_order`), at most bucket_bytes of FP32 each, so the
 * first bucket is in flight while later layers' gradients are still being computed. The cut is
 * compiler::cut_gradient_buckets, the one the simulator times (compiler/gradient_buckets.h).
 *
 * Two ways to reduce a bucket:
 *  - ReduceOrder::Any, FP32 wire: MPI_Iallreduce (the library picks the algorithm; the order of the additions is
 *    its choice), then a division by the rank count.
 *  - ReduceOrder::Fixed, or a compressed wire: a reduce-scatter by all-to-all and an all-gather. The bucket is cut
 *    into one chunk per rank; rank c receives every rank's piece of chunk c, sums them in rank order 0, 1, ..., N-1
 *    in FP32, divides by N and sends the result to all. The additions are the same whatever the library or the
 *    network do, every rank ends with the same bits, and the traffic per rank is 2 (N-1)/N of the bucket — what a
 *    ring all-reduce moves.
 * Compression (WireFormat::Bf16 / Cfp8): every piece crosses the wire in BF16 or cfp8_152 (Dojo's gradient format;
 * the bias chosen per piece from its max-abs, cfloat.md), rounded stochastically (Philox keyed by the seed, the
 * step, the bucket, the sender and the phase), and is decoded to FP32 before it is added. Each value is rounded
 * twice: once as a rank's contribution, once as the sum sent back. 2x (bf16) or 4x (cfp8) less traffic.
 *
 * Memory: every bucket and the reduction's workspace are allocated at construction; a step allocates nothing.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <span>
#include <string_view>
#include <vector>

#include "dojo/runtime/process_group.h"

namespace dojo::runtime {

enum class WireFormat { Fp32, Bf16, Cfp8 };
enum class ReduceOrder { Any, Fixed };

/// "none" (FP32), "bf16", "cfp8" (cfp8_152); throws UsageError otherwise.
WireFormat parse_wire_format(std::string_view name);
std::string_view to_string(WireFormat wire);
/// Bytes of one gradient value on the wire: 4, 2 or 1 (each piece also carries an 8-byte header when chunked).
std::size_t wire_bytes_per_element(WireFormat wire);
/// "any" or "fixed"; throws UsageError otherwise.
ReduceOrder parse_reduce_order(std::string_view name);
std::string_view to_string(ReduceOrder order);

struct GradientSyncOptions {
    WireFormat wire = WireFormat::Fp32;
    ReduceOrder order = ReduceOrder::Any;
    std::size_t bucket_bytes = std::size_t{8} << 20;  ///< FP32 bytes per bucket (a larger gradient gets its own)
    std::uint64_t seed = 0;                           ///< stochastic rounding on a compressed wire
};

/// One bucket's share of the traffic: which gradients it holds and how long its reductions took.
struct BucketStats {
    std::size_t elements = 0;
    std::size_t gradients = 0;
    std::size_t wire_bytes_per_step = 0;  ///< bytes this rank sends per reduction of the bucket
};

class GradientSync {
public:
    /// `sizes[k]`: elements of gradient k; `ready_order`: a permutation of 0..n-1, the order they are computed in.
    /// Throws UsageError for a bucket size below 4 bytes.
    GradientSync(ProcessGroup& group, std::span<const std::size_t> sizes, std::span<const std::size_t> ready_order,
                 const GradientSyncOptions& options);
    ~GradientSync();  ///< waits for the buckets still in flight
    GradientSync(const GradientSync&) = delete;
    GradientSync& operator=(const GradientSync&) = delete;

    /// Starts a step (numbered from 1; it keys the stochastic rounding). Every bucket of the previous step must
    /// have been waited for.
    void begin_step(std::int64_t step);
    /// Gradient k's values for this step; a full bucket starts its reduction.
    void ready(std::size_t k, std::span<const float> gradient);
    /// Waits for gradient k's bucket and writes the mean over the ranks into `gradient`. Rethrows the reduction's
    /// error, if any.
    void wait(std::size_t k, std::span<float> gradient);

    const std::vector<BucketStats>& buckets() const { return stats_; }
    /// The wall time of every reduction on the communication thread (from its start there, not its queueing), step
    /// by step and bucket by bucket: entry (s - 1) x buckets + b. Current once the last step's buckets are waited
    /// for. A rank that arrived early also counts its wait for the others (see train_classifier's minimum).
    const std::vector<double>& reduce_seconds() const { return reduce_seconds_; }
    /// Wall time the caller spent blocked in wait(), summed: the communication the backward pass did not hide.
    double exposed_seconds() const { return exposed_s_; }

private:
    struct Bucket {
        std::vector<float> values;
        std::size_t pending = 0;   // gradients not yet ready this step
        std::size_t gradients = 0;
        std::future<void> reduced;
    };
    void reduce(ProcessGroup::Mpi& mpi, std::size_t b);  // on the communication thread
    void reduce_by_chunks(ProcessGroup::Mpi& mpi, std::size_t b);

    ProcessGroup& group_;
    GradientSyncOptions options_;
    std::vector<std::size_t> bucket_of_;  // [gradient]
    std::vector<std::size_t> offset_of_;  // [gradient]: offset in its bucket
    std::vector<Bucket> buckets_;
    std::vector<BucketStats> stats_;
    std::int64_t step_ = 0;
    double exposed_s_ = 0;
    std::vector<double> reduce_seconds_;  // written by the communication thread only
    // The chunked reduction's workspace, shared by the buckets (the communication thread reduces one at a time).
    std::vector<std::byte> send_, receive_, gathered_, mine_;
    std::vector<float> sum_, piece_;
};

}  // namespace dojo::runtime
