// The test vectors of shared/spec/cfloat.md Part 2 §7 that Part 1 makes normative (groups A, C, D, and every
// "ieee" row), plus the "paper" rows under denormals=paper, and group F under F8's "round up iff r < D".
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "dojo/numerics/convert.h"
#include "dojo/numerics/format.h"
#include "dojo/numerics/philox.h"

namespace dojo::numerics {
namespace {

FormatSpec fmt(FormatKind kind, int bias, Denormals denormals = Denormals::Ieee) {
    return make_format(kind, bias, denormals);
}

constexpr auto k143 = FormatKind::Cfp8_143;
constexpr auto k152 = FormatKind::Cfp8_152;
constexpr auto kShp = FormatKind::Shp;
constexpr auto kUhp = FormatKind::Uhp;

struct DecodeVector {
    const char* id;
    FormatSpec spec;
    std::uint32_t code;
    double value;
};

TEST(CfloatVectors, GroupADecodesNormalCodesAndZero) {
    const DecodeVector vectors[] = {
        {"A1", fmt(k143, 7), 0x38, 1.0},
        {"A2", fmt(k143, 7), 0x3C, 1.5},
        {"A3", fmt(k143, 7), 0xC3, -2.75},
        {"A4", fmt(k143, 7), 0x7E, 448},
        {"A5", fmt(k143, 7), 0x7F, 480},
        {"A6", fmt(k143, 7), 0x08, std::ldexp(1.0, -6)},
        {"A7", fmt(k143, 0), 0x08, 2},
        {"A7", fmt(k143, 0), 0x7F, 61440},
        {"A8", fmt(k143, 31), 0x08, std::ldexp(1.0, -30)},
        {"A8", fmt(k143, 31), 0x7F, 1.875 * std::ldexp(1.0, -16)},
        {"A9", fmt(k143, 63), 0x08, std::ldexp(1.0, -62)},
        {"A9", fmt(k143, 63), 0x7F, 1.875 * std::ldexp(1.0, -48)},
        {"A10", fmt(k152, 15), 0x3C, 1.0},
        {"A11", fmt(k152, 15), 0x7B, 57344},
        {"A11", fmt(k152, 15), 0x7C, 65536},
        {"A11", fmt(k152, 15), 0x7F, 114688},
        {"A12", fmt(k152, 0), 0x04, 2},
        {"A12", fmt(k152, 0), 0x7F, 3758096384.0},
        {"A13", fmt(k152, 31), 0x04, std::ldexp(1.0, -30)},
        {"A13", fmt(k152, 31), 0x7F, 1.75},
        {"A14", fmt(k152, 63), 0x04, std::ldexp(1.0, -62)},
        {"A14", fmt(k152, 63), 0x7F, 1.75 * std::ldexp(1.0, -32)},
        {"A18", fmt(kShp, 15), 0x3C00, 1.0},
        {"A18", fmt(kShp, 15), 0x0400, std::ldexp(1.0, -14)},
        {"A18", fmt(kShp, 15), 0x7BFF, 65504},
        {"A19", fmt(kShp, 15), 0x7C00, 65536},
        {"A19", fmt(kShp, 15), 0x7FFF, 131008},
        {"A19", fmt(kShp, 15), 0xFFFF, -131008},
        {"A20", fmt(kUhp, 31), 0x7C00, 1.0},
        {"A20", fmt(kUhp, 31), 0x7E00, 1.5},
        {"A20", fmt(kUhp, 31), 0x0400, std::ldexp(1.0, -30)},
    };
    for (const DecodeVector& v : vectors) {
        EXPECT_EQ(decode_one(v.code, v.spec), v.value) << v.id << " " << to_string(v.spec) << " code " << v.code;
    }
    // A15/A16: 0x00 is +0 and 0x80 is -0 for both CFloat8 formats at every bias.
    for (const FormatKind kind : {k143, k152}) {
        for (int bias = 0; bias <= kMaxBias; ++bias) {
            const float plus = decode_one(0x00, fmt(kind, bias));
            const float minus = decode_one(0x80, fmt(kind, bias));
            EXPECT_EQ(plus, 0.0f);
            EXPECT_FALSE(std::signbit(plus));
            EXPECT_EQ(minus, 0.0f);
            EXPECT_TRUE(std::signbit(minus));
        }
    }
}

struct DenormalVector {
    const char* id;
    FormatKind kind;
    int bias;
    std::uint32_t code;
    double paper;
    double ieee;
};

TEST(CfloatVectors, GroupBDecodesDenormalsUnderBothScales) {
    const DenormalVector vectors[] = {
        {"B1", k143, 7, 0x01, 0.0009765625, 0.001953125},
        {"B2", k143, 7, 0x07, 0.0068359375, 0.013671875},
        {"B3", k143, 0, 0x01, 0.125, 0.25},
        {"B3", k143, 0, 0x07, 0.875, 1.75},
        {"B4", k152, 15, 0x01, std::ldexp(1.0, -17), std::ldexp(1.0, -16)},
        {"B4", k152, 15, 0x03, 3 * std::ldexp(1.0, -17), 3 * std::ldexp(1.0, -16)},
        {"B5", k152, 31, 0x01, std::ldexp(1.0, -33), std::ldexp(1.0, -32)},
        {"B6", kShp, 15, 0x0001, std::ldexp(1.0, -25), std::ldexp(1.0, -24)},
        {"B6", kShp, 15, 0x03FF, 1023 * std::ldexp(1.0, -25), 1023 * std::ldexp(1.0, -24)},
    };
    for (const DenormalVector& v : vectors) {
        EXPECT_EQ(decode_one(v.code, fmt(v.kind, v.bias, Denormals::Paper)), v.paper) << v.id << " paper";
        EXPECT_EQ(decode_one(v.code, fmt(v.kind, v.bias, Denormals::Ieee)), v.ieee) << v.id << " ieee";
    }
}

struct EncodeVector {
    const char* id;
    FormatSpec spec;
    float input;
    std::uint32_t code;
    std::uint8_t flags;  // Flag bits expected from this one conversion
};

constexpr std::uint8_t kNone = 0;
constexpr auto kOverflow = static_cast<std::uint8_t>(Flag::Overflow);
constexpr auto kUnderflow = static_cast<std::uint8_t>(Flag::Underflow);
constexpr auto kInvalid = static_cast<std::uint8_t>(Flag::Invalid);

float bits(std::uint32_t pattern) { return std::bit_cast<float>(pattern); }

void check_encode(const EncodeVector& v) {
    for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
        if (!isa_available(isa)) {
            continue;
        }
        ConvertOptions options;
        options.isa = isa;
        const EncodedValue result = encode_one(v.input, v.spec, options);
        EXPECT_EQ(result.code, v.code) << v.id << " " << to_string(v.spec) << " input " << v.input << " ("
                                       << to_string(isa) << ")";
        EXPECT_EQ(result.flags.bits(), v.flags) << v.id << " flags " << result.flags.to_string();
    }
}

TEST(CfloatVectors, GroupCRoundsToNearestEvenInTheNormalRange) {
    const EncodeVector vectors[] = {
        {"C1", fmt(k143, 7), bits(0x3F800000), 0x38, kNone},
        {"C2", fmt(k143, 7), bits(0x3E99999A), 0x2A, kNone},
        {"C3", fmt(k143, 7), bits(0x40490FDB), 0x45, kNone},
        {"C4", fmt(k143, 7), bits(0xC0300000), 0xC3, kNone},
        {"C5", fmt(k143, 7), bits(0x3F880000), 0x38, kNone},
        {"C6", fmt(k143, 7), bits(0x3F980000), 0x3A, kNone},
        {"C7", fmt(k143, 7), bits(0x3F880008), 0x39, kNone},
        {"C8", fmt(k143, 7), bits(0x43E80000), 0x7E, kNone},
        {"C8", fmt(k143, 7), bits(0x43EF8000), 0x7F, kNone},
        {"C9", fmt(k152, 15), bits(0x47700000), 0x7C, kNone},
        {"C10", fmt(k152, 15), 1.125f, 0x3C, kNone},
        {"C10", fmt(k152, 15), 1.375f, 0x3E, kNone},
        {"C11", fmt(k152, 31), 1.0f, 0x7C, kNone},
        {"C11", fmt(k152, 31), 0.5f, 0x78, kNone},
        {"C12", fmt(k152, 15), bits(0x3E99999A), 0x35, kNone},
        {"C13", fmt(kShp, 15), bits(0x3F801000), 0x3C00, kNone},
        {"C13", fmt(kShp, 15), bits(0x3F803000), 0x3C02, kNone},
    };
    for (const EncodeVector& v : vectors) {
        check_encode(v);
    }
}

TEST(CfloatVectors, C7RoundsOnceNotThroughBf16) {
    // 1.0625 + 2^-20 rounds up to 0x39 directly; through BF16 (0x3F88 = 1.0625, a tie) it would give 0x38.
    const FormatSpec spec = fmt(k143, 7);
    EXPECT_EQ(encode_one(bits(0x3F880008), spec).code, 0x39u);
    const std::uint16_t as_bf16[] = {0x3F88};
    std::uint8_t code[1] = {};
    encode_bf16(as_bf16, code, spec);
    EXPECT_EQ(code[0], 0x38u);
}

TEST(CfloatVectors, GroupDOverflowAndSpecialInputs) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const EncodeVector vectors[] = {
        {"D1", fmt(k143, 7), 488.0f, 0x7F, kNone},
        {"D2", fmt(k143, 7), 496.0f, 0x7F, kOverflow},
        {"D3", fmt(k143, 7), 500.0f, 0x7F, kOverflow},
        {"D3", fmt(k143, 7), 1e9f, 0x7F, kOverflow},
        {"D3", fmt(k143, 7), -1e9f, 0xFF, kOverflow},
        {"D4", fmt(k143, 7), inf, 0x7F, kOverflow},
        {"D4", fmt(k143, 7), -inf, 0xFF, kOverflow},
        {"D5", fmt(k143, 7), nan, 0x7F, kInvalid},  // decision F6: +max
        {"D5", fmt(k143, 7), -nan, 0x7F, kInvalid},
        {"D6", fmt(k152, 15), 122880.0f, 0x7F, kOverflow},
        {"D6", fmt(k152, 15), 1048576.0f, 0x7F, kOverflow},
        {"D7", fmt(k152, 31), 1.9f, 0x7F, kOverflow},
        {"D7", fmt(k152, 31), 2.0f, 0x7F, kOverflow},
        {"D8", fmt(kShp, 15), 65520.0f, 0x7C00, kNone},
        {"D9", fmt(kShp, 15), 131040.0f, 0x7FFF, kOverflow},
        {"D9", fmt(kShp, 15), 1e6f, 0x7FFF, kOverflow},
        {"D9", fmt(kShp, 15), -1e6f, 0xFFFF, kOverflow},
        {"D10", fmt(k143, 7), 0.0f, 0x00, kNone},
        {"D10", fmt(k143, 7), -0.0f, 0x80, kNone},
        {"D10", fmt(k152, 15), -0.0f, 0x80, kNone},
        {"D10", fmt(kShp, 15), -0.0f, 0x8000, kNone},
        {"F11", fmt(kUhp, 31), -1.0f, 0x0000, kInvalid},  // decision F11: negative -> +0, Invalid
        {"F11", fmt(kUhp, 31), -0.0f, 0x0000, kNone},
    };
    for (const EncodeVector& v : vectors) {
        check_encode(v);
    }
}

