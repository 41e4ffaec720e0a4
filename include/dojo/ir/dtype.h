/** \file
 * Element types of IR tensors.
 *
 * F32 is the type every value computes in (FP32 master values, FP32 accumulation). The narrower floating types are
 * storage types a precision policy may choose for a tensor; their values are exactly representable in F32
 * (numerics/format.h), so the reference semantics of an op never depend on them. I64 holds indices, Bool masks.
 */
#pragma once

#include <cstdint>
#include <string_view>

namespace dojo::ir {

enum class DType : std::uint8_t { F32, Bf16, Cfp8_143, Cfp8_152, Shp, I64, Bool };

struct DTypeInfo {
    std::string_view name;
    int size_bytes;
    bool is_float;
};

const DTypeInfo& dtype_info(DType dtype);
std::string_view to_string(DType dtype);
/// "f32", "bf16", "cfp8_143", "cfp8_152", "shp", "i64", "bool"; throws UsageError otherwise.
DType parse_dtype(std::string_view name);

}  // namespace dojo::ir
