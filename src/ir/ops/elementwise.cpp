// Elementwise primitives: unary maps and broadcasting binary ops, with their gradients (VJPs).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "dojo/ir/builder.h"
#include "dojo/ir/elementwise.h"
#include "dojo/util/check.h"
#include "op_support.h"

namespace dojo::ir::ops {
namespace {

// ---- scalar functions ---------------------------------------------------------------------------------------

template <typename T> T neg_fn(T x) { return -x; }
template <typename T> T exp_fn(T x) { return std::exp(x); }
template <typename T> T log_fn(T x) { return std::log(x); }
template <typename T> T sqrt_fn(T x) { return std::sqrt(x); }
template <typename T> T tanh_fn(T x) { return std::tanh(x); }
template <typename T> T sigmoid_fn(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T> T relu_fn(T x) { return x > T(0) ? x : T(0); }  // NaN -> 0 is avoided below
template <typename T> T step_fn(T x) { return x > T(0) ? T(1) : T(0); }
template <typename T> T erf_fn(T x) { return std::erf(x); }

template <typename T> T add_fn(T a, T b) { return a + b; }
template <typename T> T sub_fn(T a, T b) { return a - b; }
template <typename T> T mul_fn(T a, T b) { return a * b; }
template <typename T> T div_fn(T a, T b) { return a / b; }
// IEEE maximum: NaN in either operand gives NaN.
template <typename T>
T maximum_fn(T a, T b) {
    if (std::isnan(a) || std::isnan(b)) {
        return std::numeric_limits<T>::quiet_NaN();
    }
    return a > b ? a : b;
}

// Relu keeps NaN (a NaN activation must not silently become 0).
template <typename T>
T relu_nan_fn(T x) {
    return std::isnan(x) ? x : relu_fn(x);
}

// ---- runs of elements (shared with the fused kernels through apply_elementwise) --------------------------------

template <typename T, T (*F)(T)>
void unary_run(const T* x, std::int64_t x_stride, T* y, std::int64_t n) {
    if (x_stride == 0) {
        std::fill(y, y + n, F(*x));
        return;
    }
    for (std::int64_t j = 0; j < n; ++j) {
        y[j] = F(x[j]);
    }
}

template <typename T, T (*F)(T, T)>
void binary_run(const T* a, std::int64_t sa, const T* b, std::int64_t sb, T* y, std::int64_t n) {
    if (sa == 1 && sb == 1) {
        for (std::int64_t j = 0; j < n; ++j) {
            y[j] = F(a[j], b[j]);
        }
    } else if (sa == 1) {
        const T vb = *b;
        for (std::int64_t j = 0; j < n; ++j) {
            y[j] = F(a[j], vb);
        }
    } else if (sb == 1) {
        const T va = *a;
        for (std::int64_t j = 0; j < n; ++j) {
            y[j] = F(va, b[j]);
        }
    } else {
        std::fill(y, y + n, F(*a, *b));
    }
}

// ---- kernels ------------------------------------------------------------------------------------------------

template <typename T, T (*F)(T)>
void unary_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const T* x = in[0]->data.data();
    T* y = out.data.data();
    parallel_for(static_cast<std::int64_t>(out.data.size()), kMinParallelElements,
                 [&](std::int64_t begin, std::int64_t end) {
                     for (std::int64_t i = begin; i < end; ++i) {
                         y[i] = F(x[i]);
                     }
                 });
}

template <typename T, T (*F)(T, T)>
void binary_kernel(const Node&, std::span<const Buffer<T>* const> in, Buffer<T>& out) {
    const Buffer<T>& a = *in[0];
    const Buffer<T>& b = *in[1];
    if (a.shape == out.shape && b.shape == out.shape) {  // the common case: no broadcasting
        T* y = out.data.data();
        parallel_for(static_cast<std::int64_t>(out.data.size()), kMinParallelElements,
                     [&](std::int64_t begin, std::int64_t end) {
                         for (std::int64_t i = begin; i < end; ++i) {
                             y[i] = F(a.data[static_cast<std::size_t>(i)], b.data[static_cast<std::size_t>(i)]);
                         }
                     });
        return;
    }
    // Broadcasting: a row at a time, each input either contiguous (stride 1) or constant (stride 0) along the row.
    const BroadcastRows layout(out.shape, {&a.shape, &b.shape});
    const std::int64_t length = layout.row_length();
    const std::int64_t sa = layout.inner_stride(0);
    const std::int64_t sb = layout.inner_stride(1);
    parallel_for(layout.rows(), std::max<std::int64_t>(1, kMinParallelElements / length),
                 [&](std::int64_t first, std::int64_t last) {
                     BroadcastRows rows = layout;
                     rows.seek_row(first);
                     for (std::int64_t r = first; r < last; ++r, rows.next_row()) {
                         const T* pa = a.data.data() + rows.offset(0);
                         const T* pb = b.data.data() + rows.offset(1);
                         binary_run<T, F>(pa, sa, pb, sb, out.data.data() + r * length, length);
                     }
                 });
}

// ---- shapes and costs ---------------------------------------------------------------------------------------

TensorType unary_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    return in[0];
}

TensorType binary_shape(const Node& node, std::span<const TensorType> in) {
    require_f32(node, in);
    try {
        return TensorType{DType::F32, broadcast_shapes(in[0].shape, in[1].shape)};
    } catch (const GraphError& error) {
        fail(node, error.what());
    }
}

OpCost one_flop_per_element(const Node& node, std::span<const TensorType> in) { return elementwise_cost(node, in, 1); }

// ---- gradients: g is the gradient of the node's output y; x, a, b its inputs ------------------------------------

NodeId input(const Graph& g, NodeId node, std::size_t i) { return g.node(node).inputs[i]; }

std::vector<NodeId> neg_grad(Graph& g, NodeId, NodeId grad) { return {neg(g, grad)}; }
std::vector<NodeId> exp_grad(Graph& g, NodeId y, NodeId grad) { return {mul(g, grad, y)}; }
std::vector<NodeId> log_grad(Graph& g, NodeId y, NodeId grad) { return {div(g, grad, input(g, y, 0))}; }
std::vector<NodeId> sqrt_grad(Graph& g, NodeId y, NodeId grad) {  // 1 / (2 sqrt(x))
    return {div(g, grad, mul(g, scalar(g, 2.0), y))};
}
std::vector<NodeId> tanh_grad(Graph& g, NodeId y, NodeId grad) {  // 1 - y^2
    return {mul(g, grad, sub(g, scalar(g, 1.0), mul(g, y, y)))};
}
std::vector<NodeId> sigmoid_grad(Graph& g, NodeId y, NodeId grad) {  // y (1 - y)
    return {mul(g, grad, mul(g, y, sub(g, scalar(g, 1.0), y)))};
}
// The mask from the output, not the input: relu(x) > 0 exactly where x > 0 (a NaN gives 0 either way), and the
// output is what the next layer keeps for its own gradient, so the input need not be kept for the backward pass.
std::vector<NodeId> relu_grad(Graph& g, NodeId y, NodeId grad) { return {mul(g, grad, step(g, y))}; }
std::vector<NodeId> erf_grad(Graph& g, NodeId y, NodeId grad) {  // 2/sqrt(pi) exp(-x^2)
    const NodeId x = input(g, y, 0);
    const NodeId bell = exp(g, neg(g, mul(g, x, x)));
    return {mul(g, grad, mul(g, scalar(g, 2.0 / std::sqrt(std::numbers::pi)), bell))};
}

// Binary gradients are summed back to each input's shape (the adjoint of broadcasting).
std::vector<NodeId> reduce_to_inputs(Graph& g, NodeId y, NodeId da, NodeId db) {
    const Shape a = g.type(input(g, y, 0)).shape;
    const Shape b = g.type(input(g, y, 1)).shape;
    return {sum_to_shape(g, da, a), sum_to_shape(g, db, b)};
}
std::vector<NodeId> add_grad(Graph& g, NodeId y, NodeId grad) { return reduce_to_inputs(g, y, grad, grad); }
std::vector<NodeId> sub_grad(Graph& g, NodeId y, NodeId grad) { return reduce_to_inputs(g, y, grad, neg(g, grad)); }
std::vector<NodeId> mul_grad(Graph& g, NodeId y, NodeId grad) {
    return reduce_to_inputs(g, y, mul(g, grad, input(g, y, 1)), mul(g, grad, input(g, y, 0)));
}
std::vector<NodeId> div_grad(Graph& g, NodeId y, NodeId grad) {  // d(a/b)/db = -y/b
    const NodeId b = input(g, y, 1);
    return reduce_to_inputs(g, y, div(g, grad, b), neg(g, div(g, mul(g, grad, y), b)));
}
std::vector<NodeId> maximum_grad(Graph& g, NodeId y, NodeId grad) {  // ties send the gradient to b
    const NodeId a_wins = step(g, sub(g, input(g, y, 0), input(g, y, 1)));
    return reduce_to_inputs(g, y, mul(g, grad, a_wins), mul(g, grad, sub(g, scalar(g, 1.0), a_wins)));
}

}  // namespace