TEST(CfloatVectors, GroupEUnderflowAndDenormalRangeBothReadings) {
    struct Row {
        const char* id;
        FormatKind kind;
        int bias;
        std::uint32_t input;
        std::uint32_t paper;
        std::uint8_t paper_flags;
        std::uint32_t ieee;
        std::uint8_t ieee_flags;
    };
    const Row rows[] = {
        {"E1", k143, 7, 0x3C000000, 0x07, kUnderflow, 0x04, kNone},
        {"E2", k143, 7, 0x3A800000, 0x01, kNone, 0x00, kUnderflow},
        {"E3", k143, 7, 0x3A000000, 0x00, kUnderflow, 0x00, kUnderflow},
        {"E4", k143, 7, 0x3AC00000, 0x02, kUnderflow, 0x01, kUnderflow},
        {"E5", k143, 7, 0x3C380000, 0x08, kUnderflow, 0x06, kUnderflow},
        {"E6", k143, 0, 0x3F800000, 0x07, kUnderflow, 0x04, kNone},
        {"E7", k143, 0, 0x3DCCCCCD, 0x01, kUnderflow, 0x00, kUnderflow},
        {"E8", k152, 15, 0x37000000, 0x01, kNone, 0x00, kUnderflow},
        {"E9", k152, 15, 0x37800000, 0x02, kNone, 0x01, kNone},
        {"E10", kShp, 15, 0x33000000, 0x0001, kNone, 0x0000, kUnderflow},
        {"E10", kShp, 15, 0x33400000, 0x0002, kUnderflow, 0x0001, kUnderflow},
        {"E11", k143, 7, std::bit_cast<std::uint32_t>(1e-30f), 0x00, kUnderflow, 0x00, kUnderflow},
        {"E11", kShp, 15, std::bit_cast<std::uint32_t>(1e-30f), 0x0000, kUnderflow, 0x0000, kUnderflow},
    };
    for (const Row& r : rows) {
        check_encode({r.id, fmt(r.kind, r.bias, Denormals::Paper), bits(r.input), r.paper, r.paper_flags});
        check_encode({r.id, fmt(r.kind, r.bias, Denormals::Ieee), bits(r.input), r.ieee, r.ieee_flags});
    }
}

