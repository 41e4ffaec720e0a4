#include "dojo/numerics/convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <initializer_list>
#include <cmath>
#include <cstring>
#include <string>
#include <span>
#include <vector>

#include "dojo/util/error.h"

namespace dojo::numerics {
namespace {

TEST(Convert, RejectsMismatchedSpans) {
    const std::vector<float> in(10, 1.0f);
    std::vector<std::uint8_t> short_out(9);
    std::vector<std::uint16_t> wide(10);
    std::vector<std::uint8_t> narrow(10);
    EXPECT_THROW(encode(in, short_out, make_format(FormatKind::Cfp8_143)), UsageError);
    EXPECT_THROW(encode(in, wide, make_format(FormatKind::Cfp8_143)), UsageError);  // 8-bit format, 16-bit span
    EXPECT_THROW(encode(in, narrow, make_format(FormatKind::Shp)), UsageError);
    try {
        encode(in, wide, make_format(FormatKind::Cfp8_152));
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("std::uint8_t span"), std::string::npos) << error.what();
    }
}

TEST(Convert, RejectsBadThreadCountsAndUnavailablePaths) {
    const std::vector<float> in(10, 1.0f);
    std::vector<std::uint8_t> out(10);
    ConvertOptions options;
    options.threads = -1;
    EXPECT_THROW(encode(in, out, make_format(FormatKind::Cfp8_143), options), UsageError);
    for (const Isa isa : {Isa::Avx2, Isa::Avx512}) {
        ConvertOptions forced;
        forced.isa = isa;
        if (isa_available(isa)) {
            EXPECT_NO_THROW(encode(in, out, make_format(FormatKind::Cfp8_143), forced));
        } else {
            EXPECT_THROW(encode(in, out, make_format(FormatKind::Cfp8_143), forced), UsageError);
        }
    }
    EXPECT_TRUE(isa_available(best_isa()));
    EXPECT_EQ(parse_isa("avx2"), Isa::Avx2);
    EXPECT_THROW(parse_isa("neon9"), UsageError);
    EXPECT_THROW(parse_rounding("up"), UsageError);
}

TEST(Convert, Fp32IsTheIdentity) {
    const std::vector<float> in = {1.0f, -0.0f, 3e-40f, 1e38f};
    std::vector<float> out(in.size());
    EXPECT_FALSE(encode(in, out, make_format(FormatKind::Fp32)).any());
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(std::bit_cast<std::uint32_t>(out[i]), std::bit_cast<std::uint32_t>(in[i]));
    }
    EXPECT_EQ(encode_one(2.5f, make_format(FormatKind::Fp32)).code, std::bit_cast<std::uint32_t>(2.5f));
    EXPECT_EQ(decode_one(0x40200000u, make_format(FormatKind::Fp32)), 2.5f);
}

TEST(Convert, DecodeOneValidatesTheCodeWidth) {
    EXPECT_THROW(decode_one(0x100, make_format(FormatKind::Cfp8_143)), UsageError);
    EXPECT_THROW(decode_one(0x10000, make_format(FormatKind::Shp)), UsageError);
    EXPECT_EQ(decode_one(0x3F80, make_format(FormatKind::Bf16)), 1.0f);
}

TEST(Convert, FlagsReportDenormalInputsAndCodes) {
    const FormatSpec spec = make_format(FormatKind::Cfp8_143);
    EXPECT_TRUE(encode_one(1e-40f, spec).flags.has(Flag::Denormal));   // an FP32 denormal input
    EXPECT_FALSE(encode_one(1.0f, spec).flags.has(Flag::Denormal));
    const std::vector<std::uint8_t> codes = {0x01, 0x38};
    std::vector<float> values(2);
    EXPECT_TRUE(decode(codes, values, spec).has(Flag::Denormal));
    EXPECT_TRUE(is_denormal_code(0x01, spec));
    EXPECT_FALSE(is_denormal_code(0x80, spec));  // -0
}

