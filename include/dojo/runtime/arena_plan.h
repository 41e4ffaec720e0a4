/** \file
 * The executor's static memory plan: one arena per graph, every stored value at a fixed offset in it, two values
 * sharing bytes only when their lifetimes do not overlap (liveness-based reuse). Planned once, before the first
 * step; every step then uses the same places, so nothing is allocated while training.
 *
 * A lifetime is the closed range of positions [first, last] in the executor's run order from the position that
 * computes a value to the last position that reads it (values computed and read at one position, such as a node's
 * inputs and output, overlap and never share). Values that live for the whole run (leaves, outputs, kept nodes) take
 * [0, positions).
 *
 * The placement is greedy by size (largest first, each at the lowest aligned offset free over its lifetime; the
 * heuristic of Pisarchyk and Lee, "Efficient Memory Management for Deep Neural Net Inference", 2020), which is
 * within a few percent of the lower bound (the most bytes live at any one position) on training graphs.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dojo::runtime {

struct Lifetime {
    std::uint32_t first = 0;  ///< the position that writes the value
    std::uint32_t last = 0;   ///< the last position that reads it (>= first)
    std::size_t bytes = 0;
};

struct ArenaPlan {
    std::vector<std::size_t> offset_bytes;  ///< [k]: where lifetime k's value starts; a multiple of the alignment
    std::size_t arena_bytes = 0;            ///< the arena's size: the end of the highest placed value
    std::size_t peak_live_bytes = 0;        ///< the most bytes live at one position (no plan can use less)
};

/// Places every lifetime (zero-byte ones at offset 0, sharing nothing). `alignment_bytes` must be a power of two.
ArenaPlan plan_arena(std::span<const Lifetime> lifetimes, std::size_t alignment_bytes = 64);

}  // namespace dojo::runtime
