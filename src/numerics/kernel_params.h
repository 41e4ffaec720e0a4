/** \file
 * Internal: the kernel parameters the driver derives from a FormatSpec and ConvertOptions. Separate from
 * kernels/kernel_api.h because it needs the public headers, which the kernel translation units must not include.
 * Used by convert.cpp and by tests that drive kernels directly.
 */
#pragma once

#include "dojo/numerics/convert.h"
#include "kernels/kernel_api.h"

namespace dojo::numerics {

kernels::EncodeParams make_encode_params(const FormatSpec& spec, const ConvertOptions& options);
kernels::DecodeParams make_decode_params(const FormatSpec& spec);

}  // namespace dojo::numerics
