// Stochastic rounding (cfloat.md F8): reproducible for a seed and stream, identical for any thread count and
// chunking, unbiased, and rounding up with probability D / 2^k.
//
// Statistical bound used below: with N independent roundings of x between lo and hi, each up with probability p,
// the count of ups has standard deviation sigma = sqrt(N p (1 - p)). Every check allows 6 sigma, so a correct
// implementation fails one check with probability below 2e-9 (normal approximation; N p(1-p) >= 1e4 here).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "dojo/numerics/convert.h"

namespace dojo::numerics {
namespace {

constexpr std::size_t kSamples = std::size_t{1} << 21;

std::vector<float> random_inputs(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<float> values(n);
    for (float& v : values) {
        v = normal(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 30);  // many binades, some denormal
    }
    return values;
}

ConvertOptions stochastic(std::uint64_t seed, std::uint64_t stream = 0) {
    ConvertOptions options;
    options.rounding = Rounding::Stochastic;
    options.seed = seed;
    options.stream = stream;
    return options;
}

TEST(StochasticRounding, SameSeedAndStreamGiveTheSameCodes) {
    const std::vector<float> in = random_inputs(100000, 1);
    const FormatSpec spec = make_format(FormatKind::Cfp8_143, 20);
    std::vector<std::uint8_t> a(in.size());
    std::vector<std::uint8_t> b(in.size());
    std::vector<std::uint8_t> other_seed(in.size());
    std::vector<std::uint8_t> other_stream(in.size());
    encode(in, a, spec, stochastic(42));
    encode(in, b, spec, stochastic(42));
    encode(in, other_seed, spec, stochastic(43));
    encode(in, other_stream, spec, stochastic(42, 1));
    EXPECT_EQ(a, b);
    // Different seeds or streams must draw different words: many inexact elements then round differently.
    std::size_t seed_differs = 0;
    std::size_t stream_differs = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        seed_differs += a[i] != other_seed[i];
        stream_differs += a[i] != other_stream[i];
    }
    EXPECT_GT(seed_differs, in.size() / 10);
    EXPECT_GT(stream_differs, in.size() / 10);
}

TEST(StochasticRounding, IdenticalForAnyThreadCountChunkingAndPath) {
    const std::vector<float> in = random_inputs(1'000'003, 2);  // not a multiple of any vector or group size
    for (const FormatSpec& spec : {make_format(FormatKind::Cfp8_152, 15, Denormals::Paper),
                                   make_format(FormatKind::Shp, 30)}) {
        const bool wide = spec.info().width_bits == 16;
        auto run = [&](const ConvertOptions& options, std::size_t first, std::size_t count, std::vector<std::uint16_t>& out) {
            const std::span<const float> part(in.data() + first, count);
            if (wide) {
                return encode(part, std::span<std::uint16_t>(out.data() + first, count), spec, options);
            }
            std::vector<std::uint8_t> narrow(count);
            const ConversionFlags flags = encode(part, narrow, spec, options);
            std::copy(narrow.begin(), narrow.end(), out.begin() + static_cast<std::ptrdiff_t>(first));
            return flags;
        };
        ConvertOptions one_thread = stochastic(7, 3);
        one_thread.threads = 1;
        one_thread.isa = Isa::Portable;
        std::vector<std::uint16_t> baseline(in.size());
        const ConversionFlags baseline_flags = run(one_thread, 0, in.size(), baseline);

        for (const int threads : {2, 3, 8}) {
            for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
                if (!isa_available(isa)) {
                    continue;
                }
                ConvertOptions options = stochastic(7, 3);
                options.threads = threads;
                options.isa = isa;
                std::vector<std::uint16_t> out(in.size());
                EXPECT_EQ(run(options, 0, in.size(), out), baseline_flags);
                EXPECT_EQ(out, baseline) << to_string(spec) << " threads " << threads << " " << to_string(isa);
            }
        }
        // Converted in ragged pieces, each told where it starts in the tensor.
        std::mt19937 rng(9);
        std::vector<std::uint16_t> pieces(in.size());
        ConversionFlags pieces_flags;
        for (std::size_t first = 0; first < in.size();) {
            const std::size_t count = std::min<std::size_t>(1 + rng() % 5000, in.size() - first);
            ConvertOptions options = stochastic(7, 3);
            options.first_index = first;
            pieces_flags |= run(options, first, count, pieces);
            first += count;
        }
        EXPECT_EQ(pieces, baseline) << to_string(spec) << " in pieces";
        EXPECT_EQ(pieces_flags, baseline_flags);
    }
}

struct ProbabilityCase {
    const char* what;
    FormatSpec spec;
    float x;
    double lo;
    double hi;
};

