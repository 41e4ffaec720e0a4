#include "dojo/ir/dtype.h"

#include <string>

#include "dojo/util/error.h"

namespace dojo::ir {
namespace {

constexpr DTypeInfo kDTypes[] = {
    {"f32", 4, true}, {"bf16", 2, true}, {"cfp8_143", 1, true}, {"cfp8_152", 1, true},
    {"shp", 2, true}, {"i64", 8, false}, {"bool", 1, false},
};
static_assert(std::size(kDTypes) == static_cast<std::size_t>(DType::Bool) + 1, "one row per DType");

}  // namespace

const DTypeInfo& dtype_info(DType dtype) { return kDTypes[static_cast<std::size_t>(dtype)]; }

std::string_view to_string(DType dtype) { return dtype_info(dtype).name; }

DType parse_dtype(std::string_view name) {
    for (std::size_t i = 0; i < std::size(kDTypes); ++i) {
        if (kDTypes[i].name == name) {
            return static_cast<DType>(i);
        }
    }
    throw UsageError("unknown dtype '" + std::string(name) + "'; expected f32, bf16, cfp8_143, cfp8_152, shp, i64 or bool");
}

}  // namespace dojo::ir