TEST(Convert, Bf16TargetIsIeee) {
    const FormatSpec bf16 = make_format(FormatKind::Bf16);
    EXPECT_EQ(encode_one(1.0f, bf16).code, 0x3F80u);
    const EncodedValue overflow = encode_one(3.4e38f, bf16);  // rounds above the largest bf16
    EXPECT_EQ(overflow.code, 0x7F80u);
    EXPECT_TRUE(overflow.flags.has(Flag::Overflow));
    const EncodedValue inf = encode_one(-INFINITY, bf16);
    EXPECT_EQ(inf.code, 0xFF80u);
    EXPECT_FALSE(inf.flags.any());
    const EncodedValue nan = encode_one(std::bit_cast<float>(0x7fc12345u), bf16);
    EXPECT_EQ(nan.code, 0x7FC1u);
    EXPECT_FALSE(nan.flags.any());  // quiet NaN
    EXPECT_TRUE(encode_one(std::bit_cast<float>(0x7f812345u), bf16).flags.has(Flag::Invalid));  // signaling
}

TEST(Convert, LargeSpansUseThreadsWithTheSameResult) {
    std::vector<float> in(3 * kMinElementsPerThread + 5);
    for (std::size_t i = 0; i < in.size(); ++i) {
        in[i] = static_cast<float>(i % 997) * 0.01f - 4.0f;
    }
    std::vector<std::uint8_t> one(in.size());
    std::vector<std::uint8_t> all(in.size());
    ConvertOptions single;
    single.threads = 1;
    EXPECT_EQ(encode(in, one, make_format(FormatKind::Cfp8_143), single),
              encode(in, all, make_format(FormatKind::Cfp8_143)));
    EXPECT_EQ(one, all);
}

}  // namespace
}  // namespace dojo::numerics

