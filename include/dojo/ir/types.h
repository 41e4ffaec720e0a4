/** \file
 * Node handles and tensor types: the small value types every IR header shares.
 */
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "dojo/ir/dtype.h"
#include "dojo/ir/shape.h"

namespace dojo::ir {

/// A node of a Graph, by position. Each node produces exactly one tensor, so a NodeId also names that value.
/// Default-constructed ids are invalid ("no value": a gradient rule returns it for inputs without a gradient).
struct NodeId {
    static constexpr std::uint32_t kInvalid = std::numeric_limits<std::uint32_t>::max();
    std::uint32_t index = kInvalid;

    bool valid() const { return index != kInvalid; }
    bool operator==(const NodeId&) const = default;
    auto operator<=>(const NodeId&) const = default;
};

/// The type of the tensor a node produces.
struct TensorType {
    DType dtype = DType::F32;
    Shape shape;

    bool operator==(const TensorType&) const = default;
    std::string to_string() const { return std::string(ir::to_string(dtype)) + shape.to_string(); }
};

}  // namespace dojo::ir