// Group F under F8: with k = 20 discarded bits, the element's 32-bit word w acts as r = w >> 12, and the value
// rounds up iff r < D. We cannot choose Philox's words, so we search for indices whose word gives the r we want
// to test against, exactly at the boundary r = D - 1 (up) and r = D (down).
TEST(CfloatVectors, GroupFStochasticRoundingFollowsRLessThanD) {
    const FormatSpec spec = fmt(k143, 7);
    struct Row {
        const char* id;
        float input;
        std::uint32_t d;  // the 20 discarded bits
        std::uint32_t down;
        std::uint32_t up;
    };
    const Row rows[] = {
        {"F1/F2", bits(0x3F880000), 0x80000, 0x38, 0x39},
        {"F3", bits(0x3F840000), 0x40000, 0x38, 0x39},
        {"F4", bits(0xBF880000), 0x80000, 0xB8, 0xB9},
    };
    for (const Row& row : rows) {
        int ups = 0;
        int downs = 0;
        for (std::uint64_t index = 0; index < 4096; ++index) {
            ConvertOptions options;
            options.rounding = Rounding::Stochastic;
            options.seed = 99;
            options.first_index = index;
            const std::uint32_t r = stochastic_word(99, 0, index) >> 12;
            const std::uint32_t code = encode_one(row.input, spec, options).code;
            EXPECT_EQ(code, r < row.d ? row.up : row.down) << row.id << " r=" << r;
            (code == row.up ? ups : downs)++;
        }
        EXPECT_GT(ups, 0) << row.id;
        EXPECT_GT(downs, 0) << row.id;
    }
    // F5: exact inputs never round, whatever the word.
    for (std::uint64_t index = 0; index < 1024; ++index) {
        ConvertOptions options;
        options.rounding = Rounding::Stochastic;
        options.first_index = index;
        EXPECT_EQ(encode_one(1.125f, spec, options).code, 0x39u);
    }
}

}  // namespace
}  // namespace dojo::numerics