#define DOJO_UNARY_ROW(kind, fn, gradient)                                                                 \
    OpInfo {                                                                                               \
        OpKind::kind, #kind, 1, kAttrsIndex<NoAttrs>, &unary_shape, &unary_kernel<float, fn<float>>,       \
            &unary_kernel<double, fn<double>>, gradient, &one_flop_per_element                             \
    }
#define DOJO_BINARY_ROW(kind, fn, gradient)                                                                \
    OpInfo {                                                                                               \
        OpKind::kind, #kind, 2, kAttrsIndex<NoAttrs>, &binary_shape, &binary_kernel<float, fn<float>>,     \
            &binary_kernel<double, fn<double>>, gradient, &one_flop_per_element                            \
    }

extern const OpInfo kNegOp = DOJO_UNARY_ROW(Neg, neg_fn, &neg_grad);
extern const OpInfo kExpOp = DOJO_UNARY_ROW(Exp, exp_fn, &exp_grad);
extern const OpInfo kLogOp = DOJO_UNARY_ROW(Log, log_fn, &log_grad);
extern const OpInfo kSqrtOp = DOJO_UNARY_ROW(Sqrt, sqrt_fn, &sqrt_grad);
extern const OpInfo kTanhOp = DOJO_UNARY_ROW(Tanh, tanh_fn, &tanh_grad);
extern const OpInfo kSigmoidOp = DOJO_UNARY_ROW(Sigmoid, sigmoid_fn, &sigmoid_grad);
extern const OpInfo kReluOp = DOJO_UNARY_ROW(Relu, relu_nan_fn, &relu_grad);
extern const OpInfo kStepOp = DOJO_UNARY_ROW(Step, step_fn, nullptr);  // piecewise constant: zero gradient
extern const OpInfo kErfOp = DOJO_UNARY_ROW(Erf, erf_fn, &erf_grad);

