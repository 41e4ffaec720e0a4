#include "dojo/ir/shape.h"

#include <algorithm>

#include "dojo/util/error.h"

namespace dojo::ir {

Shape::Shape(std::initializer_list<std::int64_t> dims) : Shape(std::vector<std::int64_t>(dims)) {}

Shape::Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) {
    std::int64_t numel = 1;
    for (const std::int64_t d : dims_) {
        if (d < 0) {
            throw GraphError("shape " + to_string() + " has a negative dimension; dimensions must be >= 0");
        }
        if (d != 0 && numel > kMaxElements / d) {
            throw GraphError("shape " + to_string() + " has more than 2^50 elements; no tensor of a model can be "
                             "that large: make the model or the batch smaller");
        }
        numel *= d;
    }
}

std::int64_t Shape::numel() const {
    std::int64_t n = 1;
    for (const std::int64_t d : dims_) {
        n *= d;
    }
    return n;
}

std::string Shape::to_string() const {
    std::string text = "[";
    for (std::size_t i = 0; i < dims_.size(); ++i) {
        text += (i ? ", " : "") + std::to_string(dims_[i]);
    }
    return text + "]";
}

std::vector<std::int64_t> strides_of(const Shape& shape) {
    std::vector<std::int64_t> strides(static_cast<std::size_t>(shape.rank()), 1);
    for (int axis = shape.rank() - 2; axis >= 0; --axis) {
        strides[static_cast<std::size_t>(axis)] =
            strides[static_cast<std::size_t>(axis) + 1] * shape[axis + 1];
    }
    return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
    const int rank = std::max(a.rank(), b.rank());
    std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
    for (int i = 0; i < rank; ++i) {
        const int ia = a.rank() - rank + i;
        const int ib = b.rank() - rank + i;
        const std::int64_t da = ia >= 0 ? a[ia] : 1;
        const std::int64_t db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            throw GraphError("shapes " + a.to_string() + " and " + b.to_string() + " do not broadcast: dimension " +
                             std::to_string(i) + " is " + std::to_string(da) + " vs " + std::to_string(db) +
                             " (each pair must be equal or one of them 1)");
        }
        dims[static_cast<std::size_t>(i)] = da == 1 ? db : da;
    }
    return Shape(std::move(dims));
}

int normalize_axis(int axis, int rank, const std::string& what) {
    if (axis < -rank || axis >= rank) {
        throw GraphError(what + ": axis " + std::to_string(axis) + " is out of range for rank " +
                         std::to_string(rank) + " (valid: " + std::to_string(-rank) + ".." +
                         std::to_string(rank - 1) + ")");
    }
    return axis < 0 ? axis + rank : axis;
}

}  // namespace dojo::ir
