/** \file
 * Internal helpers for the op rows (the .cpp files beside this one): typed attribute access, errors naming the node,
 * broadcasting index walks, cost arithmetic, and the extern rows that op_table.cpp assembles.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "dojo/ir/broadcast.h"
#include "dojo/ir/graph.h"
#include "dojo/util/error.h"

namespace dojo::ir::ops {

template <typename A, typename... Ts>
constexpr std::size_t index_in(const std::variant<Ts...>*) {
    constexpr bool matches[] = {std::is_same_v<A, Ts>...};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i) {
        if (matches[i]) {
            return i;
        }
    }
    return sizeof...(Ts);
}
/// The OpAttrs alternative index of attribute struct A.
template <typename A>
inline constexpr std::size_t kAttrsIndex = index_in<A>(static_cast<const OpAttrs*>(nullptr));

template <typename A>
const A& attrs_of(const Node& node) {
    return std::get<A>(node.attrs);
}

/// "node 'fc1' (MatMul)" or "a MatMul node".
std::string label(const Node& node);
/// Throws GraphError "<label>: <message>".
[[noreturn]] void fail(const Node& node, const std::string& message);
/// Every input must be F32 (all compute ops compute in F32; see op.h).
void require_f32(const Node& node, std::span<const TensorType> inputs);

/// Runs body(begin, end) over [0, n) split into contiguous chunks on OpenMP threads when n is large enough to be
/// worth it (each chunk at least kMinParallelElements), else on the calling thread. Kernels only parallelise over
/// independent output elements, so results are identical for every thread count.
inline constexpr std::int64_t kMinParallelElements = 1 << 14;
void parallel_for(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& body);

double bytes_of(const TensorType& type);
/// Elementwise cost: `flops_per_element` per output element on the vector unit, inputs read once, output written.
OpCost elementwise_cost(const Node& node, std::span<const TensorType> inputs, double flops_per_element);

// Rows, one per OpKind (defined next to their kernels).
extern const OpInfo kInputOp, kParameterOp, kStateOp, kFillOp, kConstantOp;
extern const OpInfo kNegOp, kExpOp, kLogOp, kSqrtOp, kTanhOp, kSigmoidOp, kReluOp, kStepOp, kErfOp;
extern const OpInfo kAddOp, kSubOp, kMulOp, kDivOp, kMaximumOp, kSelectOp;
extern const OpInfo kMatMulOp, kReduceSumOp, kReshapeOp, kTransposeOp, kBroadcastToOp, kLogSoftmaxOp;
extern const OpInfo kSliceOp, kSliceBackwardOp, kGatherOp, kGatherBackwardOp, kOneHotOp;
extern const OpInfo kConv2dOp, kConv2dBackwardDataOp, kConv2dBackwardFilterOp, kMaxPool2dOp, kMaxPool2dBackwardOp;
extern const OpInfo kRoundToOp, kRoundGradOp, kDropoutOp;

}  // namespace dojo::ir::ops
