// Max-pooling test inputs shared by the vectorised kernel's test against the reference (runtime_test) and the
// blocked kernel's test against the plain one (channel_blocked_test): windows inside and at every edge, padding,
// overlapping and asymmetric windows, and values with ties (equal values, +0 and -0), -inf and NaNs.
#pragma once

#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "dojo/ir/op.h"
#include "dojo/ir/shape.h"

namespace dojo::testing {

struct MaxPoolCase {
    ir::Shape x;
    ir::PoolAttrs attrs;
};

/// Channel counts are whole 16-channel blocks, so that the blocked layout can hold every case.
inline std::vector<MaxPoolCase> max_pool_cases() {
    return {
        {ir::Shape{2, 32, 17, 19}, ir::PoolAttrs{{3, 3}, {2, 2}, {1, 1, 1, 1}}},  // ResNet's stem, odd sizes
        {ir::Shape{1, 16, 16, 16}, ir::PoolAttrs{{2, 2}, {2, 2}, {0, 0, 0, 0}}},
        {ir::Shape{2, 16, 10, 28}, ir::PoolAttrs{{2, 2}, {2, 2}, {0, 0, 0, 0}}},  // LeNet's rows (2x2 fast path)
        {ir::Shape{1, 16, 9, 11}, ir::PoolAttrs{{2, 2}, {2, 2}, {1, 1, 0, 0}}},   // 2x2 with edge windows around it
        {ir::Shape{2, 16, 7, 9}, ir::PoolAttrs{{2, 2}, {2, 2}, {0, 0, 0, 0}}},    // 2x2 tiles, an odd row and column left out
        {ir::Shape{1, 16, 5, 70}, ir::PoolAttrs{{2, 2}, {2, 2}, {0, 0, 0, 0}}},   // rows of 35 windows: 16, 16 and 3
        {ir::Shape{1, 16, 4, 32}, ir::PoolAttrs{{2, 2}, {2, 2}, {0, 0, 1, 1}}},   // 16 windows a row; padding never reached
        {ir::Shape{2, 16, 9, 12}, ir::PoolAttrs{{3, 3}, {1, 1}, {1, 1, 1, 1}}},  // overlapping windows
        {ir::Shape{1, 32, 11, 13}, ir::PoolAttrs{{2, 3}, {1, 2}, {1, 0, 0, 2}}},  // asymmetric
        {ir::Shape{1, 16, 3, 3}, ir::PoolAttrs{{3, 3}, {1, 1}, {2, 2, 2, 2}}},    // all-padding windows too
    };
}

/// `n` inputs drawn from a few values (ties, +0 and -0, -inf) with about one NaN in 61, or none (the kernels' fast
/// scan: most windows hold a NaN in some channel otherwise).
inline std::vector<float> max_pool_inputs(std::size_t n, unsigned seed, bool with_nans = true) {
    const float values[] = {0.0f, -0.0f, 1.0f, 1.0f, 2.5f, -3.0f, -std::numeric_limits<float>::infinity()};
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> pick(0, std::size(values) - 1);
    std::uniform_int_distribution<int> one_in(0, 60);
    std::vector<float> xs(n);
    for (float& v : xs) {
        v = one_in(rng) == 0 && with_nans ? std::numeric_limits<float>::quiet_NaN() : values[pick(rng)];
    }
    return xs;
}

/// `n` output gradients: a repeating pattern of seven values, every eleventh a -0 (which a sum into zeros makes +0).
inline std::vector<float> max_pool_gradients(std::size_t n) {
    std::vector<float> dys(n);
    for (std::size_t i = 0; i < n; ++i) {
        dys[i] = i % 11 == 3 ? -0.0f : static_cast<float>(i % 7) - 2.25f;
    }
    return dys;
}

}  // namespace dojo::testing
