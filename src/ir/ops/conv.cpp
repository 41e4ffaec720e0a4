// Conv2d (NCHW, groups, strides, pads, dilations) and its two adjoints, which are its gradient.
#include <algorithm>

#include "op_support.h"

namespace dojo::ir::ops {
namespace {

// The geometry of one convolution, from its attributes and the shapes of x [N, C, H, W] and w [K, C/G, R, S].
struct Geometry {
    std::int64_t n, c, h, w;      // input
    std::int64_t k, r, s;         // filters
    std::int64_t groups, c_per_group, k_per_group;
    std::int64_t oh, ow;          // output
    std::int64_t sh, sw, dh, dw, pt, pl;
};

Geometry geometry(const Conv2dAttrs& a, const Shape& x, const Shape& w) {
    Geometry g{};
    g.n = x[0], g.c = x[1], g.h = x[2], g.w = x[3];
    g.k = w[0], g.r = w[2], g.s = w[3];
    g.groups = a.groups;
    g.c_per_group = g.c / a.groups;
    g.k_per_group = g.k / a.groups;
    g.sh = a.strides[0], g.sw = a.strides[1], g.dh = a.dilations[0], g.dw = a.dilations[1];
    g.pt = a.pads[0], g.pl = a.pads[1];
    g.oh = (g.h + a.pads[0] + a.pads[2] - g.dh * (g.r - 1) - 1) / g.sh + 1;
    g.ow = (g.w + a.pads[1] + a.pads[3] - g.dw * (g.s - 1) - 1) / g.sw + 1;
    return g;
}

// Validates the attributes and shapes; returns the geometry. `who` names the node for messages.
Geometry checked_geometry(const Node& node, const Conv2dAttrs& a, const Shape& x, const Shape& w) {
    if (x.rank() != 4 || w.rank() != 4) {
        fail(node, "needs x [N, C, H, W] and w [K, C/groups, R, S], got " + x.to_string() + " and " + w.to_string());
    }
    for (const std::int64_t v : {a.strides[0], a.strides[1], a.dilations[0], a.dilations[1], a.groups}) {
        if (v < 1) {
            fail(node, "strides, dilations and groups must be >= 1");
        }
    }
    for (const std::int64_t p : a.pads) {
        if (p < 0) {
            fail(node, "pads must be >= 0");
        }
    }
    if (x[1] % a.groups != 0 || w[0] % a.groups != 0 || w[1] != x[1] / a.groups) {
        fail(node, "channels do not match: x " + x.to_string() + ", w " + w.to_string() + ", groups " +
                       std::to_string(a.groups) + " (w must be [K, C/groups, R, S] with K and C divisible by groups)");
    }
    const Geometry g = geometry(a, x, w);
    if (g.oh < 1 || g.ow < 1) {
        fail(node, "the " + std::to_string(g.r) + "x" + std::to_string(g.s) + " kernel does not fit the " +
                       std::to_string(g.h) + "x" + std::to_string(g.w) + " input with these pads");
    }
    return g;
}

// Calls f(cc, j, p, pixel) for every tap j = (cc, r, s) over one group's channels and output position p = (oh, ow)
// whose input position pixel = ih * W + iw lies inside the image (padding taps are skipped), in (cc, r, s, oh, ow)
// order. The one walk behind im2col and its adjoint.
template <typename F>
void for_each_valid_tap(const Geometry& g, F&& f) {
    for (std::int64_t cc = 0; cc < g.c_per_group; ++cc) {
        for (std::int64_t r = 0; r < g.r; ++r) {
            for (std::int64_t s = 0; s < g.s; ++s) {
                const std::int64_t j = (cc * g.r + r) * g.s + s;
                for (std::int64_t oh = 0; oh < g.oh; ++oh) {
                    const std::int64_t ih = oh * g.sh - g.pt + r * g.dh;
                    if (ih < 0 || ih >= g.h) {
                        continue;
                    }
                    for (std::int64_t ow = 0; ow < g.ow; ++ow) {
                        const std::int64_t iw = ow * g.sw - g.pl + s * g.dw;
                        if (iw >= 0 && iw < g.w) {
                            f(cc, j, oh * g.ow + ow, ih * g.w + iw);
                        }
                    }
                }
            }
        }
    }
}

// The taps of one image and one group as a matrix, in the two layouts the kernels need; padding taps are 0.
//   transposed = false: col[p][j]   (p-major)      transposed = true: col[j][p]   (tap-major)
template <typename T>
void im2col(const Geometry& g, const T* x_image, std::int64_t group, bool transposed, std::vector<T>& col) {
    const std::int64_t taps = g.c_per_group * g.r * g.s;
    const std::int64_t positions = g.oh * g.ow;
    col.assign(static_cast<std::size_t>(taps * positions), T(0));
    const T* channels = x_image + group * g.c_per_group * g.h * g.w;
    for_each_valid_tap(g, [&](std::int64_t cc, std::int64_t j, std::int64_t p, std::int64_t pixel) {
        col[static_cast<std::size_t>(transposed ? j * positions + p : p * taps + j)] = channels[cc * g.h * g.w + pixel];
    });
}

// Scratch matrices, reused across calls on the same thread (no allocation per step once they have grown).
template <typename T>
std::vector<T>& scratch() {
    thread_local std::vector<T> buffer;
    return buffer;
}

// ---- Conv2d -------------------------------------------------------------------------------------------------

TensorType conv_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    const Geometry g = checked_geometry(node, attrs_of<Conv2dAttrs>(node), in[0].shape, in[1].shape);
    return TensorType{DType::F32, Shape{g.n, g.k, g.oh, g.ow}};
}

// out[n, k, p] = sum over taps j in (c, r, s) order of w[k, j] * col[j, p]: the inner loop runs over positions p
// (independent outputs), so it vectorizes without reordering any sum.
template <typename T>
void conv_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Geometry g = geometry(attrs_of<Conv2dAttrs>(node), in[0]->shape, in[1]->shape);
    const std::int64_t taps = g.c_per_group * g.r * g.s;
    const std::int64_t positions = g.oh * g.ow;
    // Images are independent: split them over threads (each thread has its own scratch).
    parallel_for(g.n, 1, [&](std::int64_t first, std::int64_t last) {
    std::vector<T>& col = scratch<T>();
    for (std::int64_t n = first; n < last; ++n) {
        for (std::int64_t group = 0; group < g.groups; ++group) {
            im2col(g, in[0]->data.data() + n * g.c * g.h * g.w, group, /*transposed=*/true, col);
            for (std::int64_t kk = 0; kk < g.k_per_group; ++kk) {
                const std::int64_t k = group * g.k_per_group + kk;
                T* row = out.data.data() + (n * g.k + k) * positions;
                const T* weights = in[1]->data.data() + k * taps;
                std::fill(row, row + positions, T(0));
                for (std::int64_t j = 0; j < taps; ++j) {
                    const T wv = weights[j];
                    const T* taps_row = col.data() + j * positions;
                    for (std::int64_t p = 0; p < positions; ++p) {
                        row[p] += wv * taps_row[p];
                    }
                }
            }
        }
    }
    });
}

