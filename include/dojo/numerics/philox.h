/** \file
 * Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3") and the map from a
 * tensor element to the random word that rounds it stochastically (cfloat.md F8).
 *
 * Philox is counter-based: the word for element i is a pure function of (seed, stream, i). A conversion split
 * into any chunks, on any number of threads, with any SIMD width, therefore rounds every element identically.
 *
 * Element -> (counter, word). For element index i (0-based in the whole tensor, see EncodeOptions::first_index):
 *   group  g = i / 64,   lane j = i % 16,   word w = (i / 16) % 4,   block c = 16*g + j
 *   counter = (c low 32 bits, c high 32 bits, stream low 32 bits, stream high 32 bits)
 *   key     = (seed low 32 bits, seed high 32 bits)
 *   r(i)    = Philox4x32_10(counter, key)[w]
 * Each (block, word) pair is used by exactly one element. The layout lets one 16-lane Philox evaluation produce
 * the words of 64 consecutive elements already in element order, with no transpose; it is a definition, so a
 * scalar caller gets the same words (stochastic_word below).
 *
 * Non-goals: cryptographic strength; other rounds counts.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace dojo::numerics {

using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;

inline constexpr std::uint32_t kPhiloxMultiplier0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxMultiplier1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxWeyl0 = 0x9E3779B9u;  ///< golden ratio
inline constexpr std::uint32_t kPhiloxWeyl1 = 0xBB67AE85u;  ///< sqrt(3) - 1
inline constexpr int kPhiloxRounds = 10;

/// Philox4x32 with 10 rounds. Matches Random123's known-answer vectors (tests/unit/philox_test.cpp).
constexpr PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
    for (int round = 0; round < kPhiloxRounds; ++round) {
        if (round > 0) {
            key[0] += kPhiloxWeyl0;
            key[1] += kPhiloxWeyl1;
        }
        const std::uint64_t product0 = std::uint64_t{kPhiloxMultiplier0} * counter[0];
        const std::uint64_t product1 = std::uint64_t{kPhiloxMultiplier1} * counter[2];
        const auto hi0 = static_cast<std::uint32_t>(product0 >> 32);
        const auto lo0 = static_cast<std::uint32_t>(product0);
        const auto hi1 = static_cast<std::uint32_t>(product1 >> 32);
        const auto lo1 = static_cast<std::uint32_t>(product1);
        counter = {hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0};
    }
    return counter;
}

/// Elements per Philox group in the element -> word map above.
inline constexpr std::uint64_t kPhiloxGroupElements = 64;
/// Blocks (= SIMD lanes) per group.
inline constexpr std::uint64_t kPhiloxGroupBlocks = 16;

/// The 32-bit uniform random word that stochastic rounding uses for element `index` (map in the file header).
constexpr std::uint32_t stochastic_word(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    const std::uint64_t block = (index / kPhiloxGroupElements) * kPhiloxGroupBlocks + index % kPhiloxGroupBlocks;
    const auto word = static_cast<std::size_t>((index / kPhiloxGroupBlocks) % 4);
    const PhiloxCounter counter = {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                                   static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
    const PhiloxKey key = {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
    return philox4x32_10(counter, key)[word];
}

}  // namespace dojo::numerics