namespace dojo::numerics {
namespace {

TEST(RoundToFormat, EqualsEncodeThenDecodeInPlaceAndAcrossThreads) {
    std::vector<float> in(3 * kMinElementsPerThread + 123);
    for (std::size_t i = 0; i < in.size(); ++i) {
        in[i] = std::sin(static_cast<float>(i)) * 300.0f;
    }
    for (const FormatSpec& spec : {make_format(FormatKind::Cfp8_143, 5), make_format(FormatKind::Shp, 10),
                                   make_format(FormatKind::Bf16)}) {
        ConvertOptions options;
        options.rounding = Rounding::Stochastic;
        options.seed = 9;
        options.first_index = 77;
        std::vector<float> expected(in.size());
        ConversionFlags expected_flags;
        if (spec.info().width_bits == 8) {  // two statements: the operands of | are unsequenced
            std::vector<std::uint8_t> codes(in.size());
            expected_flags = encode(in, codes, spec, options);
            expected_flags |= decode(codes, expected, spec);
        } else {
            std::vector<std::uint16_t> codes(in.size());
            expected_flags = encode(in, codes, spec, options);
            expected_flags |= decode(codes, expected, spec);
        }
        std::vector<float> out(in.size());
        EXPECT_EQ(round_to_format(in, out, spec, options), expected_flags) << to_string(spec);
        EXPECT_EQ(out, expected) << to_string(spec);
        std::vector<float> in_place = in;
        options.threads = 1;
        round_to_format(in_place, in_place, spec, options);
        EXPECT_EQ(in_place, expected) << to_string(spec) << " in place, one thread";
    }
}

// A PieceRounder walking a tensor in uneven pieces, out of order, gives round_to_format's values for the whole
// tensor (stochastic draws by tensor index; pieces that start and end inside Philox groups), and refuses the paper
// denormals it cannot handle.
TEST(RoundToFormat, PieceRounderGivesTheWholeTensorsValues) {
    std::vector<float> in(5000);
    for (std::size_t i = 0; i < in.size(); ++i) {
        in[i] = std::sin(static_cast<float>(i) * 0.37f) * 40.0f;
    }
    struct Case {
        FormatSpec spec;
        Rounding rounding;
    };
    for (const Case& c : {Case{make_format(FormatKind::Cfp8_152, 12), Rounding::Stochastic},
                          Case{make_format(FormatKind::Cfp8_143, 7), Rounding::NearestEven},
                          Case{make_format(FormatKind::Bf16), Rounding::NearestEven},
                          Case{make_format(FormatKind::Bf16), Rounding::Stochastic}}) {
        ConvertOptions options;
        options.rounding = c.rounding;
        options.seed = 4;
        options.stream = 21;
        std::vector<float> expected(in.size());
        const ConversionFlags expected_flags = round_to_format(in, expected, c.spec, options);
        const PieceRounder rounder(c.spec, options);
        std::vector<float> out(in.size(), 0.0f);
        ConversionFlags flags;
        const std::size_t bounds[] = {0, 37, 64, 1000, 1001, 2500, 4999, 5000};
        for (std::size_t k = std::size(bounds) - 1; k-- > 0;) {  // last piece first
            flags |= rounder.round(in.data() + bounds[k], out.data() + bounds[k], bounds[k + 1] - bounds[k],
                                   bounds[k]);
        }
        EXPECT_EQ(out, expected) << to_string(c.spec);
        EXPECT_EQ(flags, expected_flags) << to_string(c.spec);
        EXPECT_NE(out, in) << to_string(c.spec);
    }
    EXPECT_THROW(PieceRounder(make_format(FormatKind::Cfp8_143, 7, Denormals::Paper), {}), UsageError);
}

// PieceRounder::round_interleaved gives each of 16 interleaved runs round_to_format's values for the whole tensor at
// the runs' places, on every instruction set: runs a multiple of 64 apart (each window one Philox group), 16 apart
// but not 64 (the words rotate run by run), at odd distances and offsets (residues differ too), and lengths that
// end inside a window or fill less than one; in place and into another array; with zeros, tiny values and an
// overflow among them so the general lanes are drawn for too. The *_to_bf16_bits calls write the same values as
// BF16 patterns for the 8-bit formats, and refuse BF16 itself.
TEST(RoundToFormat, PieceRounderInterleavedRunsGetTheirPlainIndicesValues) {
    struct Layout {
        std::size_t stride;  // run_stride: elements between run c and run c + 1 in the tensor
        std::size_t count;   // elements of each run
        std::size_t first;   // first_index of run 0's first element
    };
    const Layout layouts[] = {{3136, 3136, 0}, {3136, 3136, 64 * 3136}, {784, 784, 16 * 784}, {196, 196, 0},
                              {49, 49, 49 * 16 * 5}, {1000, 130, 7}, {64, 64, 0}, {100, 9, 3}};
    struct Case {
        FormatSpec spec;
        Rounding rounding;
    };
    const Case cases[] = {{make_format(FormatKind::Cfp8_152, 12), Rounding::Stochastic},
                          {make_format(FormatKind::Cfp8_143, 7), Rounding::Stochastic},
                          {make_format(FormatKind::Cfp8_143, 7), Rounding::NearestEven},
                          {make_format(FormatKind::Bf16), Rounding::Stochastic}};
    for (const Layout& layout : layouts) {
        std::vector<float> plain(16 * layout.stride);
        for (std::size_t i = 0; i < plain.size(); ++i) {
            plain[i] = i % 5 == 0 ? 0.0f : std::sin(static_cast<float>(i) * 0.37f) * 40.0f;
        }
        plain[3] = 1e-30f;  // below every format's smallest normal here
        plain[plain.size() / 2 + 1] = 1e30f;  // overflows the CFloat8 formats
        std::vector<float> interleaved(16 * layout.count);
        for (std::size_t j = 0; j < layout.count; ++j) {
            for (std::size_t c = 0; c < 16; ++c) {
                interleaved[16 * j + c] = plain[c * layout.stride + j];
            }
        }
        for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
            if (!isa_available(isa)) {
                continue;
            }
            for (const Case& k : cases) {
                ConvertOptions options;
                options.isa = isa;
                options.rounding = k.rounding;
                options.seed = 4;
                options.stream = 21;
                const PieceRounder rounder(k.spec, options);
                std::vector<float> expected(interleaved.size());
                ConversionFlags expected_flags;
                for (std::size_t c = 0; c < 16; ++c) {
                    const auto from = plain.begin() + static_cast<std::ptrdiff_t>(c * layout.stride);
                    std::vector<float> run(from, from + static_cast<std::ptrdiff_t>(layout.count));
                    expected_flags |= rounder.round(run.data(), run.data(), run.size(),
                                                    layout.first + c * layout.stride);
                    for (std::size_t j = 0; j < layout.count; ++j) {
                        expected[16 * j + c] = run[j];
                    }
                }
                const std::string what = std::string(to_string(isa)) + " " + to_string(k.spec) + " " +
                                         std::string(to_string(k.rounding)) + ", runs " +
                                         std::to_string(layout.stride) + " apart";
                std::vector<float> out(interleaved.size(), 0.0f);
                EXPECT_EQ(rounder.round_interleaved(interleaved.data(), out.data(), layout.count, layout.first,
                                                    layout.stride),
                          expected_flags)
                    << what;
                ASSERT_EQ(0, std::memcmp(out.data(), expected.data(), out.size() * sizeof(float))) << what;
                std::vector<float> in_place = interleaved;
                rounder.round_interleaved(in_place.data(), in_place.data(), layout.count, layout.first,
                                          layout.stride);
                ASSERT_EQ(0, std::memcmp(in_place.data(), expected.data(), out.size() * sizeof(float))) << what;
                if (k.spec.info().width_bits != 8) {
                    EXPECT_THROW(rounder.round_interleaved_to_bf16_bits(interleaved.data(), nullptr, 1, 0, 1),
                                 UsageError);
                    continue;
                }
                // The same values as BF16 patterns (exact: an 8-bit format's values are BF16 values), same flags.
                std::vector<std::uint16_t> bits(interleaved.size(), 0x5555);
                EXPECT_EQ(rounder.round_interleaved_to_bf16_bits(interleaved.data(), bits.data(), layout.count,
                                                                 layout.first, layout.stride),
                          expected_flags)
                    << what;
                for (std::size_t i = 0; i < bits.size(); ++i) {
                    ASSERT_EQ(std::bit_cast<float>(std::uint32_t{bits[i]} << 16), expected[i]) << what << " " << i;
                }
                std::vector<std::uint16_t> plain_bits(interleaved.size(), 0x5555);
                ConversionFlags plain_flags;  // the plain call on one run, at its tensor index
                for (std::size_t c = 0; c < 16; ++c) {
                    std::vector<float> run(layout.count);
                    std::vector<std::uint16_t> run_bits(layout.count);
                    for (std::size_t j = 0; j < layout.count; ++j) {
                        run[j] = interleaved[16 * j + c];
                    }
                    plain_flags |= rounder.round_to_bf16_bits(run.data(), run_bits.data(), run.size(),
                                                              layout.first + c * layout.stride);
                    for (std::size_t j = 0; j < layout.count; ++j) {
                        ASSERT_EQ(std::bit_cast<float>(std::uint32_t{run_bits[j]} << 16), expected[16 * j + c])
                            << what << " run " << c << " element " << j;
                    }
                }
                EXPECT_EQ(plain_flags, expected_flags) << what;
            }
        }
    }
}

// The one-pass bf16 nearest-even path gives the values and flags of encoding and decoding, for every sign, exponent
// and mantissa of BF16 and the low halves around each rounding decision (ties, just above and below, all ones),
// NaNs (signaling and quiet), Inf, FP32 denormals and the overflow edge included.
TEST(RoundToFormat, Bf16NearestOnePassEqualsEncodeThenDecode) {
    const FormatSpec bf16 = make_format(FormatKind::Bf16);
    const std::uint32_t lows[] = {0x0000, 0x0001, 0x3fff, 0x4000, 0x7fff, 0x8000, 0x8001, 0xbfff, 0xc000, 0xffff};
    std::vector<float> in;
    for (std::uint32_t high = 0; high < 0x10000; ++high) {
        for (const std::uint32_t low : lows) {
            in.push_back(std::bit_cast<float>(high << 16 | low));
        }
    }
    std::vector<float> fast(in.size());
    round_to_bf16_nearest(in, fast);
    std::vector<float> values(in.size());  // the block kernel the fused elementwise kernels call
    round_to_bf16_nearest_values(in.data(), values.data(), in.size());
    ConvertOptions one;
    one.threads = 1;
    for (std::size_t i = 0; i < in.size(); ++i) {
        std::uint16_t code = 0;
        float expected = 0;
        ConversionFlags expected_flags = encode(std::span<const float>(&in[i], 1), std::span<std::uint16_t>(&code, 1),
                                                bf16, one);
        expected_flags |= decode(std::span<const std::uint16_t>(&code, 1), std::span<float>(&expected, 1), bf16, one);
        float single = 0;
        const ConversionFlags flags = round_to_bf16_nearest(std::span<const float>(&in[i], 1),
                                                            std::span<float>(&single, 1), one);
        const std::uint32_t pattern = std::bit_cast<std::uint32_t>(in[i]);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(fast[i]), std::bit_cast<std::uint32_t>(expected))
            << std::hex << "input 0x" << pattern;
        ASSERT_EQ(std::bit_cast<std::uint32_t>(single), std::bit_cast<std::uint32_t>(expected));
        ASSERT_EQ(std::bit_cast<std::uint32_t>(values[i]), std::bit_cast<std::uint32_t>(expected))
            << std::hex << "input 0x" << pattern << " (round_to_bf16_nearest_values)";
        ASSERT_EQ(flags, expected_flags) << std::hex << "input 0x" << pattern;
    }
}

