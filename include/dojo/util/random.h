/** \file
 * SplitMix64 (Steele, Lea and Flood 2014): a tiny, well-mixed, portable generator for seeded host-side choices
 * (data order, weight initialisation). Same seed, same numbers, on every platform and standard library; the
 * standard distributions are avoided for that reason. Not for stochastic rounding (that is Philox, numerics/).
 */
#pragma once

#include <cstdint>

namespace dojo {

class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}

    /// The generator that `seed`'s would be after `draws` calls of next(): its state only steps by a constant, so
    /// any point of the stream is reached at once.
    static SplitMix64 after(std::uint64_t seed, std::uint64_t draws) { return SplitMix64(seed + draws * kIncrement); }

    std::uint64_t next() {
        std::uint64_t z = (state_ += kIncrement);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    /// Uniform in [0, bound), bound > 0, without modulo bias.
    std::uint64_t below(std::uint64_t bound) {
        const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
        std::uint64_t r = 0;
        do {
            r = next();
        } while (r >= limit);
        return r % bound;
    }

    /// Uniform in [0, 1) with 53 random bits.
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    static constexpr std::uint64_t kIncrement = 0x9E3779B97F4A7C15ULL;
    std::uint64_t state_;
};

}  // namespace dojo
