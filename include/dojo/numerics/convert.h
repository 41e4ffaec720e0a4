/** \file
 * Conversions between FP32/BF16 and every format of format.h: bulk over spans (SIMD, multithreaded) and one
 * value at a time. Semantics: shared/spec/cfloat.md Part 1; the points a caller needs are below.
 *
 * Encoding (FP32 or BF16 -> a format), on the magnitude, sign reapplied afterwards:
 *   Rounding::NearestEven  the nearest representable value; a tie goes to the code whose last bit is 0.
 *   Rounding::Stochastic   between the adjacent representable magnitudes lo < |x| < hi (hi may be the value an
 *                          unbounded exponent would give above max), round up iff
 *                              r < floor(2^32 * (|x| - lo) / (hi - lo)),   r = stochastic_word(seed, stream, i)
 *                          This is cfloat.md F8's "r < D" with r the top k bits of the word: P(up) = D / 2^k exactly
 *                          whenever k <= 32 (every normal-range and denormal-range input); only inputs below
 *                          2^-9 of the smallest denormal see k > 32, where P(up) is truncated to 32 fractional
 *                          bits (error < 2^-32). In the paper-denormal gap, hi - lo is not a power of two and the
 *                          same formula applies. Exact inputs never round. Rounding is symmetric in sign.
 *   Overflow   judged with an unbounded exponent: a value that rounds above max becomes +-max (CFloat; Overflow
 *              raised) or +-Inf (bf16). +-Inf inputs: +-max with Overflow (CFloat), +-Inf (bf16).
 *   NaN        CFloat: +max with Invalid. bf16: a quiet NaN with the input's sign and top payload bits.
 *   Zero       +0.0 -> code 0, -0.0 -> the sign bit alone. Values that round to zero keep their sign.
 *   UHP        negative non-zero inputs (and -Inf) give +0 with Invalid; -0.0 gives +0.
 *   FP32       encoding to fp32 is the identity.
 * Decoding (a code -> FP32) is exact for every format. The Denormal flag reports denormal codes.
 * Transcoding (format -> format, e.g. cfp8 <-> shp) decodes exactly to FP32 and rounds once (no double rounding).
 *
 * Determinism: the result of every element depends only on its value, the format, the rounding options and its
 * index; never on threads, chunking or the instruction set. The SIMD paths (AVX-512, AVX2) and the portable path
 * are one kernel source compiled three times; tests check them bit for bit against each other and against an
 * independent reference.
 *
 * Sizes: input and output spans must have equal length; an 8-bit format's codes are std::uint8_t, a 16-bit
 * format's std::uint16_t. A mismatch is a UsageError. Spans may not overlap.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "dojo/numerics/flags.h"
#include "dojo/numerics/format.h"

namespace dojo::numerics {

enum class Rounding : std::uint8_t {
    NearestEven,
    Stochastic,
};

/// "nearest" or "stochastic"; throws UsageError otherwise.
Rounding parse_rounding(std::string_view name);
std::string_view to_string(Rounding rounding);

/// Instruction-set paths of the bulk kernels.
enum class Isa : std::uint8_t {
    Auto,      ///< the best available on this CPU
    Portable,  ///< generic vector code, any CPU
    Avx2,      ///< x86-64 AVX2
    Avx512,    ///< x86-64 AVX-512 (F, BW, VL, DQ)
};

/// True if this build has the path and this CPU can run it (Auto and Portable always are).
bool isa_available(Isa isa);
/// The path Auto resolves to here.
Isa best_isa();
std::string_view to_string(Isa isa);
/// "auto", "portable", "avx2", "avx512"; throws UsageError otherwise.
Isa parse_isa(std::string_view name);

/// Options of a bulk conversion. Defaults: nearest-even, all hardware threads, best instruction set.
struct ConvertOptions {
    Rounding rounding = Rounding::NearestEven;
    std::uint64_t seed = 0;         ///< stochastic rounding: the Philox key
    std::uint64_t stream = 0;       ///< stochastic rounding: e.g. a tensor id; part of the Philox counter
    std::uint64_t first_index = 0;  ///< index of in[0] in the whole tensor, so that a tensor converted in pieces
                                    ///< rounds exactly like one converted whole
    int threads = 0;                ///< 0: all hardware threads; 1: the calling thread only
    Isa isa = Isa::Auto;            ///< force a path (tests, benchmarks); UsageError if not available
};

/// Spans shorter than this run on the calling thread: below it, starting threads costs more than it saves.
inline constexpr std::size_t kMinElementsPerThread = std::size_t{1} << 15;

/// FP32 -> `to`. `out` holds uint8 codes for 8-bit formats, uint16 for 16-bit ones (bf16 bits for bf16).
ConversionFlags encode(std::span<const float> in, std::span<std::uint8_t> out, const FormatSpec& to,
                       const ConvertOptions& options = {});
ConversionFlags encode(std::span<const float> in, std::span<std::uint16_t> out, const FormatSpec& to,
                       const ConvertOptions& options = {});
/// FP32 -> fp32 (identity copy; no flags). Provided so that generic code can treat fp32 like the other formats.
ConversionFlags encode(std::span<const float> in, std::span<float> out, const FormatSpec& to,
                       const ConvertOptions& options = {});

/// BF16 (given as its 16-bit patterns) -> `to`. BF16 is widened to FP32 exactly first.
ConversionFlags encode_bf16(std::span<const std::uint16_t> bf16_bits, std::span<std::uint8_t> out,
                            const FormatSpec& to, const ConvertOptions& options = {});
ConversionFlags encode_bf16(std::span<const std::uint16_t> bf16_bits, std::span<std::uint16_t> out,
                            const FormatSpec& to, const ConvertOptions& options = {});

/// Codes of `from` -> FP32, exactly. Only threads and isa of `options` matter.
ConversionFlags decode(std::span<const std::uint8_t> codes, std::span<float> out, const FormatSpec& from,
                       const ConvertOptions& options = {});
ConversionFlags decode(std::span<const std::uint16_t> codes, std::span<float> out, const FormatSpec& from,
                       const ConvertOptions& options = {});

/// Codes of `from` -> codes of `to` (exact FP32 intermediate, one rounding). Flags of both steps.
ConversionFlags transcode(std::span<const std::uint8_t> in, const FormatSpec& from, std::span<std::uint8_t> out,
                          const FormatSpec& to, const ConvertOptions& options = {});
ConversionFlags transcode(std::span<const std::uint8_t> in, const FormatSpec& from, std::span<std::uint16_t> out,
                          const FormatSpec& to, const ConvertOptions& options = {});
ConversionFlags transcode(std::span<const std::uint16_t> in, const FormatSpec& from, std::span<std::uint8_t> out,
                          const FormatSpec& to, const ConvertOptions& options = {});
ConversionFlags transcode(std::span<const std::uint16_t> in, const FormatSpec& from, std::span<std::uint16_t> out,
                          const FormatSpec& to, const ConvertOptions& options = {});

/// FP32 -> FP32 values on `spec`'s grid: each element encoded (with `options`' rounding) and decoded again, in
/// chunks through a stack buffer, so nothing is allocated. This is how a training step emulates a narrower format
/// while computing in FP32 (every value of every format is exact in FP32). `in` and `out` may be the same span.
ConversionFlags round_to_format(std::span<const float> in, std::span<float> out, const FormatSpec& spec,
                                const ConvertOptions& options = {});

/// Runs PieceRounder::round_interleaved interleaves.
inline constexpr std::size_t kInterleavedRuns = 16;

/// round_to_format prepared once for many short pieces of one tensor, for a caller that walks the tensor in an order
/// of its own (a channel-blocked activation, say): the kernel is picked and the format's parameters packed at
/// construction, so that each round() costs what its elements cost. round(in, out, n, i) gives round_to_format's
/// values and flags for in[0..n) at tensor index i (options.first_index is ignored), on the calling thread. IEEE
/// denormals only: the paper ones need a second pass over their gap (UsageError).
class PieceRounder {
public:
    PieceRounder(const FormatSpec& spec, const ConvertOptions& options);
    ~PieceRounder();
    PieceRounder(const PieceRounder&) = delete;
    PieceRounder& operator=(const PieceRounder&) = delete;

    /// in[0..n) rounded into out[0..n) (the same array or disjoint), in[j] being element first_index + j.
    ConversionFlags round(const float* in, float* out, std::size_t n, std::uint64_t first_index) const;

    /// kInterleavedRuns runs of the tensor interleaved element by element, as a channel-blocked activation holds 16
    /// channels: in[16 j + c] (j < count, c < 16) is element first_index + c * run_stride + j. Rounded in place or
    /// into a disjoint out[0..16 count), each element as round() rounds it at its index (its own stochastic word),
    /// with no more random draws than the plain order takes when run_stride and first_index are multiples of 64.
    ConversionFlags round_interleaved(const float* in, float* out, std::size_t count, std::uint64_t first_index,
                                      std::uint64_t run_stride) const;

    /// round() and round_interleaved() writing each value as its BF16 bit pattern (the top half of its FP32 one),
    /// for an 8-bit format, every value of which is a BF16 value (UsageError for others): a BF16 operand written in
    /// one pass. Same flags.
    ConversionFlags round_to_bf16_bits(const float* in, std::uint16_t* out, std::size_t n,
                                       std::uint64_t first_index) const;
    ConversionFlags round_interleaved_to_bf16_bits(const float* in, std::uint16_t* out, std::size_t count,
                                                   std::uint64_t first_index, std::uint64_t run_stride) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// round_to_format for bf16 with nearest-even, in one pass over the bit patterns (no codes in between): the same
/// values and flags as encoding to bf16 and decoding again. `in` and `out` may be the same span.
ConversionFlags round_to_bf16_nearest(std::span<const float> in, std::span<float> out,
                                      const ConvertOptions& options = {});

/// round_to_bf16_nearest's values without its flags, on one thread, for kernels that round a block at a time (the
/// fused elementwise kernels): out[i] = in[i] rounded to BF16, nearest-even; NaN stays the same NaN, made quiet.
/// `in` and `out` may be the same array. Vectorised for the CPU the program runs on.
void round_to_bf16_nearest_values(const float* in, float* out, std::size_t n);

/// The same rounding written as BF16 bit patterns (the top halves of round_to_bf16_nearest_values' FP32 patterns),
/// on one thread, vectorised: what a BF16 kernel reads.
void round_to_bf16_nearest_bits(const float* in, std::uint16_t* out, std::size_t n);

/// One value: its code (in the low 8 or 16 bits; the FP32 bit pattern for fp32) and the flags it raised.
struct EncodedValue {
    std::uint32_t code = 0;
    ConversionFlags flags;
};

/// FP32 -> `to` for one value that sits at `options.first_index` in its tensor (so stochastic rounding draws
/// the same word as the bulk path would). Same semantics and bits as the bulk encode.
EncodedValue encode_one(float value, const FormatSpec& to, const ConvertOptions& options = {});

/// One code of `from` -> FP32, exactly. Throws UsageError if `code` does not fit the format's width.
float decode_one(std::uint32_t code, const FormatSpec& from);

/// True if `code` is a denormal (E = 0, M != 0) of `spec`; false for fp32 (not meaningful at that width).
bool is_denormal_code(std::uint32_t code, const FormatSpec& spec);

}  // namespace dojo::numerics
