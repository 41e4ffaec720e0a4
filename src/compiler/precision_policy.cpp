#include "dojo/compiler/precision_policy.h"

#include <string>
#include <unordered_map>

#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::compiler {

using ir::Graph;
using ir::NodeId;
using ir::OpKind;

Precision parse_precision(std::string_view name) {
    if (name == "fp32") {
        return Precision::Fp32;
    }
    if (name == "bf16") {
        return Precision::Bf16;
    }
    if (name == "cfp8") {
        return Precision::Cfp8;
    }
    throw UsageError("unknown precision '" + std::string(name) + "'; expected fp32, bf16 or cfp8");
}

std::string_view to_string(Precision precision) {
    switch (precision) {
        case Precision::Bf16:
            return "bf16";
        case Precision::Cfp8:
            return "cfp8";
        default:
            return "fp32";
    }
}

PrecisionPolicy make_policy(Precision precision, std::uint64_t seed) {
    using numerics::FormatKind;
    using numerics::Rounding;
    PrecisionPolicy policy;
    policy.named = precision;
    policy.seed = seed;
    if (precision == Precision::Bf16) {
        policy.matmul_operands = RoundingRule{FormatKind::Bf16, Rounding::NearestEven};
        policy.matmul_output_gradient = RoundingRule{FormatKind::Bf16, Rounding::NearestEven};
    } else if (precision == Precision::Cfp8) {
        policy.matmul_operands = RoundingRule{FormatKind::Cfp8_143, Rounding::NearestEven};
        policy.matmul_output_gradient = RoundingRule{FormatKind::Cfp8_152, Rounding::Stochastic};
    }
    return policy;
}

PolicyResult apply_precision_policy(const Graph& forward, const PrecisionPolicy& policy) {
    PolicyResult result;
    Graph& g = result.graph;
    const bool rounds = policy.matmul_operands || policy.matmul_output_gradient;
    // One step input per graph: the model's own (its dropout's: ir::kStepInputName) if it has one, else a new one.
    NodeId given_step;
    for (const NodeId input : forward.inputs()) {
        if (forward.node(input).name == ir::kStepInputName) {
            given_step = input;
        }
    }
    result.remap.resize(forward.size());
    if (rounds || given_step.valid()) {
        result.step = g.add_input(ir::kStepInputName, {ir::DType::F32, ir::Shape{}});
        if (given_step.valid()) {
            result.remap[given_step.index] = result.step;
        }
    }
    std::uint32_t next_tensor_id = 0;
    auto attrs = [&](const RoundingRule& rule) {
        return ir::RoundAttrs{rule.format, rule.rounding, rule.headroom_binades, policy.seed, next_tensor_id++};
    };
    // A tensor several products read (a residual block's input, read by its first convolution and the downsampling
    // one) is stored once in the operand format, as on the machine: one rounding, whatever reads it.
    std::unordered_map<std::uint32_t, NodeId> rounded_operand;  // by the unrounded node
    for (std::uint32_t i = 0; i < forward.size(); ++i) {
        if (given_step.valid() && i == given_step.index) {
            continue;  // mapped above
        }
        const ir::Node& node = forward.node(NodeId{i});
        std::vector<NodeId> inputs;
        for (const NodeId input : node.inputs) {
            inputs.push_back(result.remap[input.index]);
        }
        NodeId mapped;
        switch (node.op) {
            case OpKind::Input:
                mapped = g.add_input(node.name, node.type);
                break;
            case OpKind::Parameter:
                mapped = g.add_parameter(node.name, node.type);
                break;
            case OpKind::State:
                mapped = g.add_state(node.name, node.type);
                break;
            case OpKind::MatMul:
            case OpKind::Conv2d:
                if (policy.matmul_operands) {
                    for (NodeId& operand : inputs) {
                        const auto [it, fresh] = rounded_operand.try_emplace(operand.index);
                        if (fresh) {
                            it->second = ir::round_to(g, operand, result.step, attrs(*policy.matmul_operands));
                        }
                        operand = it->second;
                    }
                }
                mapped = g.add(node.op, node.attrs, inputs, node.name);
                if (policy.matmul_output_gradient) {
                    mapped = ir::round_grad(g, mapped, result.step, attrs(*policy.matmul_output_gradient));
                }
                break;
            default:
                mapped = g.add(node.op, node.attrs, inputs, node.name);
        }
        result.remap[i] = mapped;
    }
    for (const NodeId output : forward.outputs()) {
        g.mark_output(result.remap[output.index]);
    }
    return result;
}

}  // namespace dojo::compiler
