#include "cfloat_reference.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace dojo::test {
namespace {

__extension__ typedef unsigned __int128 U128;

// d = mantissa * 2^exponent with an integer mantissa below 2^53.
void split(double d, std::uint64_t& mantissa, int& exponent) {
    int e = 0;
    const double f = std::frexp(d, &e);
    mantissa = static_cast<std::uint64_t>(std::ldexp(f, 53));
    exponent = e - 53;
}

void require(bool condition, const char* what) {
    if (!condition) {
        throw std::logic_error(std::string("reference invariant broken: ") + what);
    }
}

}  // namespace

CfloatReference::CfloatReference(const numerics::FormatSpec& spec)
    : spec_(spec), mantissa_bits_(spec.info().mantissa_bits) {
    const numerics::FormatTraits& t = spec.info();
    const std::uint32_t mantissa_mask = (1u << t.mantissa_bits) - 1u;
    const std::uint32_t top_exponent = t.has_inf_nan ? (1u << t.exponent_bits) - 2u : (1u << t.exponent_bits) - 1u;
    max_code_ = (top_exponent << t.mantissa_bits) | mantissa_mask;
    values_.resize(max_code_ + 1);
    for (std::uint32_t code = 0; code <= max_code_; ++code) {
        values_[code] = decode(code);
    }
    require(std::is_sorted(values_.begin(), values_.end()), "magnitudes increase with the code");
    above_max_ = std::ldexp(1.0, static_cast<int>(top_exponent) + 1 - spec.bias);
    min_normal_ = std::ldexp(1.0, 1 - spec.bias);
}

double CfloatReference::decode(std::uint32_t code) const {
    const numerics::FormatTraits& t = spec_.info();
    const int m = t.mantissa_bits;
    const std::uint32_t sign = t.sign_bits == 1 ? (code >> (t.exponent_bits + m)) & 1u : 0u;
    const auto exponent = static_cast<int>((code >> m) & ((1u << t.exponent_bits) - 1u));
    const auto mantissa = static_cast<double>(code & ((1u << m) - 1u));
    double value = 0.0;
    if (t.has_inf_nan && exponent == (1 << t.exponent_bits) - 1) {
        value = mantissa == 0 ? INFINITY : NAN;
    } else if (exponent == 0) {
        const int scale = spec_.denormals == numerics::Denormals::Paper ? -spec_.bias : 1 - spec_.bias;
        value = std::ldexp(mantissa, scale - m);
    } else {
        value = std::ldexp(std::ldexp(1.0, m) + mantissa, exponent - spec_.bias - m);
    }
    return sign ? -value : value;
}

CfloatReference::Neighbours CfloatReference::neighbours(double a) const {
    if (a > values_.back()) {
        return {values_.back(), above_max_, max_code_, max_code_ + 1, false};
    }
    const auto it = std::lower_bound(values_.begin(), values_.end(), a);
    const auto index = static_cast<std::uint32_t>(it - values_.begin());
    if (*it == a) {
        return {a, a, index, index, true};
    }
    require(index >= 1, "a non-zero magnitude lies above code 0");
    return {values_[index - 1], values_[index], index - 1, index, false};
}

bool CfloatReference::tiny(double a, bool stochastic, std::uint32_t r) const {
    if (a == 0.0 || a >= min_normal_) {
        return false;
    }
    // Round a to m+1 significant bits, exponent unbounded.
    const double ulp = std::ldexp(1.0, std::ilogb(a) - mantissa_bits_);
    const double q = a / ulp;  // exact: division by a power of two
    const double whole = std::floor(q);
    const double fraction = q - whole;
    bool up = false;
    if (stochastic) {
        up = r < static_cast<std::uint64_t>(std::floor(std::ldexp(fraction, 32)));
    } else {
        up = fraction > 0.5 || (fraction == 0.5 && std::fmod(whole, 2.0) == 1.0);
    }
    return (whole + (up ? 1.0 : 0.0)) * ulp < min_normal_;
}

