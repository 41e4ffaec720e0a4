/** \file
 * Host tensors: a shape and contiguous row-major elements of T (float or double). The reference interpreter's tensors
 * own their elements; the runtime executor's are bound to offsets in its one arena (ir/storage.h says how assignment
 * behaves for each).
 */
#pragma once

#include <vector>

#include "dojo/ir/shape.h"
#include "dojo/ir/storage.h"

namespace dojo::ir {

template <typename T>
struct Buffer {
    Shape shape;
    Storage<T> data;  // shape.numel() elements, row-major (none for a value the runtime never stores)

    Buffer() = default;
    explicit Buffer(Shape s, T fill = T{}) : shape(std::move(s)), data(static_cast<std::size_t>(shape.numel()), fill) {}
    Buffer(Shape s, std::vector<T> values) : shape(std::move(s)), data(std::move(values)) {}
};

}  // namespace dojo::ir
