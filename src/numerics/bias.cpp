#include "dojo/numerics/bias.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "dojo/numerics/convert.h"
#include "dojo/util/error.h"

namespace dojo::numerics {

BiasChoice choose_bias(FormatKind kind, double max_abs_value, double headroom_binades, Denormals denormals) {
    const FormatTraits& t = traits(kind);
    if (!t.configurable_bias) {
        throw UsageError("format " + std::string(t.name) + " has a fixed bias; choose_bias applies to cfp8_143, "
                         "cfp8_152, shp and uhp");
    }
    if (!(max_abs_value >= 0.0) || std::isinf(max_abs_value)) {
        throw UsageError("max-abs " + std::to_string(max_abs_value) +
                         " is not a finite non-negative number; a tensor holding NaN or Inf has no bias that fits");
    }
    if (!(headroom_binades >= 0.0) || std::isinf(headroom_binades)) {
        throw UsageError("headroom " + std::to_string(headroom_binades) +
                         " binades is invalid; give a finite value >= 0");
    }
    if (max_abs_value == 0.0) {
        return BiasChoice{t.default_bias, true};
    }
    const double needed = max_abs_value * std::exp2(headroom_binades);
    // max(bias) = max(0) * 2^-bias, so the largest fitting bias is found by walking down from 63.
    for (int bias = kMaxBias; bias >= 0; --bias) {
        if (range_of(make_format(kind, bias, denormals)).max >= needed) {
            return BiasChoice{bias, true};
        }
    }
    return BiasChoice{0, false};
}

namespace {

// The largest of (bits & 0x7fffffff) over [data, data + n). An unsigned 32-bit max needs SSE4.1 or later, which the
// baseline x86-64 target lacks, so the loop is also built for AVX2 and AVX-512 and picked when the program loads.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
std::uint32_t max_magnitude_bits(const float* data, std::size_t n) {
    std::uint32_t largest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        largest = std::max(largest, std::bit_cast<std::uint32_t>(data[i]) & 0x7fffffffu);
    }
    return largest;
}

}  // namespace

std::uint32_t max_abs_bits(const float* values, std::size_t n) { return max_magnitude_bits(values, n); }

float max_abs(std::span<const float> values, int threads) {
    if (threads < 0) {
        throw UsageError("max_abs: threads = " + std::to_string(threads) + "; give 0 (all) or a positive count");
    }
    // Compare magnitudes as integers: for IEEE patterns the order of |x| is the order of (bits & 0x7fffffff),
    // with Inf above every finite value and NaN above Inf.
    const int wanted = threads == 0 ? omp_get_max_threads() : threads;
    const auto useful = static_cast<int>(std::max<std::size_t>(1, values.size() / kMinElementsPerThread));
    const int team = std::max(1, std::min(wanted, useful));
    // Each thread scans one contiguous block.
    const std::size_t n = values.size();
    std::uint32_t largest = 0;
#pragma omp parallel num_threads(team) reduction(max : largest)
    {
        const auto members = static_cast<std::size_t>(omp_get_num_threads());
        const auto me = static_cast<std::size_t>(omp_get_thread_num());
        const std::size_t begin = n * me / members;
        const std::size_t end = n * (me + 1) / members;
        largest = std::max(largest, max_magnitude_bits(values.data() + begin, end - begin));
    }
    return std::bit_cast<float>(largest);
}

}  // namespace dojo::numerics
