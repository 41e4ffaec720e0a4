/** \file
 * Text helpers shared by every layer: exact decimal rendering of binary floating-point values.
 *
 * Non-goals: locale-dependent formatting, parsing (each command parses its own input at the edge).
 */
#pragma once

#include <string>

namespace dojo {

/// The exact decimal value of `value`, with no rounding: every binary double has a finite decimal
/// expansion. Plain notation for |value| >= 1e-4, scientific below ("2.5410988417629010172e-20" style, all digits
/// kept), "inf"/"-inf"/"nan" for non-finite values, "-0" for negative zero. Trailing zeros are dropped.
std::string exact_decimal(double value);

}  // namespace dojo
