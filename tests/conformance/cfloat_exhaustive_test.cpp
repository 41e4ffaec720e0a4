// Exhaustive conformance of the conversion kernels against the independent reference (tests/support):
//   - every BF16 bit pattern (all 65,536: zeros, denormals, normals, Inf, NaN, both signs), widened to FP32, into
//     every CFloat format at every bias 0..63 under both denormal scales, nearest and stochastic;
//   - boundary sweeps over FP32: every midpoint between adjacent codes, and the FP32 values one ulp either side;
//   - every code decoded, for every format, bias and scale, and the bias identity (cfloat.md A17);
//   - the BF16-input entry point, transcoding, and every instruction-set path bit for bit.
// The reference checks codes and the OR of flags; per-element flags are compared on the sweeps.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cfloat_reference.h"
#include "dojo/numerics/convert.h"
#include "dojo/numerics/philox.h"

namespace dojo::numerics {
namespace {

using test::CfloatReference;

std::vector<Isa> available_isas() {
    std::vector<Isa> isas;
    for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
        if (isa_available(isa)) {
            isas.push_back(isa);
        }
    }
    return isas;
}

std::vector<float> all_bf16_as_fp32() {
    std::vector<float> values(1u << 16);
    for (std::uint32_t pattern = 0; pattern < values.size(); ++pattern) {
        values[pattern] = std::bit_cast<float>(pattern << 16);
    }
    return values;
}

std::vector<FormatSpec> all_cfloat_specs() {
    std::vector<FormatSpec> specs;
    for (const FormatKind kind : kCfloatKinds) {
        for (int bias = 0; bias <= kMaxBias; ++bias) {
            for (const Denormals denormals : {Denormals::Ieee, Denormals::Paper}) {
                specs.push_back(make_format(kind, bias, denormals));
            }
        }
    }
    return specs;
}

// Encodes `inputs` with the bulk API on one path; codes widened to 32 bits.
std::vector<std::uint32_t> bulk_encode(const std::vector<float>& inputs, const FormatSpec& spec,
                                       const ConvertOptions& options, ConversionFlags& flags) {
    std::vector<std::uint32_t> codes(inputs.size());
    if (spec.info().width_bits == 8) {
        std::vector<std::uint8_t> narrow(inputs.size());
        flags = encode(inputs, narrow, spec, options);
        std::copy(narrow.begin(), narrow.end(), codes.begin());
    } else {
        std::vector<std::uint16_t> narrow(inputs.size());
        flags = encode(inputs, narrow, spec, options);
        std::copy(narrow.begin(), narrow.end(), codes.begin());
    }
    return codes;
}

// Compares every path with the reference for `inputs`; returns the number of mismatching codes (printing the
// first few) so that one failing format does not flood the log.
int compare_with_reference(const std::vector<float>& inputs, const FormatSpec& spec, Rounding rounding,
                           std::uint64_t seed) {
    const CfloatReference reference(spec);
    std::vector<std::uint32_t> expected(inputs.size());
    ConversionFlags expected_flags;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const test::ReferenceResult r =
            rounding == Rounding::NearestEven
                ? reference.encode_nearest(inputs[i])
                : reference.encode_stochastic(inputs[i], stochastic_word(seed, 0, i));
        expected[i] = r.code;
        expected_flags |= r.flags;
    }
    int mismatches = 0;
    for (const Isa isa : available_isas()) {
        ConvertOptions options;
        options.rounding = rounding;
        options.seed = seed;
        options.isa = isa;
        ConversionFlags flags;
        const std::vector<std::uint32_t> codes = bulk_encode(inputs, spec, options, flags);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            if (codes[i] != expected[i] && ++mismatches <= 5) {
                ADD_FAILURE() << to_string(spec) << " " << to_string(rounding) << " " << to_string(isa) << ": input "
                              << inputs[i] << " (0x" << std::hex << std::bit_cast<std::uint32_t>(inputs[i])
                              << ") gave 0x" << codes[i] << ", reference 0x" << expected[i] << std::dec;
            }
        }
        EXPECT_EQ(flags, expected_flags) << to_string(spec) << " " << to_string(rounding) << " " << to_string(isa)
                                         << ": flags " << flags.to_string() << ", reference "
                                         << expected_flags.to_string();
    }
    return mismatches;
}

