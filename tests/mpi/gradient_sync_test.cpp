// GradientSync and ProcessGroup on real ranks: this binary runs under mpirun (tests/CMakeLists.txt starts it with
// 2 and 4 ranks); every rank runs every test and asserts on its own results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "dojo/runtime/gradient_sync.h"
#include "dojo/runtime/process_group.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

ProcessGroup* g_group = nullptr;

// Rank r's gradient k holds (k + 1) * sin(i + r) + r / 8: different on every rank, with a known mean.
float contribution(std::size_t k, std::size_t i, int rank) {
    return static_cast<float>((static_cast<double>(k) + 1) * std::sin(static_cast<double>(i) + rank) + rank / 8.0);
}

double exact_mean(std::size_t k, std::size_t i, int ranks) {
    double sum = 0;
    for (int r = 0; r < ranks; ++r) {
        sum += contribution(k, i, r);
    }
    return sum / ranks;
}

std::uint64_t bits_digest(const std::vector<std::vector<float>>& gradients) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const auto& g : gradients) {
        for (const float v : g) {
            std::uint32_t bits = 0;
            std::memcpy(&bits, &v, sizeof bits);
            hash = (hash ^ bits) * 0x100000001b3ULL;
        }
    }
    return hash;
}

struct Outcome {
    double worst_relative = 0;  // max |got - mean| / max |mean| over each gradient
    bool ranks_agree = false;
    std::size_t buckets = 0;
};

// Runs `steps` steps of a sync over gradients of `sizes`, ready in reverse order (as a backward pass makes them).
Outcome run_sync(const std::vector<std::size_t>& sizes, const GradientSyncOptions& options, int steps = 2) {
    ProcessGroup& group = *g_group;
    std::vector<std::size_t> order(sizes.size());
    std::iota(order.rbegin(), order.rend(), 0);
    GradientSync sync(group, sizes, order, options);
    std::vector<std::vector<float>> gradients(sizes.size());
    Outcome outcome;
    outcome.buckets = sync.buckets().size();
    for (int step = 1; step <= steps; ++step) {
        sync.begin_step(step);
        for (const std::size_t k : order) {
            gradients[k].resize(sizes[k]);
            for (std::size_t i = 0; i < sizes[k]; ++i) {
                gradients[k][i] = contribution(k, i, group.rank());
            }
            sync.ready(k, gradients[k]);
        }
        for (std::size_t k = 0; k < sizes.size(); ++k) {
            sync.wait(k, gradients[k]);
        }
    }
    for (std::size_t k = 0; k < sizes.size(); ++k) {
        double scale = 0;
        double error = 0;
        for (std::size_t i = 0; i < sizes[k]; ++i) {
            const double mean = exact_mean(k, i, group.size());
            scale = std::max(scale, std::abs(mean));
            error = std::max(error, std::abs(gradients[k][i] - mean));
        }
        outcome.worst_relative = std::max(outcome.worst_relative, error / scale);
    }
    const std::vector<std::uint64_t> digests = group.allgather(bits_digest(gradients));
    outcome.ranks_agree = std::all_of(digests.begin(), digests.end(), [&](auto d) { return d == digests[0]; });
    return outcome;
}

const std::vector<std::size_t> kSizes{1, 7, 1000, 250000, 3, 40000};

TEST(GradientSync, MeanOverRanksWithMpiAllReduce) {
    const Outcome o = run_sync(kSizes, GradientSyncOptions{});
    EXPECT_LT(o.worst_relative, 1e-6);
    EXPECT_TRUE(o.ranks_agree);
}

TEST(GradientSync, FixedOrderIsTheRankOrderSumOnEveryRank) {
    GradientSyncOptions options;
    options.order = ReduceOrder::Fixed;
    const Outcome o = run_sync(kSizes, options);
    EXPECT_LT(o.worst_relative, 1e-6);
    EXPECT_TRUE(o.ranks_agree);
}

TEST(GradientSync, SmallBucketsSplitAlongTheReadyOrder) {
    GradientSyncOptions options;
    options.bucket_bytes = 64 * 1024;  // 16384 floats: the two large gradients get buckets of their own
    options.order = ReduceOrder::Fixed;
    const Outcome o = run_sync(kSizes, options, 3);
    // ready order 5 (40000), 4 (3), 3 (250000), 2 (1000), 1 (7), 0 (1): buckets {5}, {4}, {3}, {2, 1, 0}
    EXPECT_EQ(o.buckets, 4u);
    EXPECT_LT(o.worst_relative, 1e-6);
    EXPECT_TRUE(o.ranks_agree);
}

