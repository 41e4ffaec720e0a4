// MaxPool2d (NCHW) and its adjoint. Padding positions never win a window; a window's gradient goes to its first
// maximum in (row, column) order.
#include <algorithm>
#include <cmath>
#include <limits>

#include "dojo/ir/pooling.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

struct Window {
    std::int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, pt, pl;
};

Window window(const PoolAttrs& a, const Shape& x) {
    Window g{};
    g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3];
    g.kh = a.kernel[0], g.kw = a.kernel[1], g.sh = a.strides[0], g.sw = a.strides[1];
    g.pt = a.pads[0], g.pl = a.pads[1];
    g.oh = (g.h + a.pads[0] + a.pads[2] - g.kh) / g.sh + 1;
    g.ow = (g.w + a.pads[1] + a.pads[3] - g.kw) / g.sw + 1;
    return g;
}

Window checked_window(const Node& node, const Shape& x) {
    const PoolAttrs& a = attrs_of<PoolAttrs>(node);
    if (x.rank() != 4) {
        fail(node, "needs x [N, C, H, W], got " + x.to_string());
    }
    if (a.kernel[0] < 1 || a.kernel[1] < 1 || a.strides[0] < 1 || a.strides[1] < 1) {
        fail(node, "kernel and strides must be >= 1");
    }
    for (const std::int64_t p : a.pads) {
        if (p < 0 || p >= std::max(a.kernel[0], a.kernel[1])) {
            fail(node, "pads must be >= 0 and smaller than the kernel");
        }
    }
    const Window g = window(a, x);
    if (g.oh < 1 || g.ow < 1) {
        fail(node, "the pooling window does not fit the input " + x.to_string());
    }
    return g;
}

// Index (into x) of the first maximum of output element (oh, ow)'s window in the plane starting at `plane` (an index
// into x); -1 if the window is all padding. The window is clipped to the plane once, so the inner loop reads memory
// without bounds checks. A NaN wins at once (NaN propagates, as in PyTorch).
template <typename T>
std::int64_t argmax(const Window& g, const T* x, std::int64_t plane, std::int64_t oh, std::int64_t ow) {
    const std::int64_t r0 = std::max<std::int64_t>(0, g.pt - oh * g.sh);
    const std::int64_t r1 = std::min<std::int64_t>(g.kh, g.h + g.pt - oh * g.sh);
    const std::int64_t s0 = std::max<std::int64_t>(0, g.pl - ow * g.sw);
    const std::int64_t s1 = std::min<std::int64_t>(g.kw, g.w + g.pl - ow * g.sw);
    std::int64_t best = -1;
    T best_value = T(0);
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::int64_t row = plane + (oh * g.sh - g.pt + r) * g.w + (ow * g.sw - g.pl);
        for (std::int64_t s = s0; s < s1; ++s) {
            const T v = x[row + s];
            if (v != v) {
                return row + s;
            }
            if (best < 0 || v > best_value) {
                best = row + s;
                best_value = v;
            }
        }
    }
    return best;
}

// Calls f(i, at) for every output element i (row-major) with `at` the index in x of its window's first maximum (-1
// for an all-padding window). Planes (n, c) are independent and split over threads; windows never cross planes.
template <typename T, typename F>
void for_each_window(const Window& g, const Storage<T>& x, F&& f) {
    parallel_for(g.n * g.c, 1, [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t plane = first; plane < last; ++plane) {
            std::size_t i = static_cast<std::size_t>(plane * g.oh * g.ow);
            for (std::int64_t oh = 0; oh < g.oh; ++oh) {
                for (std::int64_t ow = 0; ow < g.ow; ++ow, ++i) {
                    f(i, argmax(g, x.data(), plane * g.h * g.w, oh, ow));
                }
            }
        }
    });
}

TensorType pool_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const Window g = checked_window(node, in[0].shape);
    return TensorType{DType::F32, Shape{g.n, g.c, g.oh, g.ow}};
}

template <typename T>
void pool_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Window g = window(attrs_of<PoolAttrs>(node), in[0]->shape);
    const Storage<T>& x = in[0]->data;
    for_each_window(g, x, [&](std::size_t i, std::int64_t at) {
        out.data[i] = at < 0 ? -std::numeric_limits<T>::infinity() : x[static_cast<std::size_t>(at)];
    });
}

// MaxPool2dBackward: (x, g) -> dx.
TensorType pool_backward_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const Window g = checked_window(node, in[0].shape);
    if (!(in[1].shape == Shape{g.n, g.c, g.oh, g.ow})) {
        fail(node, "gradient " + in[1].shape.to_string() + " does not match the pooling output");
    }
    return in[0];
}

template <typename T>
void pool_backward_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Window g = window(attrs_of<PoolAttrs>(node), in[0]->shape);
    const Storage<T>& x = in[0]->data;
    const Storage<T>& dy = in[1]->data;
    std::fill(out.data.begin(), out.data.end(), T(0));
    for_each_window(g, x, [&](std::size_t i, std::int64_t at) {
        if (at >= 0) {
            out.data[static_cast<std::size_t>(at)] += dy[i];  // the window's plane belongs to this thread alone
        }
    });
}

std::vector<NodeId> pool_grad(Graph& graph, NodeId y, NodeId grad) {
    const PoolAttrs attrs = attrs_of<PoolAttrs>(graph.node(y));
    const NodeId x = graph.node(y).inputs[0];
    return {graph.add(OpKind::MaxPool2dBackward, attrs, {x, grad})};
}

OpCost pool_cost(const Node& node, std::span<const TensorType> in) {
    const PoolAttrs& a = attrs_of<PoolAttrs>(node);
    return elementwise_cost(node, in, static_cast<double>(a.kernel[0] * a.kernel[1]));
}

OpCost pool_backward_cost(const Node& node, std::span<const TensorType> in) {
    const PoolAttrs& a = attrs_of<PoolAttrs>(node);
    OpCost cost = elementwise_cost(node, in, 0);
    cost.flops = static_cast<double>(in[1].shape.numel() * a.kernel[0] * a.kernel[1]);
    return cost;
}

}  // namespace

extern const OpInfo kMaxPool2dOp = {OpKind::MaxPool2d,       "MaxPool2d", 1, kAttrsIndex<PoolAttrs>, &pool_shape,
                                    &pool_kernel<float>,     &pool_kernel<double>, &pool_grad, &pool_cost};
extern const OpInfo kMaxPool2dBackwardOp = {OpKind::MaxPool2dBackward,     "MaxPool2dBackward", 2,
                                            kAttrsIndex<PoolAttrs>,        &pool_backward_shape,
                                            &pool_backward_kernel<float>,  &pool_backward_kernel<double>,
                                            nullptr,                       &pool_backward_cost};

}  // namespace dojo::ir::ops

namespace dojo::ir {

std::int64_t max_pool_first_maximum(const PoolAttrs& attrs, const Shape& x_shape, const float* plane, std::int64_t oh,
                                    std::int64_t ow) {
    return ops::argmax(ops::window(attrs, x_shape), plane, 0, oh, ow);
}

}  // namespace dojo::ir
