// The op table: one row per OpKind, in OpKind order (tests check every row's kind).
#include "dojo/ir/op.h"

#include "dojo/util/check.h"
#include "ops/op_support.h"

namespace dojo::ir {
namespace {

const OpInfo* const kTable[] = {
    &ops::kInputOp,   &ops::kParameterOp, &ops::kStateOp,   &ops::kFillOp, &ops::kConstantOp,    &ops::kNegOp,       &ops::kExpOp,
    &ops::kLogOp,     &ops::kSqrtOp,      &ops::kTanhOp,    &ops::kSigmoidOp,   &ops::kReluOp,
    &ops::kStepOp,    &ops::kErfOp,       &ops::kAddOp,     &ops::kSubOp,       &ops::kMulOp,
    &ops::kDivOp,     &ops::kMaximumOp, &ops::kSelectOp,   &ops::kMatMulOp,  &ops::kReduceSumOp, &ops::kReshapeOp,
    &ops::kTransposeOp, &ops::kBroadcastToOp, &ops::kSliceOp, &ops::kSliceBackwardOp, &ops::kGatherOp, &ops::kGatherBackwardOp, &ops::kOneHotOp, &ops::kLogSoftmaxOp, &ops::kConv2dOp, &ops::kConv2dBackwardDataOp,
    &ops::kConv2dBackwardFilterOp, &ops::kMaxPool2dOp, &ops::kMaxPool2dBackwardOp, &ops::kRoundToOp, &ops::kRoundGradOp,
    &ops::kDropoutOp,
};
static_assert(std::size(kTable) == kOpCount, "one op-table row per OpKind");

}  // namespace

const OpInfo& op_info(OpKind op) {
    const auto index = static_cast<std::size_t>(op);
    DOJO_CHECK(index < kOpCount) << "op kind " << index;
    return *kTable[index];
}

std::string_view to_string(OpKind op) { return op_info(op).name; }

bool is_bound_leaf(OpKind op) { return op == OpKind::Input || op == OpKind::Parameter || op == OpKind::State; }

bool is_leaf(OpKind op) { return is_bound_leaf(op) || op == OpKind::Fill || op == OpKind::Constant; }

}  // namespace dojo::ir