std::vector<NodeId> conv_grad(Graph& graph, NodeId y, NodeId grad) {
    const Conv2dAttrs conv = attrs_of<Conv2dAttrs>(graph.node(y));
    const NodeId x = graph.node(y).inputs[0];
    const NodeId w = graph.node(y).inputs[1];
    const NodeId dx = graph.add(OpKind::Conv2dBackwardData, ConvBackwardAttrs{conv, graph.type(x).shape}, {grad, w});
    const NodeId dw = graph.add(OpKind::Conv2dBackwardFilter, ConvBackwardAttrs{conv, graph.type(w).shape}, {x, grad});
    return {dx, dw};
}

double conv_flops(const Geometry& g) {
    return 2.0 * static_cast<double>(g.n * g.k * g.oh * g.ow * g.c_per_group * g.r * g.s);
}

OpCost conv_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost = elementwise_cost(node, in, 0);
    cost.flops = conv_flops(geometry(attrs_of<Conv2dAttrs>(node), in[0].shape, in[1].shape));
    cost.unit = ComputeUnit::Matrix;
    return cost;
}

// ---- adjoints -----------------------------------------------------------------------------------------------

// Both adjoints: the convolution of x by w must be valid and `gradient` must be its output's shape.
TensorType adjoint_shape(const Node& node, std::span<const TensorType> in, const Shape& x, const Shape& w,
                         const Shape& gradient) {
    require_f32(node, in);
    const ConvBackwardAttrs& a = attrs_of<ConvBackwardAttrs>(node);
    const Geometry g = checked_geometry(node, a.conv, x, w);
    if (!(gradient == Shape{g.n, g.k, g.oh, g.ow})) {
        fail(node, "gradient " + gradient.to_string() + " does not match the convolution's output");
    }
    return TensorType{DType::F32, a.shape};
}

// Conv2dBackwardData: (g [N, K, OH, OW], w) -> dx of shape attrs.shape.
TensorType backward_data_shape(const Node& node, std::span<const TensorType> in) {
    return adjoint_shape(node, in, attrs_of<ConvBackwardAttrs>(node).shape, in[1].shape, in[0].shape);
}

