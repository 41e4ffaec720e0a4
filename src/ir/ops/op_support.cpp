#include "op_support.h"

#include <omp.h>

#include <algorithm>

namespace dojo::ir::ops {

std::string label(const Node& node) {
    const std::string op(to_string(node.op));
    return node.name.empty() ? "a " + op + " node" : "node '" + node.name + "' (" + op + ")";
}

void fail(const Node& node, const std::string& message) { throw GraphError(label(node) + ": " + message); }

void require_f32(const Node& node, std::span<const TensorType> inputs) {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].dtype != DType::F32) {
            fail(node, "input " + std::to_string(i) + " is " + inputs[i].to_string() +
                           "; this op computes in f32 (narrower storage is a precision-policy matter)");
        }
    }
}

}  // namespace dojo::ir::ops

namespace dojo::ir {

BroadcastWalker::BroadcastWalker(const Shape& out, std::initializer_list<const Shape*> inputs)
    : dims_(out.dims()), coords_(dims_.size(), 0), offsets_(inputs.size(), 0) {
    for (const Shape* in : inputs) {
        const std::vector<std::int64_t> in_strides = strides_of(*in);
        std::vector<std::int64_t> strides(dims_.size(), 0);
        const int extra = out.rank() - in->rank();
        for (int axis = 0; axis < in->rank(); ++axis) {
            if ((*in)[axis] != 1) {
                strides[static_cast<std::size_t>(axis + extra)] = in_strides[static_cast<std::size_t>(axis)];
            }
        }
        strides_.push_back(std::move(strides));
    }
}

BroadcastWalker::BroadcastWalker(std::vector<std::int64_t> dims, std::vector<std::vector<std::int64_t>> strides)
    : dims_(std::move(dims)), coords_(dims_.size(), 0), strides_(std::move(strides)), offsets_(strides_.size(), 0) {}

void BroadcastWalker::next() {
    for (std::size_t axis = dims_.size(); axis-- > 0;) {
        ++coords_[axis];
        for (std::size_t i = 0; i < offsets_.size(); ++i) {
            offsets_[i] += strides_[i][axis];
        }
        if (coords_[axis] < dims_[axis]) {
            return;
        }
        for (std::size_t i = 0; i < offsets_.size(); ++i) {
            offsets_[i] -= strides_[i][axis] * dims_[axis];
        }
        coords_[axis] = 0;
    }
}

void BroadcastWalker::seek(std::int64_t flat_index) {
    std::fill(offsets_.begin(), offsets_.end(), 0);
    for (std::size_t axis = dims_.size(); axis-- > 0;) {
        coords_[axis] = dims_[axis] == 0 ? 0 : flat_index % dims_[axis];
        flat_index = dims_[axis] == 0 ? 0 : flat_index / dims_[axis];
        for (std::size_t i = 0; i < offsets_.size(); ++i) {
            offsets_[i] += coords_[axis] * strides_[i][axis];
        }
    }
}

BroadcastRows::BroadcastRows(const Shape& out, std::span<const Shape* const> inputs) {
    // Per-axis dims and input strides (0 where broadcast), axes of size 1 dropped.
    std::vector<std::int64_t> dims;
    std::vector<std::vector<std::int64_t>> strides(inputs.size());
    std::vector<std::vector<std::int64_t>> in_strides;
    for (const Shape* in : inputs) {
        in_strides.push_back(strides_of(*in));
    }
    for (int axis = 0; axis < out.rank(); ++axis) {
        if (out[axis] == 1) {
            continue;
        }
        dims.push_back(out[axis]);
        std::size_t k = 0;
        for (const Shape* in : inputs) {
            const int in_axis = axis - (out.rank() - in->rank());
            const bool present = in_axis >= 0 && (*in)[in_axis] != 1;
            strides[k].push_back(present ? in_strides[k][static_cast<std::size_t>(in_axis)] : 0);
            ++k;
        }
    }
    // Merge axis i into axis i + 1 while every input's stride along i is its stride along i + 1 times dim i + 1.
    std::vector<std::int64_t> merged_dims;
    std::vector<std::vector<std::int64_t>> merged(inputs.size());
    for (std::size_t axis = 0; axis < dims.size(); ++axis) {
        bool can_merge = !merged_dims.empty();
        for (std::size_t k = 0; k < inputs.size() && can_merge; ++k) {
            can_merge = merged[k].back() == strides[k][axis] * dims[axis];
        }
        if (can_merge) {
            merged_dims.back() *= dims[axis];
            for (std::size_t k = 0; k < inputs.size(); ++k) {
                merged[k].back() = strides[k][axis];
            }
        } else {
            merged_dims.push_back(dims[axis]);
            for (std::size_t k = 0; k < inputs.size(); ++k) {
                merged[k].push_back(strides[k][axis]);
            }
        }
    }
    inner_strides_.assign(inputs.size(), 0);
    if (!merged_dims.empty()) {  // the last merged axis is the row; strides along it are 0 or 1
        row_length_ = merged_dims.back();
        merged_dims.pop_back();
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            inner_strides_[k] = merged[k].back();
            merged[k].pop_back();
        }
    }
    for (const std::int64_t d : merged_dims) {
        rows_ *= d;
    }
    if (out.numel() == 0) {
        rows_ = 0;
    }
    outer_ = BroadcastWalker(std::move(merged_dims), std::move(merged));
}

}  // namespace dojo::ir

namespace dojo::ir::ops {

void parallel_for(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& body) {
    const auto chunks = std::min<std::int64_t>(omp_get_max_threads(), std::max<std::int64_t>(1, n / std::max<std::int64_t>(grain, 1)));
    if (chunks <= 1 || omp_in_parallel()) {
        body(0, n);
        return;
    }
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (std::int64_t c = 0; c < chunks; ++c) {
        body(n * c / chunks, n * (c + 1) / chunks);
    }
}

double bytes_of(const TensorType& type) {
    return static_cast<double>(type.shape.numel()) * dtype_info(type.dtype).size_bytes;
}

OpCost elementwise_cost(const Node& node, std::span<const TensorType> inputs, double flops_per_element) {
    OpCost cost;
    for (const TensorType& input : inputs) {
        cost.bytes_read += bytes_of(input);
    }
    cost.bytes_written = bytes_of(node.type);
    cost.flops = flops_per_element * static_cast<double>(node.type.shape.numel());
    cost.unit = ComputeUnit::Vector;
    return cost;
}

}  // namespace dojo::ir::ops
