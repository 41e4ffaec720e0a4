#include "dojo/runtime/gradient_sync.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <string>

#include "dojo/compiler/gradient_buckets.h"
#include "dojo/numerics/bias.h"
#include "dojo/numerics/convert.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "dojo/util/random.h"

namespace dojo::runtime {
namespace {

// A payload is one rank's piece of one chunk on the wire: an 8-byte header (the cfp8 bias, as int32) and the codes,
// padded to a multiple of 8 bytes so that every payload of a buffer starts aligned for its codes.
constexpr std::size_t kHeaderBytes = 8;

std::size_t payload_bytes(WireFormat wire, std::size_t chunk) {
    return (kHeaderBytes + chunk * wire_bytes_per_element(wire) + 7) / 8 * 8;
}

// The rounding of one payload: stochastic, with a stream no other payload of the run shares.
numerics::ConvertOptions rounding(std::uint64_t seed, std::int64_t step, std::size_t bucket, int sender, int phase,
                                  std::size_t first_index) {
    SplitMix64 mix(static_cast<std::uint64_t>(step) * 0x9E3779B97F4A7C15ULL ^ (bucket << 20) ^
                   (static_cast<std::uint64_t>(sender) << 2) ^ static_cast<std::uint64_t>(phase));
    numerics::ConvertOptions options;
    options.rounding = numerics::Rounding::Stochastic;
    options.seed = seed;
    options.stream = mix.next();
    options.first_index = first_index;
    options.threads = 1;  // the communication thread leaves the cores to training
    return options;
}

// Writes `values` as a payload (the rest of its chunk is zero).
void pack(WireFormat wire, std::span<const float> values, std::span<std::byte> payload,
          const numerics::ConvertOptions& options) {
    std::fill(payload.begin(), payload.end(), std::byte{0});
    std::byte* codes = payload.data() + kHeaderBytes;
    std::int32_t bias = 0;
    switch (wire) {
        case WireFormat::Fp32:
            std::memcpy(codes, values.data(), values.size_bytes());
            break;
        case WireFormat::Bf16:
            numerics::encode(values, std::span(reinterpret_cast<std::uint16_t*>(codes), values.size()),
                             numerics::make_format(numerics::FormatKind::Bf16), options);
            break;
        case WireFormat::Cfp8: {
            const float largest = numerics::max_abs(values, 1);
            // A non-finite gradient saturates (the loss check stops the run); any bias will do for it.
            bias = std::isfinite(largest) ? numerics::choose_bias(numerics::FormatKind::Cfp8_152, largest).bias : -1;
            const numerics::FormatSpec spec = numerics::make_format(numerics::FormatKind::Cfp8_152, bias);
            bias = spec.bias;
            numerics::encode(values, std::span(reinterpret_cast<std::uint8_t*>(codes), values.size()), spec, options);
            break;
        }
    }
    std::memcpy(payload.data(), &bias, sizeof bias);
}

// The FP32 values of the first out.size() codes of `payload`.
void unpack(WireFormat wire, std::span<const std::byte> payload, std::span<float> out) {
    const std::byte* codes = payload.data() + kHeaderBytes;
    numerics::ConvertOptions options;
    options.threads = 1;
    switch (wire) {
        case WireFormat::Fp32:
            std::memcpy(out.data(), codes, out.size_bytes());
            break;
        case WireFormat::Bf16:
            numerics::decode(std::span(reinterpret_cast<const std::uint16_t*>(codes), out.size()), out,
                             numerics::make_format(numerics::FormatKind::Bf16), options);
            break;
        case WireFormat::Cfp8: {
            std::int32_t bias = 0;
            std::memcpy(&bias, payload.data(), sizeof bias);
            numerics::decode(std::span(reinterpret_cast<const std::uint8_t*>(codes), out.size()), out,
                             numerics::make_format(numerics::FormatKind::Cfp8_152, bias), options);
            break;
        }
    }
}

}  // namespace

WireFormat parse_wire_format(std::string_view name) {
    if (name == "none" || name == "fp32") {
        return WireFormat::Fp32;
    }
    if (name == "bf16") {
        return WireFormat::Bf16;
    }
    if (name == "cfp8") {
        return WireFormat::Cfp8;
    }
    throw UsageError("unknown gradient compression '" + std::string(name) +
                     "'; expected none (FP32), bf16 or cfp8 (cfp8_152 with stochastic rounding)");
}

std::size_t wire_bytes_per_element(WireFormat wire) {
    switch (wire) {
        case WireFormat::Fp32: return 4;
        case WireFormat::Bf16: return 2;
        case WireFormat::Cfp8: return 1;
    }
    return 4;
}

std::string_view to_string(WireFormat wire) {
    switch (wire) {
        case WireFormat::Fp32: return "none";
        case WireFormat::Bf16: return "bf16";
        case WireFormat::Cfp8: return "cfp8";
    }
    return "none";
}

ReduceOrder parse_reduce_order(std::string_view name) {
    if (name == "any") {
        return ReduceOrder::Any;
    }
    if (name == "fixed") {
        return ReduceOrder::Fixed;
    }
    throw UsageError("unknown reduction order '" + std::string(name) +
                     "'; expected any (MPI's all-reduce) or fixed (rank order: bit-identical runs)");
}

std::string_view to_string(ReduceOrder order) { return order == ReduceOrder::Any ? "any" : "fixed"; }

GradientSync::GradientSync(ProcessGroup& group, std::span<const std::size_t> sizes,
                           std::span<const std::size_t> ready_order, const GradientSyncOptions& options)
    : group_(group), options_(options), bucket_of_(sizes.size()), offset_of_(sizes.size()) {
    DOJO_CHECK(group.distributed()) << "a gradient sync needs more than one rank";
    DOJO_CHECK(ready_order.size() == sizes.size()) << "ready order of " << ready_order.size() << " gradients";
    std::vector<std::size_t> elements;
    for (const compiler::GradientBucket& cut : compiler::cut_gradient_buckets(sizes, ready_order, options.bucket_bytes)) {
        std::size_t offset = 0;
        for (const std::size_t k : cut.gradients) {
            bucket_of_[k] = elements.size();
            offset_of_[k] = offset;
            offset += sizes[k];
        }
        elements.push_back(cut.elements);
        stats_.push_back({});
        stats_.back().gradients = cut.gradients.size();
    }
    reduce_seconds_.reserve(std::size_t{1} << 16);  // thousands of steps before the log grows
    const auto n = static_cast<std::size_t>(group.size());
    const bool chunked = options.order == ReduceOrder::Fixed || options.wire != WireFormat::Fp32;
    std::size_t largest_payload = 0;
    std::size_t largest_chunk = 0;
    buckets_.resize(elements.size());
    for (std::size_t b = 0; b < elements.size(); ++b) {
        buckets_[b].values.assign(elements[b], 0.0f);
        buckets_[b].gradients = stats_[b].gradients;
        stats_[b].elements = elements[b];
        const std::size_t chunk = (elements[b] + n - 1) / n;
        largest_chunk = std::max(largest_chunk, chunk);
        largest_payload = std::max(largest_payload, payload_bytes(options.wire, chunk));
        stats_[b].wire_bytes_per_step = chunked ? 2 * (n - 1) * payload_bytes(options.wire, chunk)
                                                : 2 * (n - 1) * chunk * sizeof(float);  // a ring's traffic
    }
    if (chunked) {
        send_.assign(n * largest_payload, std::byte{0});
        receive_.assign(n * largest_payload, std::byte{0});
        gathered_.assign(n * largest_payload, std::byte{0});
        mine_.assign(largest_payload, std::byte{0});
        sum_.assign(largest_chunk, 0.0f);
        piece_.assign(largest_chunk, 0.0f);
    }
}

GradientSync::~GradientSync() {
    for (Bucket& bucket : buckets_) {
        if (bucket.reduced.valid()) {
            bucket.reduced.wait();
        }
    }
}

void GradientSync::begin_step(std::int64_t step) {
    step_ = step;
    for (Bucket& bucket : buckets_) {
        DOJO_CHECK(!bucket.reduced.valid()) << "a bucket of step " << step - 1 << " was never waited for";
        bucket.pending = bucket.gradients;
    }
}

void GradientSync::ready(std::size_t k, std::span<const float> gradient) {
    const std::size_t b = bucket_of_[k];
    Bucket& bucket = buckets_[b];
    DOJO_CHECK(bucket.pending > 0) << "gradient " << k << " reported twice in step " << step_;
    std::copy(gradient.begin(), gradient.end(), bucket.values.begin() + static_cast<std::ptrdiff_t>(offset_of_[k]));
    if (--bucket.pending == 0) {
        bucket.reduced = group_.submit(fmt::format("the gradient all-reduce of step {} (bucket {} of {})", step_,
                                                   b + 1, buckets_.size()),
                                       [this, b](ProcessGroup::Mpi& mpi) { reduce(mpi, b); });
    }
}

void GradientSync::wait(std::size_t k, std::span<float> gradient) {
    Bucket& bucket = buckets_[bucket_of_[k]];
    if (bucket.reduced.valid()) {
        const auto start = std::chrono::steady_clock::now();
        bucket.reduced.get();
        exposed_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    const float* from = bucket.values.data() + offset_of_[k];
    if (options_.order == ReduceOrder::Any && options_.wire == WireFormat::Fp32) {
        const auto ranks = static_cast<float>(group_.size());
        for (std::size_t i = 0; i < gradient.size(); ++i) {
            gradient[i] = from[i] / ranks;
        }
    } else {
        std::copy(from, from + gradient.size(), gradient.begin());  // already the mean
    }
}

void GradientSync::reduce(ProcessGroup::Mpi& mpi, std::size_t b) {
    const auto start = std::chrono::steady_clock::now();
    if (options_.order == ReduceOrder::Any && options_.wire == WireFormat::Fp32) {
        mpi.wait(mpi.iallreduce_sum(std::span(buckets_[b].values)));
    } else {
        reduce_by_chunks(mpi, b);
    }
    // Only this thread appends; the futures the caller waits on order the appends before its reads.
    reduce_seconds_.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void GradientSync::reduce_by_chunks(ProcessGroup::Mpi& mpi, std::size_t b) {
    std::vector<float>& values = buckets_[b].values;
    const auto ranks = static_cast<std::size_t>(group_.size());
    const auto me = static_cast<std::size_t>(group_.rank());
    const std::size_t n = values.size();
    const std::size_t chunk = (n + ranks - 1) / ranks;
    const std::size_t payload = payload_bytes(options_.wire, chunk);
    auto chunk_span = [&](std::size_t c) {
        const std::size_t lo = std::min(n, c * chunk);
        return std::pair{lo, std::min(n, lo + chunk) - lo};
    };
    auto payload_at = [&](std::vector<std::byte>& buffer, std::size_t c) {
        return std::span(buffer).subspan(c * payload, payload);
    };

    // Reduce-scatter: piece c of this rank's bucket goes to rank c.
    for (std::size_t c = 0; c < ranks; ++c) {
        const auto [lo, count] = chunk_span(c);
        pack(options_.wire, std::span<const float>(values).subspan(lo, count), payload_at(send_, c),
             rounding(options_.seed, step_, b, group_.rank(), 0, lo));
    }
    mpi.wait(mpi.ialltoall(std::span(send_).first(ranks * payload), std::span(receive_).first(ranks * payload)));

    // This rank's chunk: the sum in rank order, then the mean.
    const auto [mine_lo, mine_count] = chunk_span(me);
    const std::span<float> sum = std::span(sum_).first(mine_count);
    for (std::size_t r = 0; r < ranks; ++r) {
        const std::span<float> piece = r == 0 ? sum : std::span(piece_).first(mine_count);
        unpack(options_.wire, payload_at(receive_, r), piece);
        if (r > 0) {
            for (std::size_t i = 0; i < mine_count; ++i) {
                sum[i] += piece[i];
            }
        }
    }
    const auto divisor = static_cast<float>(ranks);
    for (float& v : sum) {
        v /= divisor;
    }

    // All-gather: every rank's mean chunk to every rank, decoded in place.
    pack(options_.wire, sum, std::span(mine_).first(payload), rounding(options_.seed, step_, b, group_.rank(), 1,
                                                                        mine_lo));
    mpi.wait(mpi.iallgather(std::span(mine_).first(payload), std::span(gathered_).first(ranks * payload)));
    for (std::size_t c = 0; c < ranks; ++c) {
        const auto [lo, count] = chunk_span(c);
        unpack(options_.wire, payload_at(gathered_, c), std::span(values).subspan(lo, count));
    }
}

}  // namespace dojo::runtime