// dcol[j, p] = sum over k (increasing) of w[k, j] * dy[n, k, p]; then each tap adds into the input position it read,
// in (c, r, s, oh, ow) order. The adjoint of the forward's im2col product.
template <typename T>
void backward_data_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const ConvBackwardAttrs& a = attrs_of<ConvBackwardAttrs>(node);
    const Geometry g = geometry(a.conv, a.shape, in[1]->shape);
    const std::int64_t taps = g.c_per_group * g.r * g.s;
    const std::int64_t positions = g.oh * g.ow;
    std::fill(out.data.begin(), out.data.end(), T(0));
    parallel_for(g.n, 1, [&](std::int64_t first, std::int64_t last) {  // images are independent
    std::vector<T>& dcol = scratch<T>();
    for (std::int64_t n = first; n < last; ++n) {
        for (std::int64_t group = 0; group < g.groups; ++group) {
            dcol.assign(static_cast<std::size_t>(taps * positions), T(0));
            for (std::int64_t kk = 0; kk < g.k_per_group; ++kk) {
                const std::int64_t k = group * g.k_per_group + kk;
                const T* dy = in[0]->data.data() + (n * g.k + k) * positions;
                const T* weights = in[1]->data.data() + k * taps;
                for (std::int64_t j = 0; j < taps; ++j) {
                    const T wv = weights[j];
                    T* row = dcol.data() + j * positions;
                    for (std::int64_t p = 0; p < positions; ++p) {
                        row[p] += wv * dy[p];
                    }
                }
            }
            // col2im: each tap adds into the input position it read.
            T* channels = out.data.data() + (n * g.c + group * g.c_per_group) * g.h * g.w;
            for_each_valid_tap(g, [&](std::int64_t cc, std::int64_t j, std::int64_t p, std::int64_t pixel) {
                channels[cc * g.h * g.w + pixel] += dcol[static_cast<std::size_t>(j * positions + p)];
            });
        }
    }
    });
}

// Conv2dBackwardFilter: (x, g [N, K, OH, OW]) -> dw of shape attrs.shape.
TensorType backward_filter_shape(const Node& node, std::span<const TensorType> in) {
    return adjoint_shape(node, in, in[0].shape, attrs_of<ConvBackwardAttrs>(node).shape, in[1].shape);
}

// dw[k, j] = sum over (n, oh, ow) in that order of dy[n, k, p] * col[p, j]: the inner loop runs over taps j
// (independent outputs), so it vectorizes without reordering any sum.
template <typename T>
void backward_filter_kernel(const Node& node, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const ConvBackwardAttrs& a = attrs_of<ConvBackwardAttrs>(node);
    const Geometry g = geometry(a.conv, in[0]->shape, a.shape);
    const std::int64_t taps = g.c_per_group * g.r * g.s;
    const std::int64_t positions = g.oh * g.ow;
    std::vector<T>& col = scratch<T>();
    std::fill(out.data.begin(), out.data.end(), T(0));
    for (std::int64_t n = 0; n < g.n; ++n) {
        for (std::int64_t group = 0; group < g.groups; ++group) {
            im2col(g, in[0]->data.data() + n * g.c * g.h * g.w, group, /*transposed=*/false, col);
            // Output channels are independent (the sum over images stays sequential): split them over threads.
            parallel_for(g.k_per_group, 1, [&](std::int64_t first, std::int64_t last) {
                for (std::int64_t kk = first; kk < last; ++kk) {
                    const std::int64_t k = group * g.k_per_group + kk;
                    const T* dy = in[1]->data.data() + (n * g.k + k) * positions;
                    T* dw = out.data.data() + k * taps;
                    for (std::int64_t p = 0; p < positions; ++p) {
                        const T dv = dy[p];
                        const T* taps_row = col.data() + p * taps;
                        for (std::int64_t j = 0; j < taps; ++j) {
                            dw[j] += dv * taps_row[j];
                        }
                    }
                }
            });
        }
    }
}

OpCost backward_data_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost = elementwise_cost(node, in, 0);
    cost.flops = conv_flops(geometry(attrs_of<ConvBackwardAttrs>(node).conv, node.type.shape, in[1].shape));
    cost.unit = ComputeUnit::Matrix;
    return cost;
}

OpCost backward_filter_cost(const Node& node, std::span<const TensorType> in) {
    OpCost cost = elementwise_cost(node, in, 0);
    cost.flops = conv_flops(geometry(attrs_of<ConvBackwardAttrs>(node).conv, in[0].shape, node.type.shape));
    cost.unit = ComputeUnit::Matrix;
    return cost;
}

}  // namespace

extern const OpInfo kConv2dOp = {OpKind::Conv2d,         "Conv2d", 2, kAttrsIndex<Conv2dAttrs>, &conv_shape,
                                 &conv_kernel<float>,    &conv_kernel<double>, &conv_grad, &conv_cost};
// The adjoints are only ever produced by Conv2d's gradient rule; they have no gradient of their own (no
// second-order training).
extern const OpInfo kConv2dBackwardDataOp = {OpKind::Conv2dBackwardData,       "Conv2dBackwardData", 2,
                                             kAttrsIndex<ConvBackwardAttrs>,   &backward_data_shape,
                                             &backward_data_kernel<float>,     &backward_data_kernel<double>,
                                             nullptr,                          &backward_data_cost};
extern const OpInfo kConv2dBackwardFilterOp = {OpKind::Conv2dBackwardFilter,     "Conv2dBackwardFilter", 2,
                                               kAttrsIndex<ConvBackwardAttrs>,   &backward_filter_shape,
                                               &backward_filter_kernel<float>,   &backward_filter_kernel<double>,
                                               nullptr,                          &backward_filter_cost};

}  // namespace dojo::ir::ops
