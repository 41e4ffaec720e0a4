/** \file
 * Internal: the contract between the conversion driver (convert.cpp) and the per-instruction-set kernels.
 *
 * One kernel source (encode_kernel.inc) is compiled once per instruction set, each time into its own namespace,
 * and exposes its entry points through a KernelTable. This header holds only plain data and declarations: no
 * inline functions, so translation units compiled with different -m flags share no code that the linker could
 * merge (a classic way to execute AVX-512 instructions on a CPU without them).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace dojo::numerics::kernels {

/// Everything an encode kernel needs about the destination format, precomputed by the driver.
struct EncodeParams {
    std::uint32_t mantissa_bits;       ///< m
    std::int32_t bias_minus_127;       ///< bias - 127: destination biased exponent = FP32 unbiased exponent + bias
    std::uint32_t max_magnitude_code;  ///< code of +max without the sign (largest finite)
    std::uint32_t sign_shift;          ///< position of the sign bit (e + m)
    std::uint32_t has_sign;            ///< 0 for UHP
    std::uint32_t saturate;            ///< 1: CFloat (clamp, NaN -> +max); 0: IEEE (Inf, NaN kept) for bf16
    std::uint32_t inf_magnitude_code;  ///< IEEE formats: code of +Inf
    std::uint32_t paper_denormals;     ///< 1: denormal scale 2^-bias (paper); 0: 2^(1-bias)
    std::uint32_t stochastic;          ///< 1: stochastic rounding, 0: nearest-even
    std::uint32_t paper_gap_low_bits;  ///< paper denormals: FP32 bits of the largest denormal (gap lower end)
    std::uint32_t paper_gap_high_bits; ///< paper denormals: FP32 bits of the smallest normal (gap upper end)
    std::uint32_t min_normal_bits;     ///< FP32 bits of the destination's smallest normal, 2^(1 - bias)
    std::uint64_t seed;
    std::uint64_t stream;
};

/// Everything a decode kernel needs about the source format.
struct DecodeParams {
    std::uint32_t mantissa_bits;     ///< m
    std::uint32_t exponent_bits;     ///< e
    std::uint32_t has_sign;          ///< 0 for UHP
    std::uint32_t is_bf16;           ///< 1: the code is the top half of an FP32 pattern
    std::int32_t bias;               ///< exponent bias
    std::int32_t denormal_exponent;  ///< M * 2^denormal_exponent is a denormal's value: 1-bias-m (ieee), -bias-m
};

/// Encodes in[0..n) to `out` (uint8 when out_bytes == 1, else uint16), element in[j] having tensor index
/// first_index + j. Inputs are FP32 bit patterns (or BF16 patterns when the bf16 entry is used). Returns the OR of
/// the Flag bits raised. Elements in the paper-denormal gap get their flags here but a placeholder code: the
/// driver rewrites their codes (it knows the gap from EncodeParams::paper_gap_*).
using EncodeFn = std::uint32_t (*)(const void* in, std::size_t n, void* out, std::size_t out_bytes,
                                   std::uint64_t first_index, const EncodeParams& params);

/// Decodes codes[0..n) (uint8 when in_bytes == 1, else uint16) to FP32 bit patterns. Returns Flag bits.
using DecodeFn = std::uint32_t (*)(const void* codes, std::size_t in_bytes, std::size_t n, std::uint32_t* out,
                                   const DecodeParams& params);

/// Rounds in[0..n) (FP32 patterns) onto the destination's grid: out[j] is what encoding in[j] with `encoding`
/// (element index first_index + j) and decoding the code with `decoding` gives, and the flags are both calls'. With
/// out_bytes 4 `out` holds those FP32 patterns (and may be `in`); with out_bytes 2 their top halves, the values as
/// BF16 patterns where the format's values are BF16 values (the 8-bit formats). Paper-denormal gap elements are not
/// handled: the driver does not call it for them.
using RoundFn = std::uint32_t (*)(const std::uint32_t* in, std::size_t n, void* out, std::size_t out_bytes,
                                  std::uint64_t first_index, const EncodeParams& encoding,
                                  const DecodeParams& decoding);
/// RoundFn for 16 runs of a tensor interleaved element by element: in[16 j + c] (j < count, c < 16) is element
/// first_index + c * run_stride + j, rounded as RoundFn rounds it there (its own stochastic word) into out[16 j + c].
using RoundInterleavedFn = std::uint32_t (*)(const std::uint32_t* in, std::size_t count, void* out,
                                             std::size_t out_bytes, std::uint64_t first_index,
                                             std::uint64_t run_stride, const EncodeParams& encoding,
                                             const DecodeParams& decoding);
struct KernelTable {
    EncodeFn encode_fp32;
    EncodeFn encode_bf16;
    DecodeFn decode;
    RoundFn round_fp32;
    RoundInterleavedFn round_fp32_interleaved;
};

/// One table per instruction set; the avx2/avx512 ones exist only in x86-64 builds.
KernelTable portable_kernels();
KernelTable avx2_kernels();
KernelTable avx512_kernels();

}  // namespace dojo::numerics::kernels
