/** \file
 * Text helpers shared by every layer: exact decimal rendering of binary floating-point values, and the number a
 * text starts with (each command still decides what its input may hold; this only reads the digits).
 *
 * Non-goals: locale-dependent formatting or parsing.
 */
#pragma once

#include <string>

namespace dojo {

/// The exact decimal value of `value`, with no rounding: every binary double has a finite decimal
/// expansion. Plain notation for |value| >= 1e-4, scientific below ("2.5410988417629010172e-20" style, all digits
/// kept), "inf"/"-inf"/"nan" for non-finite values, "-0" for negative zero. Trailing zeros are dropped.
std::string exact_decimal(double value);

/// The number `text` starts with, as strtod reads it, and in `used` how many characters it took (0 when `text` does
/// not start with a number; then the result is 0). Out-of-range values come back as +-inf. Never throws.
double leading_number(const std::string& text, std::size_t& used);

}  // namespace dojo
