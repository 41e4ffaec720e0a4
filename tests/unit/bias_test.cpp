#include "dojo/numerics/bias.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "dojo/numerics/convert.h"
#include "dojo/util/error.h"

namespace dojo::numerics {
namespace {

TEST(ChooseBias, PicksTheLargestBiasWhoseMaxCoversTheTensor) {
    // cfp8_143: max = 61440 * 2^-bias. max_abs 480 fits exactly at bias 7, and not at 8 (max 240).
    EXPECT_EQ(choose_bias(FormatKind::Cfp8_143, 480.0).bias, 7);
    EXPECT_EQ(choose_bias(FormatKind::Cfp8_143, 480.5).bias, 6);
    EXPECT_EQ(choose_bias(FormatKind::Cfp8_143, 240.0).bias, 8);
    // One binade of headroom halves the usable max.
    EXPECT_EQ(choose_bias(FormatKind::Cfp8_143, 240.0, 1.0).bias, 7);
    // cfp8_152 at bias 15 has max 114688.
    EXPECT_EQ(choose_bias(FormatKind::Cfp8_152, 100000.0).bias, 15);
}

TEST(ChooseBias, ClampsAtTheEndsOfTheBiasRange) {
    const BiasChoice tiny = choose_bias(FormatKind::Cfp8_143, 1e-30);
    EXPECT_EQ(tiny.bias, 63);
    EXPECT_TRUE(tiny.fits);
    const BiasChoice huge = choose_bias(FormatKind::Cfp8_143, 1e6);
    EXPECT_EQ(huge.bias, 0);
    EXPECT_FALSE(huge.fits);
    EXPECT_EQ(choose_bias(FormatKind::Shp, 0.0).bias, 15);  // zeros: the default
}

TEST(ChooseBias, TheChosenBiasEncodesMaxAbsWithoutOverflow) {
    for (const double max_abs : {3.2e-12, 1e-6, 0.02, 1.0, 7.77, 1234.5}) {
        for (const FormatKind kind : kCfloatKinds) {
            const BiasChoice choice = choose_bias(kind, max_abs);
            ASSERT_TRUE(choice.fits);
            const auto value = static_cast<float>(max_abs);
            const EncodedValue e = encode_one(value, make_format(kind, choice.bias));
            EXPECT_FALSE(e.flags.has(Flag::Overflow)) << traits(kind).name << " " << max_abs;
            if (choice.bias < kMaxBias) {  // one more would not fit
                EXPECT_LT(range_of(make_format(kind, choice.bias + 1)).max, max_abs);
            }
        }
    }
}

TEST(ChooseBias, RejectsWhatHasNoAnswer) {
    EXPECT_THROW(choose_bias(FormatKind::Bf16, 1.0), UsageError);
    EXPECT_THROW(choose_bias(FormatKind::Cfp8_143, std::nan("")), UsageError);
    EXPECT_THROW(choose_bias(FormatKind::Cfp8_143, INFINITY), UsageError);
    EXPECT_THROW(choose_bias(FormatKind::Cfp8_143, -1.0), UsageError);
    EXPECT_THROW(choose_bias(FormatKind::Cfp8_143, 1.0, -1.0), UsageError);
}

TEST(MaxAbs, FindsTheLargestMagnitudeAndPropagatesSpecials) {
    std::vector<float> values(100000, 0.5f);
    values[777] = -3.25f;
    EXPECT_EQ(max_abs(values), 3.25f);
    EXPECT_EQ(max_abs(values, 1), 3.25f);
    values[5] = -INFINITY;
    EXPECT_EQ(max_abs(values), INFINITY);
    values[6] = std::nanf("");
    EXPECT_TRUE(std::isnan(max_abs(values)));
    EXPECT_EQ(max_abs(std::vector<float>{}), 0.0f);
    EXPECT_THROW(max_abs(values, -2), UsageError);
}

}  // namespace
}  // namespace dojo::numerics