// N copies of x at indices 0..N-1: the fraction rounded up estimates P(up); the decoded mean estimates E[result].
void check_probability(const ProbabilityCase& c) {
    const std::vector<float> in(kSamples, c.x);
    std::vector<std::uint8_t> narrow(kSamples);
    std::vector<std::uint16_t> wide(kSamples);
    const bool is_wide = c.spec.info().width_bits == 16;
    if (is_wide) {
        encode(in, wide, c.spec, stochastic(1234));
    } else {
        encode(in, narrow, c.spec, stochastic(1234));
    }
    std::size_t ups = 0;
    double sum = 0.0;
    for (std::size_t i = 0; i < kSamples; ++i) {
        const float value = decode_one(is_wide ? wide[i] : narrow[i], c.spec);
        ASSERT_TRUE(value == c.lo || value == c.hi) << c.what << ": rounded to a non-neighbour " << value;
        ups += value == c.hi;
        sum += value;
    }
    const double p = (c.x - c.lo) / (c.hi - c.lo);  // = D / 2^k for power-of-two spacings
    const double n = static_cast<double>(kSamples);
    const double sigma = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(ups), n * p, 6 * sigma) << c.what << ": P(up) expected " << p;
    // Unbiased: E[result] = lo + p (hi - lo) = x.
    EXPECT_NEAR(sum / n, c.x, 6 * sigma / n * std::fabs(c.hi - c.lo)) << c.what << ": mean of roundings";
}

TEST(StochasticRounding, RoundsUpWithProbabilityDOver2ToTheKAndIsUnbiased) {
    const FormatSpec e4m3 = make_format(FormatKind::Cfp8_143, 7);
    const FormatSpec e5m2 = make_format(FormatKind::Cfp8_152, 15);
    const FormatSpec paper = make_format(FormatKind::Cfp8_143, 7, Denormals::Paper);
    const FormatSpec shp = make_format(FormatKind::Shp, 15);
    const ProbabilityCase cases[] = {
        {"normal, D/2^k = 1/2", e4m3, 1.0625f, 1.0, 1.125},
        {"normal, D/2^k = 1/4", e4m3, 1.03125f, 1.0, 1.125},
        {"normal, D/2^k = 0.3", e4m3, static_cast<float>(1.0 + 0.3 * 0.125), 1.0, 1.125},
        {"negative, symmetric", e4m3, -1.03125f, -1.0, -1.125},
        {"1_5_2 normal", e5m2, 1.1f, 1.0, 1.25},
        {"ieee denormal", e4m3, static_cast<float>(2.3 * std::ldexp(1.0, -9)), 2 * std::ldexp(1.0, -9),
         3 * std::ldexp(1.0, -9)},
        {"below the smallest denormal", e4m3, static_cast<float>(0.37 * std::ldexp(1.0, -9)), 0.0,
         std::ldexp(1.0, -9)},
        {"paper gap (hi - lo not a power of two)", paper, static_cast<float>(10.0 * std::ldexp(1.0, -10)),
         7 * std::ldexp(1.0, -10), 16 * std::ldexp(1.0, -10)},
        {"shp, k = 13", shp, static_cast<float>(1.0 + 0.7 * std::ldexp(1.0, -10)), 1.0, 1.0 + std::ldexp(1.0, -10)},
    };
    for (const ProbabilityCase& c : cases) {
        check_probability(c);
    }
}

TEST(StochasticRounding, RoundingPastMaxClampsWithOverflow) {
    // 480 < x < 512 (the unbounded successor of max): up means overflow, clamped to max.
    const FormatSpec spec = make_format(FormatKind::Cfp8_143, 7);
    const std::vector<float> in(4096, 500.0f);
    std::vector<std::uint8_t> out(in.size());
    const ConversionFlags flags = encode(in, out, spec, stochastic(8));
    for (const std::uint8_t code : out) {
        EXPECT_EQ(code, 0x7Fu);
    }
    EXPECT_TRUE(flags.has(Flag::Overflow));
    std::size_t overflowed = 0;
    for (std::uint64_t i = 0; i < in.size(); ++i) {
        ConvertOptions one = stochastic(8);
        one.first_index = i;
        overflowed += encode_one(500.0f, spec, one).flags.has(Flag::Overflow);
    }
    // P(up) = (500 - 480) / 32 = 0.625.
    const double sigma = std::sqrt(4096 * 0.625 * 0.375);
    EXPECT_NEAR(static_cast<double>(overflowed), 4096 * 0.625, 6 * sigma);
}

}  // namespace
}  // namespace dojo::numerics
