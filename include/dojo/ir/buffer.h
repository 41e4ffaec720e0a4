/** \file
 * Host tensors for the reference interpreter: a shape and contiguous row-major elements of T (float or double).
 * The runtime's arena-backed tensors are a different thing; these exist to define and check semantics.
 */
#pragma once

#include <vector>

#include "dojo/ir/shape.h"

namespace dojo::ir {

template <typename T>
struct Buffer {
    Shape shape;
    std::vector<T> data;  // shape.numel() elements, row-major

    Buffer() = default;
    explicit Buffer(Shape s, T fill = T{}) : shape(std::move(s)), data(static_cast<std::size_t>(shape.numel()), fill) {}
    Buffer(Shape s, std::vector<T> values) : shape(std::move(s)), data(std::move(values)) {}
};

}  // namespace dojo::ir