// Encodes and decodes `in` (element j having index first + j) as two separate calls: what rounding must equal.
ConversionFlags encode_then_decode(std::span<const float> in, std::span<float> out, const FormatSpec& spec,
                                   const ConvertOptions& options) {
    ConversionFlags flags;
    if (spec.info().width_bits == 8) {
        std::vector<std::uint8_t> codes(in.size());
        flags = encode(in, std::span<std::uint8_t>(codes), spec, options);
        flags |= decode(std::span<const std::uint8_t>(codes), out, spec, options);
    } else {
        std::vector<std::uint16_t> codes(in.size());
        flags = encode(in, std::span<std::uint16_t>(codes), spec, options);
        flags |= decode(std::span<const std::uint16_t>(codes), out, spec, options);
    }
    return flags;
}

// The one-pass rounding kernels (encode and decode in registers) give encode-then-decode's values for `in` on every
// instruction set, format, the given biases and both roundings: the whole span on all threads, and its flags for every
// 64-element group on one (so a wrong flag cannot hide in a big OR).
void expect_one_pass_equals_encode_then_decode(const std::vector<float>& in, std::initializer_list<int> biases) {
    constexpr std::size_t kGroup = 64;
    std::vector<float> expected(in.size());
    std::vector<float> got(in.size());
    for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
        if (!isa_available(isa)) {
            continue;
        }
        for (const FormatKind kind : {FormatKind::Cfp8_143, FormatKind::Cfp8_152, FormatKind::Shp, FormatKind::Uhp}) {
            for (const int bias : biases) {
                for (const Rounding rounding : {Rounding::NearestEven, Rounding::Stochastic}) {
                    const FormatSpec spec = make_format(kind, bias);
                    ConvertOptions options;
                    options.isa = isa;
                    options.rounding = rounding;
                    options.seed = 3;
                    options.stream = 11;
                    options.first_index = 5;  // groups not aligned with the span
                    const std::string what = std::string(to_string(isa)) + " " + to_string(spec) + " " +
                                             std::string(to_string(rounding));
                    EXPECT_EQ(round_to_format(in, got, spec, options), encode_then_decode(in, expected, spec, options))
                        << what;
                    ASSERT_EQ(0, std::memcmp(got.data(), expected.data(), in.size() * sizeof(float))) << what;
                    options.threads = 1;
                    for (std::size_t at = 0; at < in.size(); at += kGroup) {
                        const std::size_t n = std::min(kGroup, in.size() - at);
                        const auto part = std::span<const float>(in).subspan(at, n);
                        options.first_index = 5 + at;
                        ASSERT_EQ(round_to_format(part, std::span<float>(got).subspan(at, n), spec, options),
                                  encode_then_decode(part, std::span<float>(expected).subspan(at, n), spec, options))
                            << what << ", elements from " << at;
                    }
                }
            }
        }
    }
}