// A compressed wire rounds each value twice (a rank's contribution, then the mean sent back), stochastically: the
// error stays within two ulps of the format, `mantissa_bits` after the point, relative to the largest mean; and it
// is larger than FP32 rounding, so the values did go through the format.
void expect_wire_accuracy(WireFormat wire, int mantissa_bits, double at_least) {
    GradientSyncOptions options;
    options.wire = wire;
    options.seed = 5;
    const Outcome o = run_sync(kSizes, options);
    EXPECT_LT(o.worst_relative, 2.0 * std::ldexp(1.0, -mantissa_bits)) << to_string(wire);
    EXPECT_GT(o.worst_relative, at_least) << to_string(wire);
    EXPECT_TRUE(o.ranks_agree) << to_string(wire);
}

TEST(GradientSync, Bf16WireKeepsBf16Accuracy) { expect_wire_accuracy(WireFormat::Bf16, 7, 1e-6); }

TEST(GradientSync, Cfp8WireKeepsCfp8Accuracy) { expect_wire_accuracy(WireFormat::Cfp8, 2, 1e-3); }

TEST(GradientSync, StochasticRoundingIsUnbiasedOnAverage) {
    // Many equal values that fall between two cfp8 codes: their mean after the wire stays near the true mean.
    ProcessGroup& group = *g_group;
    GradientSyncOptions options;
    options.wire = WireFormat::Cfp8;
    const std::vector<std::size_t> sizes{100000};
    const std::vector<std::size_t> order{0};
    GradientSync sync(group, sizes, order, options);
    std::vector<float> g(sizes[0], 1.1f);  // between the cfp8_152 neighbours 1.0 and 1.25
    g[0] = 1.25f;                           // sets the piece's max-abs, so the bias is the same on every rank
    sync.begin_step(1);
    sync.ready(0, g);
    sync.wait(0, g);
    const double mean = std::accumulate(g.begin() + 1, g.end(), 0.0) / static_cast<double>(g.size() - 1);
    EXPECT_NEAR(mean, 1.1, 0.005);
}

TEST(ProcessGroup, CollectivesSeeEveryRank) {
    ProcessGroup& group = *g_group;
    std::vector<double> values{1.0, static_cast<double>(group.rank())};
    group.allreduce_sum(values);
    EXPECT_EQ(values[0], group.size());
    EXPECT_EQ(values[1], group.size() * (group.size() - 1) / 2);
    std::vector<float> from_root{static_cast<float>(group.rank() + 10)};
    group.broadcast(std::span(from_root));
    EXPECT_EQ(from_root[0], 10.0f);
    const std::vector<std::uint64_t> all = group.allgather(static_cast<std::uint64_t>(group.rank()) * 3);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(group.size()));
    for (int r = 0; r < group.size(); ++r) {
        EXPECT_EQ(all[static_cast<std::size_t>(r)], static_cast<std::uint64_t>(r) * 3);
    }
}

TEST(ProcessGroup, BadOptionsAreUsageErrors) {
    EXPECT_THROW(ProcessGroup::from_environment(0), UsageError);
    GradientSyncOptions options;
    options.bucket_bytes = 0;
    const std::vector<std::size_t> sizes{4};
    const std::vector<std::size_t> order{0};
    EXPECT_THROW(GradientSync(*g_group, sizes, order, options), UsageError);
    EXPECT_THROW(parse_wire_format("fp16"), UsageError);
    EXPECT_THROW(parse_reduce_order("random"), UsageError);
}

}  // namespace
}  // namespace dojo::runtime

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    auto group = dojo::runtime::ProcessGroup::from_environment(120);
    if (!group->distributed()) {
        std::fprintf(stderr, "run this test under mpirun with at least 2 ranks\n");
        return 1;
    }
    dojo::runtime::g_group = group.get();
    if (group->rank() != 0) {  // one rank's report is enough; every rank's failures still fail the run
        ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
    }
    const int failed = RUN_ALL_TESTS();
    const std::vector<std::uint64_t> all = group->allgather(static_cast<std::uint64_t>(failed));
    const bool any_failed = std::any_of(all.begin(), all.end(), [](auto f) { return f != 0; });
    if (any_failed && group->rank() == 0) {
        std::fprintf(stderr, "a test failed on some rank\n");
    }
    return any_failed ? 1 : 0;
}