std::uint64_t CfloatReference::stochastic_threshold(double a) const {
    const Neighbours n = neighbours(a);
    require(!n.exact, "threshold of an inexact value");
    const double d = a - n.lo;
    const double w = n.hi - n.lo;
    require(d + n.lo == a && w + n.lo == n.hi, "neighbour differences are exact");
    std::uint64_t dm = 0;
    std::uint64_t wm = 0;
    int de = 0;
    int we = 0;
    split(d, dm, de);
    split(w, wm, we);
    const int shift = 32 + de - we;  // threshold = floor(dm * 2^shift / wm), and dm 2^de < wm 2^we
    if (shift >= 0) {
        return static_cast<std::uint64_t>((static_cast<U128>(dm) << shift) / wm);
    }
    if (-shift >= 64) {
        return 0;
    }
    return static_cast<std::uint64_t>(static_cast<U128>(dm) / (static_cast<U128>(wm) << -shift));
}

ReferenceResult CfloatReference::finish(float x, double a, bool round_up, const Neighbours& n, bool stochastic,
                                        std::uint32_t r) const {
    const numerics::FormatTraits& t = spec_.info();
    ReferenceResult result;
    std::uint32_t magnitude = round_up ? n.hi_code : n.lo_code;
    if (magnitude > max_code_) {
        result.flags.raise(numerics::Flag::Overflow);
        magnitude = t.has_inf_nan ? ((1u << t.exponent_bits) - 1u) << t.mantissa_bits : max_code_;
    }
    if (!n.exact && tiny(a, stochastic, r)) {
        result.flags.raise(numerics::Flag::Underflow);
    }
    const std::uint32_t sign = std::signbit(x) ? 1u : 0u;
    result.code = magnitude | (t.sign_bits == 1 ? sign << (t.exponent_bits + t.mantissa_bits) : 0u);
    return result;
}

namespace {

// Specials shared by both rounding modes; returns true if `result` is final.
bool special(float x, const numerics::FormatSpec& spec, std::uint32_t max_code, ReferenceResult& result) {
    const numerics::FormatTraits& t = spec.info();
    const auto bits = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t sign_shift = static_cast<std::uint32_t>(t.exponent_bits + t.mantissa_bits);
    if (std::fpclassify(x) == FP_SUBNORMAL) {
        result.flags.raise(numerics::Flag::Denormal);
    }
    if (std::isnan(x)) {
        if (t.has_inf_nan) {
            result.code = (bits >> 16) | 0x40u;
            if ((bits & 0x400000u) == 0) {
                result.flags.raise(numerics::Flag::Invalid);
            }
        } else {
            result.code = max_code;
            result.flags.raise(numerics::Flag::Invalid);
        }
        return true;
    }
    if (t.sign_bits == 0 && std::signbit(x) && x != 0.0f) {
        result.code = 0;
        result.flags.raise(numerics::Flag::Invalid);
        return true;
    }
    if (std::isinf(x)) {
        const std::uint32_t sign = std::signbit(x) ? 1u << sign_shift : 0u;
        if (t.has_inf_nan) {
            result.code = sign | (((1u << t.exponent_bits) - 1u) << t.mantissa_bits);
        } else {
            result.code = sign | max_code;
            result.flags.raise(numerics::Flag::Overflow);
        }
        return true;
    }
    return false;
}

}  // namespace

ReferenceResult CfloatReference::encode_nearest(float x) const {
    ReferenceResult result;
    if (special(x, spec_, max_code_, result)) {
        return result;
    }
    const double a = std::fabs(static_cast<double>(x));
    const Neighbours n = neighbours(a);
    bool up = false;
    if (!n.exact) {
        const double mid = (n.lo + n.hi) / 2;
        require(mid > n.lo && mid < n.hi && (mid - n.lo) == (n.hi - mid), "midpoint is exact");
        up = a > mid || (a == mid && (n.lo_code & 1u) == 1u);  // a tie goes to the even code
    }
    ReferenceResult rounded = finish(x, a, up, n, false, 0);
    rounded.flags |= result.flags;
    return rounded;
}

ReferenceResult CfloatReference::encode_stochastic(float x, std::uint32_t r) const {
    ReferenceResult result;
    if (special(x, spec_, max_code_, result)) {
        return result;
    }
    const double a = std::fabs(static_cast<double>(x));
    const Neighbours n = neighbours(a);
    const bool up = !n.exact && r < stochastic_threshold(a);
    ReferenceResult rounded = finish(x, a, up, n, true, r);
    rounded.flags |= result.flags;
    return rounded;
}

}  // namespace dojo::test