// Every BF16 pattern with the low halves around each rounding decision, over a spread of biases.
TEST(RoundToFormat, OnePassEqualsEncodeThenDecodeOnEveryPath) {
    const std::uint32_t lows[] = {0x0000, 0x0001, 0x1000, 0x3fff, 0x4000, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff};
    std::vector<float> in;
    for (std::uint32_t high = 0; high < 0x10000; ++high) {
        for (const std::uint32_t low : lows) {
            in.push_back(std::bit_cast<float>(high << 16 | low));
        }
    }
    expect_one_pass_equals_encode_then_decode(in, {0, 7, 31, 63});
}

// Zeros among normal values (a ReLU's output, or its gradient) keep the one-pass kernel on its fast path; they must
// round to themselves, sign included, beside lanes that round, overflow or fall below the smallest normal.
TEST(RoundToFormat, OnePassEqualsEncodeThenDecodeWithZerosAmongNormalValues) {
    std::vector<float> in;
    for (std::uint32_t high = 0x3000; high < 0x5000; ++high) {  // 2^-31 .. 2^33 and their negatives
        for (const std::uint32_t low : {0x0000u, 0x7fffu, 0x8000u, 0xc001u}) {
            in.push_back(std::bit_cast<float>(high << 16 | low));
            in.push_back((high + low) % 3 == 0 ? -0.0f : 0.0f);
            in.push_back(-std::bit_cast<float>(high << 16 | low));
            in.push_back(0.0f);
        }
    }
    expect_one_pass_equals_encode_then_decode(in, {7, 15, 40});
}

}  // namespace
}  // namespace dojo::numerics
