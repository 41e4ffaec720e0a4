#include "dojo/numerics/flags.h"

#include <gtest/gtest.h>

namespace dojo::numerics {
namespace {

TEST(ConversionFlags, StartsEmptyAndAccumulates) {
    ConversionFlags flags;
    EXPECT_FALSE(flags.any());
    EXPECT_EQ(flags.to_string(), "none");
    flags.raise(Flag::Underflow);
    flags |= ConversionFlags(static_cast<std::uint8_t>(Flag::Invalid));
    EXPECT_TRUE(flags.has(Flag::Invalid));
    EXPECT_TRUE(flags.has(Flag::Underflow));
    EXPECT_FALSE(flags.has(Flag::Overflow));
    EXPECT_EQ(flags.to_string(), "invalid,underflow");
}

TEST(ConversionFlags, IgnoresBitsThatAreNoFlag) {
    EXPECT_EQ(ConversionFlags(0xff).bits(), 0x0f);
    EXPECT_EQ(ConversionFlags(0x0f).to_string(), "invalid,denormal,overflow,underflow");
}

}  // namespace
}  // namespace dojo::numerics
