/** \file
 * The op table: the closed set of primitive ops, their typed attributes, and one row per op holding everything
 * about it (shape rule, reference kernels, gradient rule, cost). Composite ONNX ops lower into these primitives,
 * so autodiff, numerics emulation and cost models are written once per primitive. Adding an op = one OpKind, one
 * row, one conformance-test row (tests/conformance/ir_ops_test.cpp).
 *
 * IR semantics (the contract every kernel, fast or reference, must meet):
 *   - Values are dense row-major tensors of static shape. All floating-point ops compute in F32 (the reference
 *     kernels also exist in double, for gradient checking); narrower storage types are a precision-policy matter.
 *   - Elementwise binary ops broadcast multidirectionally (NumPy/ONNX rules, shape.h).
 *   - MatMul accumulates sequentially in increasing index order, in the kernel's type T. ReduceSum adds the input's
 *     contiguous rows (runs along the innermost unreduced-or-reduced axes, ops/reduce.cpp) into their outputs in row
 *     order; a row that sums into one output element is summed in 8 interleaved lanes combined by a fixed tree (so
 *     it vectorises), a row that adds into a run of outputs element by element. Conv2d sums
 *     over (input channel, kernel row, kernel column) in that order, its filter gradient over (n, oh, ow), its data
 *     gradient over output channels first and then over taps (src/ir/ops/conv.cpp). A fast kernel may reorder the
 *     summation; results then agree up to summation order, never bit for bit.
 *   - IEEE arithmetic: overflow gives Inf, 0/0 gives NaN; nothing traps. Rounding to CFloat/BF16 happens only in
 *     the explicit RoundTo/RoundGrad ops (numerics/convert.h semantics). A tensor with a NaN or Inf passes through
 *     them unchanged, so divergence stays visible in the loss.
 *   - Gradient rules express the vector-Jacobian product with primitive ops, so backward graphs are ordinary graphs.
 *     At non-differentiable points (Relu and Step at 0, Maximum at ties) the gradient is that of the x > 0 side.
 */
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "dojo/ir/buffer.h"
#include "dojo/ir/types.h"
#include "dojo/numerics/convert.h"

