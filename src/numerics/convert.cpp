// Conversion driver: validates spans, picks the instruction-set kernels, splits work over threads, and finishes
// the few elements the kernels leave to scalar code (the paper-denormal gap). Semantics: dojo/numerics/convert.h.
#include "dojo/numerics/convert.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "dojo/numerics/philox.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "kernel_params.h"
#include "kernels/kernel_api.h"

namespace dojo::numerics {
namespace {

using kernels::DecodeParams;
using kernels::EncodeParams;
using kernels::KernelTable;

// ---- instruction sets ----------------------------------------------------------------------------------------

bool cpu_has_avx2() {
#if defined(DOJO_HAVE_X86_KERNELS)
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(DOJO_HAVE_X86_KERNELS)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

Isa resolve_isa(Isa requested) {
    if (requested == Isa::Auto) {
        return best_isa();
    }
    if (!isa_available(requested)) {
        throw UsageError("instruction set '" + std::string(to_string(requested)) +
                         "' is not available on this CPU or build; available: " +
                         (cpu_has_avx512() ? "avx512, " : "") + (cpu_has_avx2() ? "avx2, " : "") + "portable");
    }
    return requested;
}

KernelTable kernels_for(Isa isa) {
    switch (resolve_isa(isa)) {
#if defined(DOJO_HAVE_X86_KERNELS)
        case Isa::Avx512:
            return kernels::avx512_kernels();
        case Isa::Avx2:
            return kernels::avx2_kernels();
#endif
        default:
            return kernels::portable_kernels();
    }
}

// ---- parameters ----------------------------------------------------------------------------------------------

std::uint32_t max_magnitude_code(const FormatTraits& t) {
    if (t.has_inf_nan) {  // largest finite: exponent all-ones minus one, mantissa all ones
        return ((((1u << t.exponent_bits) - 1u) - 1u) << t.mantissa_bits) | ((1u << t.mantissa_bits) - 1u);
    }
    return (1u << (t.exponent_bits + t.mantissa_bits)) - 1u;
}

float gap_low(const FormatSpec& spec) {  // largest paper denormal: (2^m - 1) * 2^(-bias - m)
    const int m = spec.info().mantissa_bits;
    return std::ldexp(static_cast<float>((1 << m) - 1), -spec.bias - m);
}

float gap_high(const FormatSpec& spec) {  // smallest normal: 2^(1 - bias); for bf16 FLT_MIN
    return std::ldexp(1.0f, 1 - spec.bias);
}

// ---- validation ----------------------------------------------------------------------------------------------

void require_same_size(std::size_t in, std::size_t out) {
    if (in != out) {
        throw UsageError("conversion: input has " + std::to_string(in) + " elements but output has " +
                         std::to_string(out) + "; give spans of equal length");
    }
}

void require_width(const FormatSpec& spec, std::size_t code_bytes, const char* role) {
    const auto width_bytes = static_cast<std::size_t>(spec.info().width_bits / 8);
    if (width_bytes != code_bytes) {
        throw UsageError(std::string("conversion: ") + role + " format " + to_string(spec) + " has " +
                         std::to_string(width_bytes * 8) + "-bit codes but the span holds " +
                         std::to_string(code_bytes * 8) + "-bit elements; use a std::uint" +
                         std::to_string(width_bytes * 8) + "_t span");
    }
}

// ---- threading -----------------------------------------------------------------------------------------------

int thread_count(const ConvertOptions& options, std::size_t n) {
    if (options.threads < 0) {
        throw UsageError("conversion: threads = " + std::to_string(options.threads) +
                         "; give 0 (all hardware threads) or a positive count");
    }
    const int wanted = options.threads == 0 ? omp_get_max_threads() : options.threads;
    const auto useful = static_cast<int>(std::max<std::size_t>(1, n / kMinElementsPerThread));
    return std::max(1, std::min(wanted, useful));
}

// Runs body(begin, end) over [0, n) in `threads` contiguous chunks whose boundaries fall on multiples of 64 in
// the tensor's index space (whole Philox groups per thread), and returns the OR of the flag bits they return.
template <typename Body>
std::uint32_t parallel_chunks(std::size_t n, std::uint64_t first_index, int threads, const Body& body) {
    if (threads <= 1) {
        return body(std::size_t{0}, n);
    }
    std::vector<std::size_t> bounds(static_cast<std::size_t>(threads) + 1, n);
    bounds[0] = 0;
    for (int t = 1; t < threads; ++t) {
        const std::uint64_t target = first_index + n * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
        const std::uint64_t aligned = target - target % kPhiloxGroupElements;
        bounds[static_cast<std::size_t>(t)] =
            std::clamp<std::size_t>(static_cast<std::size_t>(aligned > first_index ? aligned - first_index : 0),
                                    bounds[static_cast<std::size_t>(t) - 1], n);
    }
    DOJO_CHECK(std::is_sorted(bounds.begin(), bounds.end()) && bounds.front() == 0 && bounds.back() == n)
        << "chunk bounds for " << n << " elements on " << threads << " threads";
    std::uint32_t flags = 0;
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(| : flags)
    for (int t = 0; t < threads; ++t) {
        const std::size_t begin = bounds[static_cast<std::size_t>(t)];
        const std::size_t end = bounds[static_cast<std::size_t>(t) + 1];
        if (begin < end) {
            flags |= body(begin, end);
        }
    }
    return flags;
}

// ---- the paper-denormal gap ----------------------------------------------------------------------------------

// Magnitude code for |x| strictly between the largest paper denormal lo = (2^m - 1) u and the smallest normal
// hi = 2^(m+1) u, u = 2^(-bias-m). hi - lo = (2^m + 1) u is not a power of two, so the kernels leave these to us.
std::uint32_t gap_magnitude_code(float magnitude, const FormatSpec& spec, const ConvertOptions& options,
                                 std::uint64_t index) {
    const int m = spec.info().mantissa_bits;
    const std::uint32_t lo_code = (1u << m) - 1u;
    const std::uint32_t hi_code = 1u << m;
    // In units of u, |x| is exact in double (24 significant bits) and above lo >= 3, so its lowest bit is at
    // least 2^-22: offset * 2^23 is an exact integer below 2^34, and every product below fits in 64 bits.
    const double in_units = std::ldexp(static_cast<double>(magnitude), spec.bias + m);
    const auto offset_scaled = static_cast<std::uint64_t>(std::ldexp(in_units - static_cast<double>(lo_code), 23));
    const std::uint64_t width = (std::uint64_t{1} << m) + 1u;  // hi - lo in units of u
    if (options.rounding == Rounding::Stochastic) {
        // floor(2^32 * offset / width) with offset = offset_scaled * 2^-23.
        const std::uint64_t threshold = (offset_scaled << 9) / width;
        return stochastic_word(options.seed, options.stream, index) < threshold ? hi_code : lo_code;
    }
    const std::uint64_t twice = offset_scaled * 2;
    const std::uint64_t width_scaled = width << 23;
    if (twice < width_scaled) {
        return lo_code;
    }
    if (twice > width_scaled) {
        return hi_code;
    }
    return (lo_code & 1u) == 0 ? lo_code : hi_code;  // a tie goes to the even code
}

// Rewrites the codes of elements in the paper gap (their flags are already right). `bits_of(j)` gives element j's
// FP32 pattern.
template <typename CodeT, typename BitsOf>
void fix_paper_gap(std::size_t n, CodeT* out, const FormatSpec& spec, const ConvertOptions& options,
                   const BitsOf& bits_of) {
    if (spec.denormals != Denormals::Paper || spec.info().has_inf_nan) {
        return;
    }
    const std::uint32_t low = std::bit_cast<std::uint32_t>(gap_low(spec));
    const std::uint32_t high = std::bit_cast<std::uint32_t>(gap_high(spec));
    const FormatTraits& t = spec.info();
    const auto sign_shift = static_cast<std::uint32_t>(t.exponent_bits + t.mantissa_bits);
    for (std::size_t j = 0; j < n; ++j) {
        const std::uint32_t bits = bits_of(j);
        const std::uint32_t magnitude = bits & 0x7fffffffu;
        const std::uint32_t sign = bits >> 31;
        if (magnitude > low && magnitude < high && (sign == 0 || t.sign_bits == 1)) {
            const std::uint32_t code = gap_magnitude_code(std::bit_cast<float>(magnitude), spec, options,
                                                          options.first_index + j);
            out[j] = static_cast<CodeT>(code | (sign << sign_shift));
        }
    }
}

// ---- generic bodies ------------------------------------------------------------------------------------------

template <typename InT, typename CodeT>
ConversionFlags encode_span(std::span<const InT> in, std::span<CodeT> out, const FormatSpec& to,
                            const ConvertOptions& options, bool bf16_input) {
    require_same_size(in.size(), out.size());
    require_width(to, sizeof(CodeT), "destination");
    const KernelTable table = kernels_for(options.isa);
    const kernels::EncodeFn fn = bf16_input ? table.encode_bf16 : table.encode_fp32;
    const EncodeParams params = make_encode_params(to, options);
    const int threads = thread_count(options, in.size());
    const std::uint32_t bits = parallel_chunks(in.size(), options.first_index, threads,
                                               [&](std::size_t begin, std::size_t end) {
        std::uint32_t chunk_flags =
            fn(in.data() + begin, end - begin, out.data() + begin, sizeof(CodeT), options.first_index + begin, params);
        ConvertOptions chunk_options = options;
        chunk_options.first_index = options.first_index + begin;
        fix_paper_gap(end - begin, out.data() + begin, to, chunk_options, [&](std::size_t j) {
            const InT raw = in[begin + j];
            if constexpr (sizeof(InT) == 2) {
                return static_cast<std::uint32_t>(raw) << 16;
            } else {
                return std::bit_cast<std::uint32_t>(raw);
            }
        });
        return chunk_flags;
    });
    return ConversionFlags(static_cast<std::uint8_t>(bits));
}

template <typename CodeT>
ConversionFlags decode_span(std::span<const CodeT> codes, std::span<float> out, const FormatSpec& from,
                            const ConvertOptions& options) {
    require_same_size(codes.size(), out.size());
    require_width(from, sizeof(CodeT), "source");
    const KernelTable table = kernels_for(options.isa);
    const DecodeParams params = make_decode_params(from);
    const int threads = thread_count(options, codes.size());
    const std::uint32_t bits = parallel_chunks(codes.size(), 0, threads, [&](std::size_t begin, std::size_t end) {
        return table.decode(codes.data() + begin, sizeof(CodeT), end - begin,
                            reinterpret_cast<std::uint32_t*>(out.data() + begin), params);
    });
    return ConversionFlags(static_cast<std::uint8_t>(bits));
}

// Decode to an exact FP32 buffer, then encode: one rounding. Buffers are per chunk of kTranscodeBlock elements.
template <typename InT, typename OutT>
ConversionFlags transcode_span(std::span<const InT> in, const FormatSpec& from, std::span<OutT> out,
                               const FormatSpec& to, const ConvertOptions& options) {
    require_same_size(in.size(), out.size());
    require_width(from, sizeof(InT), "source");
    require_width(to, sizeof(OutT), "destination");
    constexpr std::size_t kTranscodeBlock = 4096;  // a multiple of the Philox group; 16 KiB of FP32 per thread
    const int threads = thread_count(options, in.size());
    const std::uint32_t bits = parallel_chunks(in.size(), options.first_index, threads,
                                               [&](std::size_t begin, std::size_t end) {
        std::vector<float> buffer(std::min(kTranscodeBlock, end - begin));
        ConvertOptions single = options;
        single.threads = 1;
        ConversionFlags flags;
        for (std::size_t block = begin; block < end; block += kTranscodeBlock) {
            const std::size_t count = std::min(kTranscodeBlock, end - block);
            const std::span<float> values(buffer.data(), count);
            flags |= decode_span<InT>(in.subspan(block, count), values, from, single);
            single.first_index = options.first_index + block;
            flags |= encode_span<float, OutT>(values, out.subspan(block, count), to, single, false);
        }
        return static_cast<std::uint32_t>(flags.bits());
    });
    return ConversionFlags(static_cast<std::uint8_t>(bits));
}

}  // namespace

// ---- kernel parameters (kernel_params.h) ----------------------------------------------------------------

kernels::EncodeParams make_encode_params(const FormatSpec& spec, const ConvertOptions& options) {
    const FormatTraits& t = spec.info();
    kernels::EncodeParams p{};
    p.mantissa_bits = static_cast<std::uint32_t>(t.mantissa_bits);
    p.bias_minus_127 = spec.bias - 127;
    p.max_magnitude_code = max_magnitude_code(t);
    p.sign_shift = static_cast<std::uint32_t>(t.exponent_bits + t.mantissa_bits);
    p.has_sign = t.sign_bits == 1 ? 1u : 0u;
    p.saturate = t.has_inf_nan ? 0u : 1u;
    p.inf_magnitude_code = ((1u << t.exponent_bits) - 1u) << t.mantissa_bits;
    p.paper_denormals = spec.denormals == Denormals::Paper ? 1u : 0u;
    p.stochastic = options.rounding == Rounding::Stochastic ? 1u : 0u;
    if (p.paper_denormals) {
        p.paper_gap_low_bits = std::bit_cast<std::uint32_t>(gap_low(spec));
        p.paper_gap_high_bits = std::bit_cast<std::uint32_t>(gap_high(spec));
    }
    p.min_normal_bits = std::bit_cast<std::uint32_t>(gap_high(spec));
    p.seed = options.seed;
    p.stream = options.stream;
    return p;
}

kernels::DecodeParams make_decode_params(const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    kernels::DecodeParams p{};
    p.mantissa_bits = static_cast<std::uint32_t>(t.mantissa_bits);
    p.exponent_bits = static_cast<std::uint32_t>(t.exponent_bits);
    p.has_sign = t.sign_bits == 1 ? 1u : 0u;
    p.is_bf16 = spec.kind == FormatKind::Bf16 ? 1u : 0u;
    p.bias = spec.bias;
    p.denormal_exponent = (spec.denormals == Denormals::Paper ? -spec.bias : 1 - spec.bias) - t.mantissa_bits;
    return p;
}

// ---- public API ----------------------------------------------------------------------------------------------

bool isa_available(Isa isa) {
    switch (isa) {
        case Isa::Auto:
        case Isa::Portable:
            return true;
        case Isa::Avx2:
            return cpu_has_avx2();
        case Isa::Avx512:
            return cpu_has_avx512();
    }
    return false;
}

Isa best_isa() {
    if (cpu_has_avx512()) {
        return Isa::Avx512;
    }
    if (cpu_has_avx2()) {
        return Isa::Avx2;
    }
    return Isa::Portable;
}

std::string_view to_string(Isa isa) {
    switch (isa) {
        case Isa::Auto:
            return "auto";
        case Isa::Portable:
            return "portable";
        case Isa::Avx2:
            return "avx2";
        case Isa::Avx512:
            return "avx512";
    }
    return "?";
}

Isa parse_isa(std::string_view name) {
    for (const Isa isa : {Isa::Auto, Isa::Portable, Isa::Avx2, Isa::Avx512}) {
        if (name == to_string(isa)) {
            return isa;
        }
    }
    throw UsageError("unknown instruction set '" + std::string(name) + "'; expected auto, portable, avx2 or avx512");
}

Rounding parse_rounding(std::string_view name) {
    if (name == "nearest") {
        return Rounding::NearestEven;
    }
    if (name == "stochastic") {
        return Rounding::Stochastic;
    }
    throw UsageError("unknown rounding '" + std::string(name) + "'; expected nearest or stochastic");
}

std::string_view to_string(Rounding rounding) {
    return rounding == Rounding::Stochastic ? "stochastic" : "nearest";
}

ConversionFlags encode(std::span<const float> in, std::span<std::uint8_t> out, const FormatSpec& to,
                       const ConvertOptions& options) {
    return encode_span(in, out, to, options, false);
}

ConversionFlags encode(std::span<const float> in, std::span<std::uint16_t> out, const FormatSpec& to,
                       const ConvertOptions& options) {
    return encode_span(in, out, to, options, false);
}

ConversionFlags encode(std::span<const float> in, std::span<float> out, const FormatSpec& to,
                       const ConvertOptions& options) {
    require_same_size(in.size(), out.size());
    require_width(to, sizeof(float), "destination");
    (void)options;
    std::copy(in.begin(), in.end(), out.begin());
    return {};
}

ConversionFlags encode_bf16(std::span<const std::uint16_t> bf16_bits, std::span<std::uint8_t> out,
                            const FormatSpec& to, const ConvertOptions& options) {
    return encode_span(bf16_bits, out, to, options, true);
}

ConversionFlags encode_bf16(std::span<const std::uint16_t> bf16_bits, std::span<std::uint16_t> out,
                            const FormatSpec& to, const ConvertOptions& options) {
    return encode_span(bf16_bits, out, to, options, true);
}

ConversionFlags decode(std::span<const std::uint8_t> codes, std::span<float> out, const FormatSpec& from,
                       const ConvertOptions& options) {
    return decode_span(codes, out, from, options);
}

ConversionFlags decode(std::span<const std::uint16_t> codes, std::span<float> out, const FormatSpec& from,
                       const ConvertOptions& options) {
    return decode_span(codes, out, from, options);
}

ConversionFlags transcode(std::span<const std::uint8_t> in, const FormatSpec& from, std::span<std::uint8_t> out,
                          const FormatSpec& to, const ConvertOptions& options) {
    return transcode_span(in, from, out, to, options);
}

ConversionFlags transcode(std::span<const std::uint8_t> in, const FormatSpec& from, std::span<std::uint16_t> out,
                          const FormatSpec& to, const ConvertOptions& options) {
    return transcode_span(in, from, out, to, options);
}

ConversionFlags transcode(std::span<const std::uint16_t> in, const FormatSpec& from, std::span<std::uint8_t> out,
                          const FormatSpec& to, const ConvertOptions& options) {
    return transcode_span(in, from, out, to, options);
}

ConversionFlags transcode(std::span<const std::uint16_t> in, const FormatSpec& from, std::span<std::uint16_t> out,
                          const FormatSpec& to, const ConvertOptions& options) {
    return transcode_span(in, from, out, to, options);
}

namespace {

// The flags encoding FP32 bits `x` to bf16 (nearest-even) and decoding again raise (numerics/flags.h): Invalid for a
// signaling NaN; Overflow for a finite value that rounds to Inf; Denormal for an FP32 denormal input (the only source
// of a BF16 denormal); Underflow when that is inexact and, rounded to 8 significant bits with an unbounded exponent,
// still below 2^-126 (only bits 22..14 all set round up to it).
std::uint32_t bf16_nearest_flags(std::uint32_t x) {
    const std::uint32_t magnitude = x & 0x7fffffffu;
    const bool nan = magnitude > 0x7f800000u;
    const std::uint32_t rounded_magnitude = ((x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u) & 0x7fffffffu;
    const bool invalid = nan && (magnitude & 0x00400000u) == 0;
    const bool overflow = magnitude < 0x7f800000u && rounded_magnitude == 0x7f800000u;
    const bool denormal = magnitude != 0 && magnitude < 0x00800000u;
    const bool underflow = denormal && (magnitude & 0x007fc000u) != 0x007fc000u && (x & 0xffffu) != 0;
    return (invalid ? 1u : 0u) | (denormal ? 2u : 0u) | (overflow ? 4u : 0u) | (underflow ? 8u : 0u);
}

// One FP32 pattern rounded to BF16, nearest-even on the 16 bits below BF16's ulp (a carry moves into the exponent, to
// Inf, by itself); a NaN stays the same NaN, made quiet. The low 16 bits of the result are zero.
inline std::uint32_t bf16_nearest_pattern(std::uint32_t x) {
    const std::uint32_t nan = (x & 0x7fffffffu) > 0x7f800000u ? ~0u : 0u;
    const std::uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u;
    return (nan & ((x & 0xffff0000u) | 0x00400000u)) | (~nan & rounded);
}

// BF16 nearest-even on bit patterns, as FP32 patterns or as BF16 ones. The baseline x86-64 target (SSE2) has no
// blend, so the loops are also built for AVX2 and AVX-512 and picked when the program loads; integer arithmetic, so
// every build gives the same bits.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void round_bf16_bits(const std::uint32_t* from, std::uint32_t* to, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        to[i] = bf16_nearest_pattern(from[i]);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void round_bf16_half_bits(const std::uint32_t* from, std::uint16_t* to, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        to[i] = static_cast<std::uint16_t>(bf16_nearest_pattern(from[i]) >> 16);
    }
}

}  // namespace

void round_to_bf16_nearest_bits(const float* in, std::uint16_t* out, std::size_t n) {
    round_bf16_half_bits(reinterpret_cast<const std::uint32_t*>(in), out, n);
}

void round_to_bf16_nearest_values(const float* in, float* out, std::size_t n) {
    round_bf16_bits(reinterpret_cast<const std::uint32_t*>(in), reinterpret_cast<std::uint32_t*>(out), n);
}

ConversionFlags round_to_bf16_nearest(std::span<const float> in, std::span<float> out,
                                      const ConvertOptions& options) {
    require_same_size(in.size(), out.size());
    const int threads = thread_count(options, in.size());
    const std::uint32_t bits = parallel_chunks(in.size(), 0, threads, [&](std::size_t begin, std::size_t end) {
        const auto* from = reinterpret_cast<const std::uint32_t*>(in.data());
        auto* to = reinterpret_cast<std::uint32_t*>(out.data());
        std::uint32_t flags = 0;
        // Blocks that stay in L1: a vectorised scan for inputs that can raise a flag (a denormal, a NaN, a magnitude
        // that rounds to Inf), the flags worked out one by one only where there are such, then the values, before
        // they overwrite the inputs (in and out may be the same).
        constexpr std::size_t kBlock = 1024;
        for (std::size_t block = begin; block < end; block += kBlock) {
            const std::size_t stop = std::min(end, block + kBlock);
            std::uint32_t special = 0;
            for (std::size_t i = block; i < stop; ++i) {
                const std::uint32_t magnitude = from[i] & 0x7fffffffu;
                special |= (magnitude - 1u < 0x007fffffu || magnitude >= 0x7f7f8000u) ? 1u : 0u;
            }
            if (special != 0) {
                for (std::size_t i = block; i < stop; ++i) {
                    flags |= bf16_nearest_flags(from[i]);
                }
            }
            round_bf16_bits(from + block, to + block, stop - block);
        }
        return flags;
    });
    return ConversionFlags(static_cast<std::uint8_t>(bits));
}

struct PieceRounder::Impl {
    bool bf16_nearest = false;  // round_to_format's own path for it
    bool bf16_exact = false;    // every value of the format is a BF16 value (the *_to_bf16_bits calls)
    ConvertOptions options;
    KernelTable table{};
    EncodeParams encoding{};
    DecodeParams decoding{};

