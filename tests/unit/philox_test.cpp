#include "dojo/numerics/philox.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

namespace dojo::numerics {
namespace {

// Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter[4] key[2] -> result[4].
TEST(Philox, MatchesRandom123KnownAnswerVectors) {
    EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
              (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
    EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
              (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
    EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
              (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, IsUsableAtCompileTime) {
    static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0})[0] == 0x6627e8d5u);
}

TEST(Philox, ElementWordMapFollowsTheDocumentedLayout) {
    const std::uint64_t seed = 0x0123456789abcdefULL;
    const std::uint64_t stream = 0xfedcba9876543210ULL;
    const PhiloxKey key = {0x89abcdefu, 0x01234567u};
    for (const std::uint64_t index : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{17}, std::uint64_t{63},
                                      std::uint64_t{64}, std::uint64_t{1000}, (std::uint64_t{1} << 40) + 77}) {
        const std::uint64_t block = (index / 64) * 16 + index % 16;
        const PhiloxCounter counter = {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                                       0x76543210u, 0xfedcba98u};
        EXPECT_EQ(stochastic_word(seed, stream, index), philox4x32_10(counter, key)[(index / 16) % 4]) << index;
    }
}

TEST(Philox, EveryBlockWordPairIsUsedByExactlyOneElement) {
    std::set<std::pair<std::uint64_t, std::uint64_t>> used;
    for (std::uint64_t index = 0; index < 64 * 8; ++index) {
        const std::uint64_t block = (index / 64) * 16 + index % 16;
        EXPECT_TRUE(used.emplace(block, (index / 16) % 4).second) << index;
    }
}

}  // namespace
}  // namespace dojo::numerics
