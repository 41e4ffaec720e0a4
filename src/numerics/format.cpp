#include "dojo/numerics/format.h"

#include <cfloat>
#include <cmath>
#include <string>

#include "dojo/numerics/convert.h"
#include "dojo/util/error.h"

namespace dojo::numerics {
namespace {

// One row per FormatKind, in declaration order.
constexpr FormatTraits kTraits[] = {
    // name       sign exp man width bias configurable inf/nan provisional
    {"cfp8_143", 1, 4, 3, 8, 7, true, false, false},
    {"cfp8_152", 1, 5, 2, 8, 15, true, false, false},
    {"shp", 1, 5, 10, 16, 15, true, false, false},
    {"uhp", 0, 6, 10, 16, 31, true, false, true},
    {"bf16", 1, 8, 7, 16, 127, false, true, false},
    {"fp32", 1, 8, 23, 32, 127, false, true, false},
};
static_assert(std::size(kTraits) == std::size(kAllFormatKinds), "one traits row per FormatKind");

std::string format_names() {
    std::string names;
    for (const FormatKind kind : kAllFormatKinds) {
        names += names.empty() ? "" : ", ";
        names += traits(kind).name;
    }
    return names;
}

}  // namespace

const FormatTraits& traits(FormatKind kind) { return kTraits[static_cast<std::size_t>(kind)]; }

FormatKind parse_format_kind(std::string_view name) {
    for (const FormatKind kind : kAllFormatKinds) {
        if (traits(kind).name == name) {
            return kind;
        }
    }
    throw UsageError("unknown format '" + std::string(name) + "'; expected one of " + format_names());
}

FormatSpec make_format(FormatKind kind, int bias, Denormals denormals) {
    const FormatTraits& t = traits(kind);
    if (!t.configurable_bias) {
        if (bias >= 0 && bias != t.default_bias) {
            throw UsageError("format " + std::string(t.name) + " has a fixed exponent bias of " +
                             std::to_string(t.default_bias) + "; omit the bias (only CFloat formats take one)");
        }
        if (denormals != Denormals::Ieee) {
            throw UsageError("denormals=paper applies to the CFloat formats only; " + std::string(t.name) +
                             " always has IEEE denormals");
        }
        return FormatSpec{kind, t.default_bias, Denormals::Ieee};
    }
    if (bias < 0) {
        bias = t.default_bias;
    }
    if (bias > kMaxBias) {
        throw UsageError("bias " + std::to_string(bias) + " is out of range for " + std::string(t.name) +
                         ": the exponent bias is a 6-bit unsigned value, 0.." + std::to_string(kMaxBias));
    }
    return FormatSpec{kind, bias, denormals};
}

std::string to_string(const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    if (!t.configurable_bias) {
        return std::string(t.name);
    }
    std::string text = std::string(t.name) + "(bias=" + std::to_string(spec.bias);
    if (spec.denormals == Denormals::Paper) {
        text += ",denormals=paper";
    }
    return text + ")";
}

Denormals parse_denormals(std::string_view name) {
    if (name == "ieee") {
        return Denormals::Ieee;
    }
    if (name == "paper") {
        return Denormals::Paper;
    }
    throw UsageError("unknown denormal scale '" + std::string(name) + "'; expected ieee or paper");
}

std::string_view to_string(Denormals denormals) { return denormals == Denormals::Paper ? "paper" : "ieee"; }

FormatRange range_of(const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    FormatRange r{};
    r.epsilon = std::ldexp(1.0, -t.mantissa_bits);
    if (spec.kind == FormatKind::Fp32) {
        r.max = FLT_MAX;
        r.min_normal = FLT_MIN;
        r.min_denormal = FLT_TRUE_MIN;
        r.max_denormal = FLT_MIN - FLT_TRUE_MIN;
        r.max_code = 0x7f7fffffu;
    } else {
        const std::uint32_t mantissa_mask = (1u << t.mantissa_bits) - 1u;
        const std::uint32_t top_exponent = t.has_inf_nan ? (1u << t.exponent_bits) - 2u : (1u << t.exponent_bits) - 1u;
        r.max_code = (top_exponent << t.mantissa_bits) | mantissa_mask;
        r.max = decode_one(r.max_code, spec);
        r.min_normal = decode_one(1u << t.mantissa_bits, spec);
        r.min_denormal = decode_one(1u, spec);
        r.max_denormal = decode_one(mantissa_mask, spec);
    }
    r.binades = std::log2(r.max / r.min_denormal);
    r.normal_binades = std::log2(r.max / r.min_normal);
    return r;
}

}  // namespace dojo::numerics
