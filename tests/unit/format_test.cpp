#include "dojo/numerics/format.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dojo/util/error.h"

namespace dojo::numerics {
namespace {

TEST(Format, ParsesEveryNameAndRejectsOthersListingTheValidOnes) {
    for (const FormatKind kind : kAllFormatKinds) {
        EXPECT_EQ(parse_format_kind(traits(kind).name), kind);
    }
    try {
        parse_format_kind("fp8");
        FAIL() << "expected UsageError";
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("unknown format 'fp8'"), std::string::npos);
        EXPECT_NE(std::string(error.what()).find("cfp8_143, cfp8_152, shp, uhp, bf16, fp32"), std::string::npos);
    }
}

TEST(Format, LayoutsFollowTheSpec) {
    EXPECT_EQ(traits(FormatKind::Cfp8_143).exponent_bits, 4);
    EXPECT_EQ(traits(FormatKind::Cfp8_143).mantissa_bits, 3);
    EXPECT_EQ(traits(FormatKind::Cfp8_152).exponent_bits, 5);
    EXPECT_EQ(traits(FormatKind::Shp).mantissa_bits, 10);
    EXPECT_EQ(traits(FormatKind::Uhp).sign_bits, 0);
    EXPECT_EQ(traits(FormatKind::Uhp).exponent_bits, 6);
    EXPECT_TRUE(traits(FormatKind::Uhp).provisional);
    for (const FormatKind kind : kAllFormatKinds) {
        const FormatTraits& t = traits(kind);
        EXPECT_EQ(t.sign_bits + t.exponent_bits + t.mantissa_bits, t.width_bits) << t.name;
    }
}

TEST(Format, DefaultBiasesAreF2s) {
    EXPECT_EQ(make_format(FormatKind::Cfp8_143).bias, 7);
    EXPECT_EQ(make_format(FormatKind::Cfp8_152).bias, 15);
    EXPECT_EQ(make_format(FormatKind::Shp).bias, 15);
    EXPECT_EQ(make_format(FormatKind::Uhp).bias, 31);
    EXPECT_EQ(make_format(FormatKind::Bf16).bias, 127);
}

TEST(Format, RejectsBiasOutOfRangeAndBiasOnFixedFormats) {
    EXPECT_NO_THROW(make_format(FormatKind::Cfp8_143, 0));
    EXPECT_NO_THROW(make_format(FormatKind::Cfp8_143, 63));
    EXPECT_THROW(make_format(FormatKind::Cfp8_143, 64), UsageError);
    EXPECT_THROW(make_format(FormatKind::Bf16, 7), UsageError);
    EXPECT_NO_THROW(make_format(FormatKind::Bf16, 127));
    EXPECT_THROW(make_format(FormatKind::Fp32, -1, Denormals::Paper), UsageError);
    try {
        make_format(FormatKind::Shp, 70);
    } catch (const UsageError& error) {
        EXPECT_NE(std::string(error.what()).find("0..63"), std::string::npos);
    }
}

TEST(Format, NamesRoundTrip) {
    EXPECT_EQ(to_string(make_format(FormatKind::Cfp8_143, 7)), "cfp8_143(bias=7)");
    EXPECT_EQ(to_string(make_format(FormatKind::Shp, 3, Denormals::Paper)), "shp(bias=3,denormals=paper)");
    EXPECT_EQ(to_string(make_format(FormatKind::Bf16)), "bf16");
    EXPECT_EQ(parse_denormals("paper"), Denormals::Paper);
    EXPECT_THROW(parse_denormals("ftz"), UsageError);
}

// cfloat.md §6.2, selected biases.
TEST(Format, RangesMatchSpecTable) {
    struct Row {
        FormatKind kind;
        int bias;
        double max;
        double min_normal;
        double min_denormal_paper;
        double min_denormal_ieee;
    };
    const Row rows[] = {
        {FormatKind::Cfp8_143, 0, 61440, 2, 0.125, 0.25},
        {FormatKind::Cfp8_143, 7, 480, std::ldexp(1.0, -6), std::ldexp(1.0, -10), std::ldexp(1.0, -9)},
        {FormatKind::Cfp8_143, 63, 1.875 * std::ldexp(1.0, -48), std::ldexp(1.0, -62), std::ldexp(1.0, -66),
         std::ldexp(1.0, -65)},
        {FormatKind::Cfp8_152, 0, 3758096384.0, 2, 0.25, 0.5},
        {FormatKind::Cfp8_152, 15, 114688, std::ldexp(1.0, -14), std::ldexp(1.0, -17), std::ldexp(1.0, -16)},
        {FormatKind::Cfp8_152, 31, 1.75, std::ldexp(1.0, -30), std::ldexp(1.0, -33), std::ldexp(1.0, -32)},
        {FormatKind::Shp, 0, 4292870144.0, 2, std::ldexp(1.0, -10), std::ldexp(1.0, -9)},
        {FormatKind::Shp, 15, 131008, std::ldexp(1.0, -14), std::ldexp(1.0, -25), std::ldexp(1.0, -24)},
        {FormatKind::Shp, 63, 2047 * std::ldexp(1.0, -42), std::ldexp(1.0, -62), std::ldexp(1.0, -73),
         std::ldexp(1.0, -72)},
        {FormatKind::Uhp, 31, 8585740288.0, std::ldexp(1.0, -30), std::ldexp(1.0, -41), std::ldexp(1.0, -40)},
    };
    for (const Row& row : rows) {
        const FormatRange ieee = range_of(make_format(row.kind, row.bias, Denormals::Ieee));
        const FormatRange paper = range_of(make_format(row.kind, row.bias, Denormals::Paper));
        EXPECT_EQ(ieee.max, row.max) << traits(row.kind).name << " bias " << row.bias;
        EXPECT_EQ(ieee.min_normal, row.min_normal);
        EXPECT_EQ(ieee.min_denormal, row.min_denormal_ieee);
        EXPECT_EQ(paper.min_denormal, row.min_denormal_paper);
        EXPECT_EQ(paper.max, row.max);
    }
    const FormatRange e4m3 = range_of(make_format(FormatKind::Cfp8_143, 7));
    EXPECT_EQ(e4m3.epsilon, 0.125);
    EXPECT_EQ(e4m3.max_code, 0x7Fu);
    EXPECT_DOUBLE_EQ(e4m3.binades, std::log2(480.0 / std::ldexp(1.0, -9)));
    EXPECT_EQ(range_of(make_format(FormatKind::Bf16)).max_code, 0x7F7Fu);
}

}  // namespace
}  // namespace dojo::numerics