extern const OpInfo kAddOp = DOJO_BINARY_ROW(Add, add_fn, &add_grad);
extern const OpInfo kSubOp = DOJO_BINARY_ROW(Sub, sub_fn, &sub_grad);
extern const OpInfo kMulOp = DOJO_BINARY_ROW(Mul, mul_fn, &mul_grad);
extern const OpInfo kDivOp = DOJO_BINARY_ROW(Div, div_fn, &div_grad);
extern const OpInfo kMaximumOp = DOJO_BINARY_ROW(Maximum, maximum_fn, &maximum_grad);

#undef DOJO_UNARY_ROW
#undef DOJO_BINARY_ROW

}  // namespace dojo::ir::ops

namespace dojo::ir {

bool is_elementwise_map(OpKind op) {
    switch (op) {
        case OpKind::Neg: case OpKind::Exp: case OpKind::Log: case OpKind::Sqrt: case OpKind::Tanh:
        case OpKind::Sigmoid: case OpKind::Relu: case OpKind::Step: case OpKind::Erf:
        case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: case OpKind::Maximum:
            return true;
        default:
            return false;
    }
}

// Built for AVX-512 and AVX2 as well as the baseline (SSE2), picked when the program loads, with the runs inlined
// into each build: the fused kernels call this on short blocks, where vector width is what counts. No build
// contracts a multiply and an add (none of these targets has FMA), and the rest are IEEE operations or calls to the
// same libm functions, so every build computes the same bits. (Clang, which builds the fuzzer, refuses `flatten` on
// a multiversioned function; it inlines the runs by itself.)
#if defined(__x86_64__) && defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#elif defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default"), flatten))
#endif
void apply_elementwise(OpKind op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                       std::int64_t n) {
    using namespace ops;  // the scalar functions
    switch (op) {
        case OpKind::Neg: return unary_run<float, neg_fn<float>>(a, sa, y, n);
        case OpKind::Exp: return unary_run<float, exp_fn<float>>(a, sa, y, n);
        case OpKind::Log: return unary_run<float, log_fn<float>>(a, sa, y, n);
        case OpKind::Sqrt: return unary_run<float, sqrt_fn<float>>(a, sa, y, n);
        case OpKind::Tanh: return unary_run<float, tanh_fn<float>>(a, sa, y, n);
        case OpKind::Sigmoid: return unary_run<float, sigmoid_fn<float>>(a, sa, y, n);
        case OpKind::Relu: return unary_run<float, relu_nan_fn<float>>(a, sa, y, n);
        case OpKind::Step: return unary_run<float, step_fn<float>>(a, sa, y, n);
        case OpKind::Erf: return unary_run<float, erf_fn<float>>(a, sa, y, n);
        case OpKind::Add: return binary_run<float, add_fn<float>>(a, sa, b, sb, y, n);
        case OpKind::Sub: return binary_run<float, sub_fn<float>>(a, sa, b, sb, y, n);
        case OpKind::Mul: return binary_run<float, mul_fn<float>>(a, sa, b, sb, y, n);
        case OpKind::Div: return binary_run<float, div_fn<float>>(a, sa, b, sb, y, n);
        case OpKind::Maximum: return binary_run<float, maximum_fn<float>>(a, sa, b, sb, y, n);
        default:
            DOJO_CHECK(false) << "apply_elementwise: " << to_string(op) << " is not an elementwise map";
    }
}

}  // namespace dojo::ir
