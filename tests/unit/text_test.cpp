#include "dojo/util/text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace dojo {
namespace {

TEST(ExactDecimal, PrintsEveryDigitOfADyadicValue) {
    EXPECT_EQ(exact_decimal(1.0), "1");
    EXPECT_EQ(exact_decimal(0.3125), "0.3125");
    EXPECT_EQ(exact_decimal(-2.75), "-2.75");
    EXPECT_EQ(exact_decimal(0.0068359375), "0.0068359375");
    EXPECT_EQ(exact_decimal(std::ldexp(1.0, 64)), "18446744073709551616");
    // 15 * 2^-69: 50 significant digits, no rounding.
    EXPECT_EQ(exact_decimal(std::ldexp(15.0, -69)), "2.5410988417629010172049675020389258861541748046875e-20");
    // The float nearest 0.3 is not 0.3.
    EXPECT_EQ(exact_decimal(0.3f), "0.300000011920928955078125");
}

TEST(ExactDecimal, NamesSpecialValues) {
    EXPECT_EQ(exact_decimal(-0.0), "-0");
    EXPECT_EQ(exact_decimal(std::numeric_limits<double>::infinity()), "inf");
    EXPECT_EQ(exact_decimal(-std::numeric_limits<double>::infinity()), "-inf");
    EXPECT_EQ(exact_decimal(std::numeric_limits<double>::quiet_NaN()), "nan");
}

}  // namespace
}  // namespace dojo
