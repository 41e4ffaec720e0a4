// Every vector width gives the same bits: the 16-lane kernel (built generically, see kernel_wide_generic.cpp), the
// portable kernel and, where the CPU has them, the AVX2 and AVX-512 kernels, called directly on the same inputs,
// including ragged starts and lengths that exercise head and tail handling around 64-element Philox groups.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "dojo/numerics/convert.h"
#include "kernel_params.h"
#include "kernels/kernel_api.h"

namespace dojo::numerics::kernels {
KernelTable wide_generic_kernels();  // tests/conformance/kernel_wide_generic.cpp
}

namespace dojo::numerics {
namespace {

std::vector<std::pair<const char*, kernels::KernelTable>> tables() {
    std::vector<std::pair<const char*, kernels::KernelTable>> result = {
        {"wide_generic", kernels::wide_generic_kernels()}};
    if (isa_available(Isa::Avx2)) {
        result.emplace_back("avx2", kernels::avx2_kernels());
    }
    if (isa_available(Isa::Avx512)) {
        result.emplace_back("avx512", kernels::avx512_kernels());
    }
    return result;
}

std::vector<std::uint32_t> all_bf16_patterns_as_fp32_bits() {
    std::vector<std::uint32_t> bits(1u << 16);
    for (std::uint32_t p = 0; p < bits.size(); ++p) {
        bits[p] = p << 16;
    }
    return bits;
}

TEST(KernelWidths, EncodeGivesTheSameBitsAndFlagsAtEveryWidth) {
    const std::vector<std::uint32_t> in = all_bf16_patterns_as_fp32_bits();
    const kernels::KernelTable portable = kernels::portable_kernels();
    std::vector<FormatSpec> specs = {make_format(FormatKind::Bf16)};
    for (const FormatKind kind : kCfloatKinds) {
        for (const int bias : {0, 7, 31, 63}) {
            specs.push_back(make_format(kind, bias, Denormals::Ieee));
            specs.push_back(make_format(kind, bias, Denormals::Paper));
        }
    }
    struct Slice {
        std::size_t offset;
        std::size_t count;
        std::uint64_t first_index;
    };
    // Whole; a ragged middle starting mid-group; a short run inside one vector; a run crossing a group boundary.
    const Slice slices[] = {{0, in.size(), 0}, {5, 40001, 1234567}, {100, 3, 61}, {7, 131, 60}};
    for (const FormatSpec& spec : specs) {
        const std::size_t out_bytes = static_cast<std::size_t>(spec.info().width_bits / 8);
        for (const Rounding rounding : {Rounding::NearestEven, Rounding::Stochastic}) {
            ConvertOptions options;
            options.rounding = rounding;
            options.seed = 0xabcdef12345ULL;
            options.stream = 77;
            const kernels::EncodeParams params = make_encode_params(spec, options);
            for (const Slice& s : slices) {
                std::vector<std::uint16_t> want(s.count);
                const std::uint32_t want_flags =
                    portable.encode_fp32(in.data() + s.offset, s.count, want.data(), out_bytes, s.first_index, params);
                for (const auto& [name, table] : tables()) {
                    std::vector<std::uint16_t> got(s.count);
                    const std::uint32_t got_flags =
                        table.encode_fp32(in.data() + s.offset, s.count, got.data(), out_bytes, s.first_index, params);
                    EXPECT_EQ(got, want) << name << " " << to_string(spec) << " " << to_string(rounding)
                                         << " slice at " << s.offset;
                    EXPECT_EQ(got_flags, want_flags) << name << " " << to_string(spec);
                }
            }
        }
    }
}

TEST(KernelWidths, Bf16InputAndDecodeGiveTheSameBitsAtEveryWidth) {
    std::vector<std::uint16_t> bf16(1u << 16);
    for (std::uint32_t p = 0; p < bf16.size(); ++p) {
        bf16[p] = static_cast<std::uint16_t>(p);
    }
    const kernels::KernelTable portable = kernels::portable_kernels();
    for (const FormatSpec& spec : {make_format(FormatKind::Cfp8_152, 40, Denormals::Paper),
                                   make_format(FormatKind::Shp, 3), make_format(FormatKind::Uhp, 31)}) {
        ConvertOptions options;
        options.rounding = Rounding::Stochastic;
        const kernels::EncodeParams params = make_encode_params(spec, options);
        const std::size_t out_bytes = static_cast<std::size_t>(spec.info().width_bits / 8);
        std::vector<std::uint16_t> want(bf16.size());
        const std::uint32_t want_flags = portable.encode_bf16(bf16.data() + 3, bf16.size() - 3, want.data(), out_bytes,
                                                              3, params);
        std::vector<std::uint32_t> want_decoded(bf16.size() - 1);
        const kernels::DecodeParams decode_params = make_decode_params(spec);
        const std::uint32_t want_decode_flags =
            portable.decode(bf16.data() + 1, out_bytes, want_decoded.size(), want_decoded.data(), decode_params);
        for (const auto& [name, table] : tables()) {
            std::vector<std::uint16_t> got(bf16.size());
            EXPECT_EQ(table.encode_bf16(bf16.data() + 3, bf16.size() - 3, got.data(), out_bytes, 3, params),
                      want_flags);
            EXPECT_EQ(got, want) << name << " " << to_string(spec);
            std::vector<std::uint32_t> decoded(want_decoded.size());
            EXPECT_EQ(table.decode(bf16.data() + 1, out_bytes, decoded.size(), decoded.data(), decode_params),
                      want_decode_flags);
            EXPECT_EQ(decoded, want_decoded) << name << " " << to_string(spec);
        }
    }
}

}  // namespace
}  // namespace dojo::numerics
