// The executor's memory plan (runtime/arena_plan.h) and the storage bound to it (ir/storage.h).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "dojo/ir/storage.h"
#include "dojo/runtime/arena_plan.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

// Values live at the same time never share a byte; every offset is aligned; the arena holds every value and is at
// least the most bytes live at once.
void expect_valid(std::span<const Lifetime> lifetimes, const ArenaPlan& plan, std::size_t alignment) {
    ASSERT_EQ(plan.offset_bytes.size(), lifetimes.size());
    EXPECT_GE(plan.arena_bytes, plan.peak_live_bytes);
    for (std::size_t a = 0; a < lifetimes.size(); ++a) {
        EXPECT_EQ(plan.offset_bytes[a] % alignment, 0u) << a;
        EXPECT_LE(plan.offset_bytes[a] + lifetimes[a].bytes, plan.arena_bytes) << a;
        for (std::size_t b = a + 1; b < lifetimes.size(); ++b) {
            const bool same_time = lifetimes[a].first <= lifetimes[b].last && lifetimes[b].first <= lifetimes[a].last;
            if (!same_time || lifetimes[a].bytes == 0 || lifetimes[b].bytes == 0) {
                continue;
            }
            const bool apart = plan.offset_bytes[a] + lifetimes[a].bytes <= plan.offset_bytes[b] ||
                               plan.offset_bytes[b] + lifetimes[b].bytes <= plan.offset_bytes[a];
            ASSERT_TRUE(apart) << "values " << a << " and " << b << " live at the same time and overlap";
        }
    }
}

TEST(ArenaPlan, ValuesThatDoNotLiveTogetherShareBytes) {
    // a [0,1] and c [2,3] never meet: c reuses a's bytes; b [1,2] meets both. 100 bytes round up to 128.
    const std::vector<Lifetime> chain{{0, 1, 100}, {1, 2, 100}, {2, 3, 100}};
    const ArenaPlan plan = plan_arena(chain, 64);
    expect_valid(chain, plan, 64);
    EXPECT_EQ(plan.offset_bytes[0], plan.offset_bytes[2]);
    EXPECT_EQ(plan.arena_bytes, 256u);
    EXPECT_EQ(plan.peak_live_bytes, 256u);
}

TEST(ArenaPlan, ZeroByteValuesTakeNoSpace) {
    const std::vector<Lifetime> lifetimes{{0, 5, 0}, {0, 5, 64}};
    const ArenaPlan plan = plan_arena(lifetimes);
    EXPECT_EQ(plan.offset_bytes[0], 0u);
    EXPECT_EQ(plan.arena_bytes, 64u);
    EXPECT_EQ(plan.peak_live_bytes, 64u);
    EXPECT_EQ(plan_arena({}).arena_bytes, 0u);
}

TEST(ArenaPlan, RandomLifetimesNeverOverlapAndStayNearTheBound) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<Lifetime> lifetimes(200);
        for (Lifetime& l : lifetimes) {
            l.first = static_cast<std::uint32_t>(rng() % 100);
            l.last = l.first + static_cast<std::uint32_t>(rng() % 12);
            l.bytes = 4 * (1 + rng() % 5000);
        }
        const ArenaPlan plan = plan_arena(lifetimes, 64);
        expect_valid(lifetimes, plan, 64);
        // Greedy by size is not optimal, but on such lifetimes it stays within a third of the bound.
        EXPECT_LE(plan.arena_bytes, plan.peak_live_bytes * 4 / 3) << "trial " << trial;
    }
}

TEST(ArenaPlan, RejectsALifetimeThatEndsBeforeItStarts) {
    const std::vector<Lifetime> backwards{{3, 2, 8}};
    EXPECT_THROW(plan_arena(backwards), std::exception);
    EXPECT_THROW(plan_arena({}, 48), std::exception);  // not a power of two
}

TEST(Storage, BoundStorageKeepsItsPlace) {
    std::vector<float> arena(8, 0.0f);
    ir::Storage<float> bound = ir::Storage<float>::bound_to(arena.data() + 2, 3);
    EXPECT_TRUE(bound.bound());
    bound = std::vector<float>{1, 2, 3};  // copies into the arena
    EXPECT_EQ(arena, (std::vector<float>{0, 0, 1, 2, 3, 0, 0, 0}));
    bound = ir::Storage<float>{4, 5, 6};  // moving an owned storage in still copies: the binding stays
    EXPECT_EQ(bound.data(), arena.data() + 2);
    EXPECT_EQ(arena[4], 6.0f);
    bound.assign(3, 9.0f);
    EXPECT_EQ(arena[2], 9.0f);
    EXPECT_THROW(bound = std::vector<float>(4, 0.0f), Error);  // would overflow its place
    EXPECT_THROW(bound.assign(2, 0.0f), Error);
    EXPECT_EQ(arena[5], 0.0f);  // nothing written past it

    const ir::Storage<float> copy = bound;  // a copy owns its elements
    EXPECT_FALSE(copy.bound());
    EXPECT_EQ(copy, (std::vector<float>{9, 9, 9}));
    arena[2] = 1.0f;
    EXPECT_EQ(copy[0], 9.0f);

    ir::Storage<float> owned{1, 2};
    owned = std::vector<float>{1, 2, 3, 4};  // an owned storage takes any size
    EXPECT_EQ(owned.size(), 4u);
    EXPECT_THROW(static_cast<void>(owned.at(4)), Error);
}

}  // namespace
}  // namespace dojo::runtime