TEST(CfloatExhaustive, EveryBf16PatternNearestEvenMatchesReference) {
    const std::vector<float> inputs = all_bf16_as_fp32();
    int mismatches = 0;
    for (const FormatSpec& spec : all_cfloat_specs()) {
        mismatches += compare_with_reference(inputs, spec, Rounding::NearestEven, 0);
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(CfloatExhaustive, EveryBf16PatternStochasticMatchesReference) {
    const std::vector<float> inputs = all_bf16_as_fp32();
    int mismatches = 0;
    for (const FormatSpec& spec : all_cfloat_specs()) {
        mismatches += compare_with_reference(inputs, spec, Rounding::Stochastic, 0x5eed + spec.bias);
    }
    EXPECT_EQ(mismatches, 0);
}

// Midpoints between adjacent codes and their FP32 neighbours, where ties and off-by-one errors live. Also the
// points just around max + ulp/2 (overflow) and around every paper-gap boundary.
std::vector<float> boundary_inputs(const FormatSpec& spec) {
    const CfloatReference reference(spec);
    const FormatRange range = range_of(spec);
    std::vector<double> anchors;
    for (std::uint32_t code = 0; code < range.max_code; ++code) {
        const double lo = reference.decode(code);
        const double hi = reference.decode(code + 1);
        anchors.push_back(lo);
        anchors.push_back((lo + hi) / 2);
    }
    anchors.push_back(range.max);
    anchors.push_back(range.max * (1 + range.epsilon / 2));  // max + ulp/2
    std::vector<float> inputs;
    for (const double anchor : anchors) {
        const auto center = static_cast<float>(anchor);  // exact: at most 12 significant bits
        for (const float value : {std::nextafter(center, 0.0f), center, std::nextafter(center, INFINITY)}) {
            inputs.push_back(value);
            inputs.push_back(-value);
        }
    }
    return inputs;
}

TEST(CfloatExhaustive, BoundarySweepsMatchReferenceWithPerElementFlags) {
    int mismatches = 0;
    for (const FormatSpec& spec : all_cfloat_specs()) {
        const std::vector<float> inputs = boundary_inputs(spec);
        mismatches += compare_with_reference(inputs, spec, Rounding::NearestEven, 0);
        mismatches += compare_with_reference(inputs, spec, Rounding::Stochastic, 17);
        // Per-element flags on a sample (every 7th element keeps the run short for 16-bit formats).
        const CfloatReference reference(spec);
        for (std::size_t i = 0; i < inputs.size(); i += spec.info().width_bits == 8 ? 1 : 7) {
            const EncodedValue got = encode_one(inputs[i], spec);
            const test::ReferenceResult want = reference.encode_nearest(inputs[i]);
            if ((got.code != want.code || got.flags != want.flags) && ++mismatches <= 5) {
                ADD_FAILURE() << to_string(spec) << ": input " << inputs[i] << " gave code " << got.code << " flags "
                              << got.flags.to_string() << ", reference " << want.code << " "
                              << want.flags.to_string();
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(CfloatExhaustive, Bf16TargetMatchesReferenceOnBoundarySweeps) {
    // FP32 -> bf16 (IEEE: overflow to Inf, NaN kept) through the same kernels.
    const FormatSpec bf16 = make_format(FormatKind::Bf16);
    std::vector<float> inputs = boundary_inputs(bf16);
    for (std::uint32_t pattern = 0; pattern < (1u << 16); pattern += 3) {  // denormals, NaN payloads, Inf
        inputs.push_back(std::bit_cast<float>((pattern << 16) | 0x8001u));
        inputs.push_back(std::bit_cast<float>((pattern << 16) | 0x7fffu));
    }
    EXPECT_EQ(compare_with_reference(inputs, bf16, Rounding::NearestEven, 0), 0);
    EXPECT_EQ(compare_with_reference(inputs, bf16, Rounding::Stochastic, 3), 0);
}

TEST(CfloatExhaustive, EveryCodeDecodesExactlyOnEveryPath) {
    for (const FormatSpec& spec : all_cfloat_specs()) {
        const CfloatReference reference(spec);
        const std::uint32_t count = 1u << spec.info().width_bits;
        for (const Isa isa : available_isas()) {
            ConvertOptions options;
            options.isa = isa;
            std::vector<float> values(count);
            ConversionFlags flags;
            if (count == 256) {
                std::vector<std::uint8_t> codes(count);
                for (std::uint32_t c = 0; c < count; ++c) {
                    codes[c] = static_cast<std::uint8_t>(c);
                }
                flags = decode(codes, values, spec, options);
            } else {
                std::vector<std::uint16_t> codes(count);
                for (std::uint32_t c = 0; c < count; ++c) {
                    codes[c] = static_cast<std::uint16_t>(c);
                }
                flags = decode(codes, values, spec, options);
            }
            int mismatches = 0;
            for (std::uint32_t c = 0; c < count; ++c) {
                const double want = reference.decode(c);
                if ((values[c] != want || std::signbit(values[c]) != std::signbit(want)) && ++mismatches <= 3) {
                    ADD_FAILURE() << to_string(spec) << " " << to_string(isa) << ": code " << c << " decoded to "
                                  << values[c] << ", reference " << want;
                }
            }
            EXPECT_EQ(mismatches, 0);
            EXPECT_TRUE(flags.has(Flag::Denormal)) << "every format has denormal codes";
        }
    }
}

TEST(CfloatExhaustive, BiasIsAnExactPowerOfTwoScale) {
    // cfloat.md A17: decode(code, bias) = decode(code, 0) * 2^-bias, for every code, bias and scale.
    for (const FormatKind kind : kCfloatKinds) {
        for (const Denormals denormals : {Denormals::Ieee, Denormals::Paper}) {
            const FormatSpec base = make_format(kind, 0, denormals);
            for (int bias = 1; bias <= kMaxBias; ++bias) {
                const FormatSpec spec = make_format(kind, bias, denormals);
                for (std::uint32_t code = 0; code < (1u << spec.info().width_bits); code += 1) {
                    ASSERT_EQ(decode_one(code, spec), std::ldexp(decode_one(code, base), -bias))
                        << to_string(spec) << " code " << code;
                }
            }
        }
    }
}

TEST(CfloatExhaustive, Bf16InputEqualsItsFp32Widening) {
    std::vector<std::uint16_t> bf16(1u << 16);
    for (std::uint32_t pattern = 0; pattern < bf16.size(); ++pattern) {
        bf16[pattern] = static_cast<std::uint16_t>(pattern);
    }
    const std::vector<float> widened = all_bf16_as_fp32();
    for (const FormatKind kind : kCfloatKinds) {
        for (const int bias : {0, 7, 31, 63}) {
            const FormatSpec spec = make_format(kind, bias, Denormals::Paper);
            for (const Rounding rounding : {Rounding::NearestEven, Rounding::Stochastic}) {
                ConvertOptions options;
                options.rounding = rounding;
                options.seed = 11;
                if (spec.info().width_bits == 8) {
                    std::vector<std::uint8_t> from_bf16(bf16.size());
                    std::vector<std::uint8_t> from_fp32(bf16.size());
                    EXPECT_EQ(encode_bf16(bf16, from_bf16, spec, options), encode(widened, from_fp32, spec, options));
                    EXPECT_EQ(from_bf16, from_fp32) << to_string(spec);
                } else {
                    std::vector<std::uint16_t> from_bf16(bf16.size());
                    std::vector<std::uint16_t> from_fp32(bf16.size());
                    EXPECT_EQ(encode_bf16(bf16, from_bf16, spec, options), encode(widened, from_fp32, spec, options));
                    EXPECT_EQ(from_bf16, from_fp32) << to_string(spec);
                }
            }
        }
    }
}

TEST(CfloatExhaustive, TranscodeRoundsOnceThroughExactFp32) {
    // cfp8 <-> shp, and cfp8_143 -> cfp8_152 with a different bias: equals encode(decode(code)) exactly.
    const FormatSpec from8 = make_format(FormatKind::Cfp8_143, 9);
    const FormatSpec to16 = make_format(FormatKind::Shp, 20);
    const FormatSpec to8 = make_format(FormatKind::Cfp8_152, 3);
    std::vector<std::uint8_t> codes8(256);
    for (std::uint32_t c = 0; c < 256; ++c) {
        codes8[c] = static_cast<std::uint8_t>(c);
    }
    std::vector<std::uint16_t> codes16(1u << 16);
    for (std::uint32_t c = 0; c < codes16.size(); ++c) {
        codes16[c] = static_cast<std::uint16_t>(c);
    }
    ConvertOptions options;
    options.rounding = Rounding::Stochastic;
    options.seed = 5;

    std::vector<std::uint16_t> shp(256);
    std::vector<std::uint8_t> narrow(256);
    transcode(std::span<const std::uint8_t>(codes8), from8, std::span<std::uint16_t>(shp), to16, options);
    transcode(std::span<const std::uint8_t>(codes8), from8, std::span<std::uint8_t>(narrow), to8, options);
    for (std::uint32_t c = 0; c < 256; ++c) {
        ConvertOptions one = options;
        one.first_index = c;
        const float exact = decode_one(c, from8);
        EXPECT_EQ(shp[c], encode_one(exact, to16, one).code) << "code " << c;
        EXPECT_EQ(narrow[c], encode_one(exact, to8, one).code) << "code " << c;
    }
    std::vector<std::uint8_t> back(codes16.size());
    const ConversionFlags flags =
        transcode(std::span<const std::uint16_t>(codes16), to16, std::span<std::uint8_t>(back), from8, options);
    std::vector<float> exact(codes16.size());
    decode(std::span<const std::uint16_t>(codes16), exact, to16);
    std::vector<std::uint8_t> expected(codes16.size());
    EXPECT_EQ(flags, encode(exact, expected, from8, options) | ConversionFlags(static_cast<std::uint8_t>(Flag::Denormal)));
    EXPECT_EQ(back, expected);
}

}  // namespace
}  // namespace dojo::numerics
