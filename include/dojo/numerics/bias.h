/** \file
 * Choosing a tensor's exponent bias from its values: the per-tensor scaling Dojo's configurable formats give
 * instead of loss scaling or FP32 scale factors (cfloat.md §2.3: a bias is an exact power-of-two scale,
 * decode(code, bias) = decode(code, 0) * 2^-bias).
 *
 * Policy: the largest bias (the finest resolution, so the fewest values underflow) whose largest finite value
 * still covers max_abs * 2^headroom_binades. Headroom leaves room for values to grow before the next bias update
 * (e.g. 1 binade: the tensor may double without saturating).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dojo/numerics/format.h"

namespace dojo::numerics {

struct BiasChoice {
    int bias = 0;      ///< the chosen bias, 0..63
    bool fits = true;  ///< false if even bias 0 cannot hold max_abs * 2^headroom: values will saturate
};

/// The bias for a tensor of `kind` whose largest magnitude is `max_abs` (see policy above). A zero max_abs gives
/// the format's default bias (any bias holds zeros exactly). Throws UsageError for non-CFloat kinds, a negative,
/// NaN or infinite max_abs, or a negative or non-finite headroom.
BiasChoice choose_bias(FormatKind kind, double max_abs, double headroom_binades = 0.0,
                       Denormals denormals = Denormals::Ieee);

/// The largest |x| over `values`: +Inf if any is infinite, NaN if any is NaN (NaN wins). 0 for an empty span.
/// Multithreaded over large spans (threads = 0: all hardware threads).
float max_abs(std::span<const float> values, int threads = 0);

/// max_abs's measure of one piece, on the calling thread, for a caller that sees a tensor piece by piece (a kernel
/// that writes it): the largest (bit pattern & 0x7fffffff) of `values`. The max of the pieces' measures, bit_cast to
/// float, is the whole tensor's max_abs.
std::uint32_t max_abs_bits(const float* values, std::size_t n);

}  // namespace dojo::numerics
