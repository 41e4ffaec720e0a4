/** \file
 * The number formats OpenDojo computes in, and how a tensor's format is described.
 *
 * Semantics are fixed by shared/spec/cfloat.md Part 1 (decisions F1-F11); this header restates the ones a
 * caller must know. Every CFloat value (any format, any bias, either denormal scale) is exactly representable
 * in FP32, so decoding is always exact.
 *
 *   format     sign exp man  bias           top exponent     Inf/NaN  overflow        notes
 *   cfp8_143   1    4   3    0..63 (def 7)  ordinary binade  none     clamp to +-max
 *   cfp8_152   1    5   2    0..63 (def 15) ordinary binade  none     clamp to +-max
 *   shp        1    5   10   0..63 (def 15) ordinary binade  none     clamp to +-max  CFloat16 signed half
 *   uhp        0    6   10   0..63 (def 31) ordinary binade  none     clamp to +max   provisional (F11)
 *   bf16       1    8   7    127 (fixed)    Inf/NaN          IEEE     to Inf
 *   fp32       1    8   23   127 (fixed)    Inf/NaN          IEEE     the source format: identity
 *
 * CFloat values: normal (E >= 1) = (-1)^s * (1 + M/2^m) * 2^(E - bias). Denormal (E = 0, M != 0):
 *   Denormals::Ieee  (default) (-1)^s * (M/2^m) * 2^(1 - bias)   gradual underflow, no gap
 *   Denormals::Paper           (-1)^s * (M/2^m) * 2^(-bias)      the white paper's literal text; leaves a gap
 *                                                                 between the largest denormal and 2^(1-bias)
 * Zero: code 0 is +0, the sign bit alone is -0 (they compare equal). UHP has no sign bit.
 * The bias is not part of a code: it travels with the tensor (a FormatSpec per tensor).
 */
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace dojo::numerics {

enum class FormatKind : std::uint8_t {
    Cfp8_143,  ///< CFloat8 1-4-3
    Cfp8_152,  ///< CFloat8 1-5-2
    Shp,       ///< CFloat16 signed half, 1-5-10
    Uhp,       ///< CFloat16 unsigned half, 0-6-10 (provisional, cfloat.md F11)
    Bf16,      ///< bfloat16, IEEE semantics
    Fp32,      ///< IEEE binary32
};

/// Every FormatKind, in declaration order (for listings, help text and exhaustive tests).
inline constexpr FormatKind kAllFormatKinds[] = {FormatKind::Cfp8_143, FormatKind::Cfp8_152, FormatKind::Shp,
                                                 FormatKind::Uhp,      FormatKind::Bf16,     FormatKind::Fp32};

/// The four configurable-bias CFloat formats.
inline constexpr FormatKind kCfloatKinds[] = {FormatKind::Cfp8_143, FormatKind::Cfp8_152, FormatKind::Shp,
                                              FormatKind::Uhp};

/// Scale of CFloat denormals (cfloat.md F4). Bf16/Fp32 ignore it (always IEEE).
enum class Denormals : std::uint8_t {
    /// value = M/2^m * 2^(1-bias). Pros: gradual underflow with no gap, matches IEEE, OCP FP8 and LoFloat's Dojo
    /// presets. Cons: differs from the only normative text Tesla published. The project default.
    Ieee,
    /// value = M/2^m * 2^(-bias), the white paper's literal formula. Pros: follows the surviving text. Cons: a gap
    /// between the largest denormal and the smallest normal; values in it round to one of the two neighbours.
    Paper,
};

/// Bit layout and fixed properties of a format kind.
struct FormatTraits {
    std::string_view name;     ///< the name users type: "cfp8_143", ...
    int sign_bits;             ///< 0 or 1
    int exponent_bits;         ///< e
    int mantissa_bits;         ///< m (stored bits, without the hidden bit)
    int width_bits;            ///< 8, 16 or 32
    int default_bias;          ///< bias used when none is given
    bool configurable_bias;    ///< true for the CFloat formats (bias 0..63)
    bool has_inf_nan;          ///< IEEE specials (bf16, fp32); CFloat formats saturate instead
    bool provisional;          ///< semantics partly decided by the project, not the paper (UHP)
};

/// Traits of `kind`.
const FormatTraits& traits(FormatKind kind);

/// The kind whose name is `name` ("cfp8_143", "cfp8_152", "shp", "uhp", "bf16", "fp32").
/// Throws UsageError listing the valid names otherwise.
FormatKind parse_format_kind(std::string_view name);

/// Largest bias a CFloat format accepts (6-bit unsigned field, cfloat.md F2).
inline constexpr int kMaxBias = 63;

/// A complete description of how one tensor's values are encoded: kind, bias and denormal scale.
/// Construct with make_format(), which validates; a FormatSpec obtained that way is always valid.
struct FormatSpec {
    FormatKind kind = FormatKind::Fp32;
    int bias = 127;
    Denormals denormals = Denormals::Ieee;

    const FormatTraits& info() const { return traits(kind); }
    bool operator==(const FormatSpec&) const = default;
};

/// A validated FormatSpec. `bias` < 0 means "the format's default bias". Throws UsageError if the bias is out of
/// 0..63 for a CFloat format, or is given (and differs from 127) for bf16/fp32, whose bias is fixed.
FormatSpec make_format(FormatKind kind, int bias = -1, Denormals denormals = Denormals::Ieee);

/// "cfp8_143(bias=7)", "cfp8_143(bias=7,denormals=paper)", "bf16".
std::string to_string(const FormatSpec& spec);

/// Denormals from "ieee" or "paper"; throws UsageError otherwise.
Denormals parse_denormals(std::string_view name);
std::string_view to_string(Denormals denormals);

/// The characteristic values of a format, all exact.
struct FormatRange {
    double max;              ///< largest finite magnitude
    double min_normal;       ///< smallest normal magnitude, 2^(1 - bias)
    double min_denormal;     ///< smallest non-zero magnitude (the smallest denormal)
    double max_denormal;     ///< largest denormal magnitude
    double epsilon;          ///< 2^-m: spacing of normal values relative to the start of their binade
    double binades;          ///< log2(max / min_denormal): the dynamic range including denormals
    double normal_binades;   ///< log2(max / min_normal)
    std::uint32_t max_code;  ///< code of +max
};

/// Characteristic values of `spec` (for bf16 and fp32, the IEEE values).
FormatRange range_of(const FormatSpec& spec);

}  // namespace dojo::numerics
