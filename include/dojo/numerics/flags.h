/** \file
 * Sticky exception flags of one conversion call (cfloat.md F9). Returned by value from every conversion;
 * there is no global flag state, so concurrent calls never interfere.
 *
 *   Invalid   a NaN input to a CFloat destination (it becomes +max), a negative non-zero input to UHP (it
 *             becomes +0), or a signaling NaN input to bf16 (IEEE).
 *   Denormal  an input operand was denormal in its own format: an FP32/BF16 denormal input, or a denormal code
 *             given to decode/transcode.
 *   Overflow  the result was clamped to +-max (CFloat) or became Inf (bf16): the input rounded, with an
 *             unbounded exponent, above the largest finite value; also +-Inf inputs to CFloat destinations.
 *   Underflow the result is tiny and inexact. Tiny: the input, rounded to the destination's precision with an
 *             unbounded exponent range (same rounding mode, same random word), is below the smallest normal.
 */
#pragma once

#include <cstdint>
#include <string>

namespace dojo::numerics {

enum class Flag : std::uint8_t {
    Invalid = 1,
    Denormal = 2,
    Overflow = 4,
    Underflow = 8,
};

/// A set of Flags.
class ConversionFlags {
public:
    constexpr ConversionFlags() = default;
    constexpr explicit ConversionFlags(std::uint8_t bits) : bits_(bits & kAllBits) {}

    constexpr bool has(Flag flag) const { return (bits_ & static_cast<std::uint8_t>(flag)) != 0; }
    constexpr bool any() const { return bits_ != 0; }
    constexpr std::uint8_t bits() const { return bits_; }
    constexpr void raise(Flag flag) { bits_ = static_cast<std::uint8_t>(bits_ | static_cast<std::uint8_t>(flag)); }

    constexpr ConversionFlags& operator|=(ConversionFlags other) {
        bits_ = static_cast<std::uint8_t>(bits_ | other.bits_);
        return *this;
    }
    friend constexpr ConversionFlags operator|(ConversionFlags a, ConversionFlags b) { return a |= b; }
    constexpr bool operator==(const ConversionFlags&) const = default;

    /// "none", or the raised flags in the order invalid, denormal, overflow, underflow, comma-separated.
    std::string to_string() const;

private:
    static constexpr std::uint8_t kAllBits = 0x0f;
    std::uint8_t bits_ = 0;
};

}  // namespace dojo::numerics