namespace dojo::ir {

enum class OpKind : std::uint8_t {
    // Leaves.
    Input,      ///< a value fed per step (data, labels); LeafAttrs
    Parameter,  ///< a trainable tensor; LeafAttrs
    State,      ///< a persistent tensor that is not trained (optimizer moments, BatchNorm running stats); LeafAttrs
    Fill,       ///< a tensor of one constant value; FillAttrs
    Constant,   ///< a constant tensor with its values in the graph (folded ONNX constants, masks); ConstantAttrs
    // Elementwise unary.
    Neg,
    Exp,
    Log,
    Sqrt,
    Tanh,
    Sigmoid,
    Relu,
    Step,  ///< Heaviside: 1 where x > 0, else 0 (Relu's derivative); its own gradient is zero
    Erf,
    // Elementwise binary, broadcasting.
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Select,  ///< (cond, a, b) -> cond != 0 ? a : b, broadcasting all three; no gradient flows to cond
    // Contractions.
    MatMul,  ///< [..., m, k] x [..., k, n] -> [..., m, n], batch dimensions broadcast; both ranks >= 2
    // Reductions.
    ReduceSum,  ///< ReduceAttrs
    // Layout.
    Reshape,      ///< ReshapeAttrs; same element count
    Transpose,    ///< TransposeAttrs: out dim i = in dim perm[i]
    BroadcastTo,  ///< BroadcastAttrs
    Slice,          ///< SliceAttrs: out[i] = x[start + i * step] along every axis
    SliceBackward,  ///< SliceBackwardAttrs: the adjoint of Slice; g scattered into zeros of the sliced input's shape
    Gather,          ///< (table [V, D...], ids [N...]) -> [N..., D...]: rows of the table (embedding lookup); ids hold
                     ///< whole numbers in [0, V) (F32 or I64 typed, stored as floats); no gradient flows to ids
    GatherBackward,  ///< GatherBackwardAttrs; (g [N..., D...], ids) -> [V, D...]: g's rows added into zeros at ids
    OneHot,          ///< OneHotAttrs; (ids [N...]) -> [N..., depth]: 1 at each id, 0 elsewhere (token labels for the
                     ///< cross-entropy of language models); no gradient flows to ids
    // Normalisation.
    LogSoftmax,  ///< AxisAttrs: x - log(sum(exp(x))) along one axis, computed stably
    // Convolution and pooling, NCHW.
    Conv2d,                ///< Conv2dAttrs; (x [N, C, H, W], w [K, C/groups, R, S]) -> [N, K, OH, OW]; no bias (add it)
    Conv2dBackwardData,    ///< ConvBackwardAttrs (shape = x's); (g, w) -> dx; the adjoint of Conv2d in x
    Conv2dBackwardFilter,  ///< ConvBackwardAttrs (shape = w's); (x, g) -> dw; the adjoint of Conv2d in w
    MaxPool2d,             ///< PoolAttrs; padding never wins (it is -inf)
    MaxPool2dBackward,     ///< PoolAttrs; (x, g) -> dx: each window's gradient goes to its first maximum
    // Numerics emulation (inserted by the precision policy, compiler/precision_policy.h).
    RoundTo,    ///< RoundAttrs; (x, step): x rounded onto a format's grid; gradient passes straight through
    RoundGrad,  ///< RoundAttrs; (x, step): identity forward; the gradient is rounded onto the format's grid
    // Randomness, drawn by element index from a counter-based generator keyed by the step (as stochastic rounding).
    Dropout,    ///< DropoutAttrs; (x, step): x * keep / (1 - ratio); its gradient is the same op on the gradient
    kCount,
};
inline constexpr std::size_t kOpCount = static_cast<std::size_t>(OpKind::kCount);

struct NoAttrs {
    bool operator==(const NoAttrs&) const = default;
};
struct LeafAttrs {
    TensorType type;
    bool operator==(const LeafAttrs&) const = default;
};
struct FillAttrs {
    double value = 0.0;
    TensorType type;
    bool operator==(const FillAttrs&) const = default;
};
struct ReduceAttrs {
    std::vector<int> axes;  ///< may be negative; empty = all axes
    bool keep_dims = false;
    bool operator==(const ReduceAttrs&) const = default;
};
struct ReshapeAttrs {
    Shape shape;
    bool operator==(const ReshapeAttrs&) const = default;
};
struct TransposeAttrs {
    std::vector<int> perm;
    bool operator==(const TransposeAttrs&) const = default;
};
struct BroadcastAttrs {
    Shape shape;
    bool operator==(const BroadcastAttrs&) const = default;
};
struct AxisAttrs {
    int axis = -1;
    bool operator==(const AxisAttrs&) const = default;
};
/// A constant tensor's values (shared: copying a graph does not copy them). Equal when type and values are equal.
struct ConstantAttrs {
    TensorType type;
    std::shared_ptr<const std::vector<float>> values;
    bool operator==(const ConstantAttrs& other) const {
        return type == other.type && (values == other.values || (values && other.values && *values == *other.values));
    }
};
/// A strided box of a tensor, one entry per axis: output axis d has sizes[d] elements, read from input index
/// starts[d] + i * steps[d]. starts >= 0, steps >= 1, sizes >= 0, and the last index read must be in range.
struct SliceAttrs {
    std::vector<std::int64_t> starts;
    std::vector<std::int64_t> sizes;
    std::vector<std::int64_t> steps;
    bool operator==(const SliceAttrs&) const = default;
};
/// Slice's adjoint: the slice geometry and the shape of the tensor that was sliced.
struct SliceBackwardAttrs {
    SliceAttrs slice;
    Shape shape;
    bool operator==(const SliceBackwardAttrs&) const = default;
};
/// Gather's adjoint: the shape of the table that was read.
struct GatherBackwardAttrs {
    Shape table;
    bool operator==(const GatherBackwardAttrs&) const = default;
};
/// OneHot's class count.
struct OneHotAttrs {
    std::int64_t depth = 0;
    bool operator==(const OneHotAttrs&) const = default;
};
/// 2-D convolution geometry. Pads are (top, left, bottom, right). OH = (H + top + bottom - dh (R - 1) - 1) / sh + 1.
struct Conv2dAttrs {
    std::array<std::int64_t, 2> strides{1, 1};
    std::array<std::int64_t, 4> pads{0, 0, 0, 0};
    std::array<std::int64_t, 2> dilations{1, 1};
    std::int64_t groups = 1;
    bool operator==(const Conv2dAttrs&) const = default;
};
/// A convolution's adjoint: the forward geometry and the shape of the tensor it produces (x's or w's).
struct ConvBackwardAttrs {
    Conv2dAttrs conv;
    Shape shape;
    bool operator==(const ConvBackwardAttrs&) const = default;
};
/// 2-D pooling window. Pads are (top, left, bottom, right).
struct PoolAttrs {
    std::array<std::int64_t, 2> kernel{2, 2};
    std::array<std::int64_t, 2> strides{2, 2};
    std::array<std::int64_t, 4> pads{0, 0, 0, 0};
    bool operator==(const PoolAttrs&) const = default;
};
/// How RoundTo/RoundGrad round. CFloat formats get a per-tensor bias each time the op runs: the largest bias whose
/// range holds the tensor's max-abs times 2^headroom (numerics/bias.h), Dojo's replacement for loss scaling.
/// Stochastic rounding uses Philox keyed by `seed`, stream (step << 32) | tensor_id, counter = element index, where
/// step is the op's second input (the training step number, exact in F32 up to 2^24).
struct RoundAttrs {
    numerics::FormatKind format = numerics::FormatKind::Bf16;
    numerics::Rounding rounding = numerics::Rounding::NearestEven;
    double headroom_binades = 0.0;
    std::uint64_t seed = 0;
    std::uint32_t tensor_id = 0;
    bool operator==(const RoundAttrs&) const = default;
};

/// Dropout's mask: element i of a step is kept where the 32-bit word numerics::stochastic_word(seed,
/// (step << 32) | tensor_id, i) is at least ratio * 2^32 (probability 1 - ratio), and kept values are scaled by
/// 1 / (1 - ratio), as torch.nn.Dropout in training. The mask depends only on (seed, step, tensor_id, i): the
/// gradient sees the forward's mask, and results do not depend on threads or chunking.
struct DropoutAttrs {
    double ratio = 0.5;  ///< in [0, 1)
    std::uint64_t seed = 0;
    std::uint32_t tensor_id = 0;
    bool operator==(const DropoutAttrs&) const = default;
};

/// Typed attributes; which alternative an op takes is part of its row (OpInfo::attrs_index).
using OpAttrs = std::variant<NoAttrs, LeafAttrs, FillAttrs, ReduceAttrs, ReshapeAttrs, TransposeAttrs, BroadcastAttrs,
                             AxisAttrs, RoundAttrs, Conv2dAttrs, ConvBackwardAttrs, PoolAttrs, ConstantAttrs,
                             SliceAttrs, SliceBackwardAttrs, GatherBackwardAttrs, OneHotAttrs, DropoutAttrs>;

class Graph;
struct Node;

/// Which hardware unit an op's FLOPs run on in cost models.
enum class ComputeUnit : std::uint8_t {
    None,    ///< no arithmetic (layout ops, leaves)
    Vector,  ///< SIMD / elementwise units
    Matrix,  ///< matrix units (Dojo's 8x8 MMUs, tensor cores)
};

/// Work of one execution of a node. Bytes assume each input is read once and the output written once, at the
/// dtypes of the graph's types (the simulator refines placement; this is the op's own contribution).
struct OpCost {
    double flops = 0;
    double bytes_read = 0;
    double bytes_written = 0;
    ComputeUnit unit = ComputeUnit::None;
};

/// The type of a node's output from its inputs' types and its attributes; throws GraphError naming the node.
using ShapeRule = TensorType (*)(const Node& node, std::span<const TensorType> inputs);
/// Computes `out` (already shaped by the shape rule) from `inputs`.
template <typename T>
using ReferenceKernel = void (*)(const Node& node, std::span<const Buffer<T>* const> inputs, Buffer<T>& out);
/// Adds to `graph` the nodes of the vector-Jacobian product of node `node` given the gradient of its output
/// `grad_output`; returns one gradient per input, invalid where an input has none (it is then zero).
using GradientRule = std::vector<NodeId> (*)(Graph& graph, NodeId node, NodeId grad_output);
using CostRule = OpCost (*)(const Node& node, std::span<const TensorType> inputs);

/// One row of the op table.
struct OpInfo {
    OpKind kind;                 ///< the row's own kind (the table is indexed by it; a test checks the order)
    std::string_view name;       ///< "MatMul"
    int arity;                   ///< number of inputs
    std::size_t attrs_index;     ///< the OpAttrs alternative this op takes
    ShapeRule shape;
    ReferenceKernel<float> reference_f32;    ///< null for leaves (their values are bound, not computed)
    ReferenceKernel<double> reference_f64;
    GradientRule gradient;       ///< null: no input has a gradient
    CostRule cost;
};

/// The row of `op`.
const OpInfo& op_info(OpKind op);
std::string_view to_string(OpKind op);
/// Input, Parameter and State: leaves whose values the caller binds (Fill and Constant compute theirs).
bool is_bound_leaf(OpKind op);
/// Any leaf: the bound ones and Fill and Constant (no inputs; nothing is sent or scheduled to compute them).
bool is_leaf(OpKind op);

}  // namespace dojo::ir
