/** \file
 * A CFloat8 or BF16 RoundTo written straight as the BF16 copy its products and convolutions read
 * (runtime/onednn_kernels.h, bf16_copy()).
 *
 * Why: with the cfp8 and bf16 policies a rounding's only readers are often oneDNN kernels that read their operands as
 * BF16. Written as FP32, the rounded tensor is read again by a reorder that converts it into a BF16 copy: 4 bytes out
 * and 4 + 2 more per element. Written as that copy directly, 2 bytes out, and no reorder runs.
 *
 * Why the same bits: every CFloat8 value (cfp8_143, cfp8_152, any bias) is a BF16 value (at most 3 mantissa bits, an
 * exponent well inside BF16's), and a BF16 rounding's values are BF16 values, so the top half of the rounded FP32
 * pattern is exactly that value in BF16, which is what the reorder would have written.
 */
#pragma once

#include <cstdint>

#include "dojo/ir/op.h"
#include "dojo/ir/shape.h"

namespace dojo::runtime {

/// Whether RoundTo under `attrs` gives values that are all exact in BF16 whatever its input: an 8-bit CFloat format,
/// or BF16 itself with nearest-even rounding (its stochastic rounding is left to RoundTo's kernel).
bool rounds_exactly_into_bf16(const ir::RoundAttrs& attrs);

/// copy[i] = the BF16 bit pattern of RoundTo(x)[i] under `attrs` at training step `step`, x holding `shape` plain
/// or, with `blocked`, channel-blocked (runtime/channel_blocked.h), and the copy in the same layout; `whole_max_abs`
/// is numerics::max_abs(x), as ir::round_piece takes it. Requires rounds_exactly_into_bf16(attrs). Returns false,
/// writing nothing, where the rounding would pass x on unchanged (a max-abs that is not finite: ir/rounding.h), so
/// that the caller writes the FP32 value as usual (its readers' reorder then converts it).
bool round_to_bf16_copy(const ir::RoundAttrs& attrs, double step, const ir::Shape& shape, bool blocked,
                        const float* x, std::uint16_t* copy, float whole_max_abs);

}  // namespace dojo::runtime