    // The kernels' round entries into `out` of out_bytes per element: 4, FP32 patterns; 2, their top halves.
    ConversionFlags round(const float* in, void* out, std::size_t out_bytes, std::size_t n,
                          std::uint64_t first_index) const {
        return ConversionFlags(static_cast<std::uint8_t>(table.round_fp32(
            reinterpret_cast<const std::uint32_t*>(in), n, out, out_bytes, first_index, encoding, decoding)));
    }
    ConversionFlags round_interleaved(const float* in, void* out, std::size_t out_bytes, std::size_t count,
                                      std::uint64_t first_index, std::uint64_t run_stride) const {
        return ConversionFlags(static_cast<std::uint8_t>(table.round_fp32_interleaved(
            reinterpret_cast<const std::uint32_t*>(in), count, out, out_bytes, first_index, run_stride, encoding,
            decoding)));
    }
    void require_bf16_exact(std::string_view call) const {
        if (!bf16_exact) {
            throw UsageError("PieceRounder::" + std::string(call) +
                             ": the format's values are not all BF16 values (8-bit formats only)");
        }
    }
};

PieceRounder::PieceRounder(const FormatSpec& spec, const ConvertOptions& options) : impl_(std::make_unique<Impl>()) {
    if (spec.denormals != Denormals::Ieee) {
        throw UsageError("PieceRounder: " + to_string(spec) + " has paper denormals; use round_to_format");
    }
    if (spec.kind == FormatKind::Fp32) {
        throw UsageError("PieceRounder: rounding to fp32 is a copy");
    }
    impl_->bf16_nearest = spec.kind == FormatKind::Bf16 && options.rounding == Rounding::NearestEven;
    impl_->bf16_exact = spec.info().width_bits == 8;
    impl_->options = options;
    impl_->options.threads = 1;
    impl_->table = kernels_for(options.isa);
    impl_->encoding = make_encode_params(spec, options);
    impl_->decoding = make_decode_params(spec);
}

PieceRounder::~PieceRounder() = default;

ConversionFlags PieceRounder::round(const float* in, float* out, std::size_t n, std::uint64_t first_index) const {
    if (impl_->bf16_nearest) {
        return round_to_bf16_nearest(std::span<const float>(in, n), std::span<float>(out, n), impl_->options);
    }
    return impl_->round(in, out, sizeof(float), n, first_index);
}

ConversionFlags PieceRounder::round_to_bf16_bits(const float* in, std::uint16_t* out, std::size_t n,
                                                 std::uint64_t first_index) const {
    impl_->require_bf16_exact("round_to_bf16_bits");
    return impl_->round(in, out, sizeof(std::uint16_t), n, first_index);
}

ConversionFlags PieceRounder::round_interleaved(const float* in, float* out, std::size_t count,
                                                std::uint64_t first_index, std::uint64_t run_stride) const {
    if (impl_->options.rounding != Rounding::Stochastic) {
        return round(in, out, kInterleavedRuns * count, first_index);  // element by element: the order is free
    }
    return impl_->round_interleaved(in, out, sizeof(float), count, first_index, run_stride);
}

ConversionFlags PieceRounder::round_interleaved_to_bf16_bits(const float* in, std::uint16_t* out, std::size_t count,
                                                             std::uint64_t first_index,
                                                             std::uint64_t run_stride) const {
    impl_->require_bf16_exact("round_interleaved_to_bf16_bits");
    return impl_->round_interleaved(in, out, sizeof(std::uint16_t), count, first_index, run_stride);
}

ConversionFlags round_to_format(std::span<const float> in, std::span<float> out, const FormatSpec& spec,
                                const ConvertOptions& options) {
    require_same_size(in.size(), out.size());
    if (spec.kind == FormatKind::Fp32) {
        std::copy(in.begin(), in.end(), out.begin());
        return {};
    }
    if (spec.kind == FormatKind::Bf16 && options.rounding == Rounding::NearestEven) {
        return round_to_bf16_nearest(in, out, options);
    }
    if (spec.denormals != Denormals::Paper) {
        // One pass: the kernels' round entry encodes and decodes in registers (no codes stored). Chunks start on
        // Philox groups, so every element draws the word a single encode of the whole span gives it.
        const PieceRounder rounder(spec, options);
        const int threads = thread_count(options, in.size());
        const std::uint32_t bits = parallel_chunks(in.size(), options.first_index, threads,
                                                   [&](std::size_t begin, std::size_t end) -> std::uint32_t {
            return rounder.round(in.data() + begin, out.data() + begin, end - begin, options.first_index + begin)
                .bits();
        });
        return ConversionFlags(static_cast<std::uint8_t>(bits));
    }
    // Paper denormals: the driver finishes the gap's codes (fix_paper_gap), so encode and decode in turn. Chunks of a
    // multiple of the Philox group, so each chunk starts a group and draws the same words a single encode would.
    constexpr std::size_t kChunk = 4096;
    const int threads = thread_count(options, in.size());
    const std::uint32_t bits = parallel_chunks(in.size(), options.first_index, threads,
                                               [&](std::size_t begin, std::size_t end) {
        ConvertOptions single = options;
        single.threads = 1;
        ConversionFlags flags;
        for (std::size_t at = begin; at < end; at += kChunk) {
            const std::size_t count = std::min(kChunk, end - at);
            single.first_index = options.first_index + at;
            const std::span<const float> part = in.subspan(at, count);
            const std::span<float> values = out.subspan(at, count);
            if (spec.info().width_bits == 8) {
                std::uint8_t codes[kChunk];
                const std::span<std::uint8_t> c(codes, count);
                flags |= encode_span<float, std::uint8_t>(part, c, spec, single, false);
                flags |= decode_span<std::uint8_t>(c, values, spec, single);
            } else {
                std::uint16_t codes[kChunk];
                const std::span<std::uint16_t> c(codes, count);
                flags |= encode_span<float, std::uint16_t>(part, c, spec, single, false);
                flags |= decode_span<std::uint16_t>(c, values, spec, single);
            }
        }
        return static_cast<std::uint32_t>(flags.bits());
    });
    return ConversionFlags(static_cast<std::uint8_t>(bits));
}

EncodedValue encode_one(float value, const FormatSpec& to, const ConvertOptions& options) {
    ConvertOptions single = options;
    single.threads = 1;
    const std::span<const float> in(&value, 1);
    switch (to.info().width_bits) {
        case 8: {
            std::uint8_t code = 0;
            const ConversionFlags flags = encode(in, std::span<std::uint8_t>(&code, 1), to, single);
            return {code, flags};
        }
        case 16: {
            std::uint16_t code = 0;
            const ConversionFlags flags = encode(in, std::span<std::uint16_t>(&code, 1), to, single);
            return {code, flags};
        }
        default:
            DOJO_CHECK(to.kind == FormatKind::Fp32) << to_string(to) << " has no code width case";
            return {std::bit_cast<std::uint32_t>(value), {}};
    }
}

float decode_one(std::uint32_t code, const FormatSpec& from) {
    const int width = from.info().width_bits;
    if (width < 32 && code >= (1u << width)) {
        throw UsageError("code " + std::to_string(code) + " does not fit the " + std::to_string(width) +
                         "-bit format " + to_string(from));
    }
    ConvertOptions single;
    single.threads = 1;
    float value = 0.0f;
    if (width == 8) {
        const auto narrow = static_cast<std::uint8_t>(code);
        decode(std::span<const std::uint8_t>(&narrow, 1), std::span<float>(&value, 1), from, single);
    } else if (width == 16) {
        const auto narrow = static_cast<std::uint16_t>(code);
        decode(std::span<const std::uint16_t>(&narrow, 1), std::span<float>(&value, 1), from, single);
    } else {
        value = std::bit_cast<float>(code);
    }
    return value;
}

bool is_denormal_code(std::uint32_t code, const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    if (t.width_bits == 32) {
        return false;
    }
    const std::uint32_t exponent = (code >> t.mantissa_bits) & ((1u << t.exponent_bits) - 1u);
    const std::uint32_t mantissa = code & ((1u << t.mantissa_bits) - 1u);
    return exponent == 0 && mantissa != 0;
}

}  // namespace dojo::numerics
