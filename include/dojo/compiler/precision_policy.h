/** \file
 * The precision policy pass: decides which tensors a training step computes in a narrower format and inserts the
 * rounding ops that emulate it exactly (ir::RoundTo / ir::RoundGrad; values stay FP32, which holds every value of
 * every format exactly, and products accumulate in FP32 as on Dojo's matrix units, cfloat.md F10).
 *
 * Policies (they act on the matrix-unit ops: MatMul and Conv2d, whose backward products are Conv2d's adjoints):
 *   fp32  nothing is rounded.
 *   bf16  both operands of every MatMul/Conv2d rounded to BF16 (nearest-even); the gradient arriving at its output is
 *         rounded to BF16 too, so the backward products also take BF16 operands. FP32 accumulation, FP32 master
 *         weights and optimizer state.
 *   cfp8  operands in cfp8_143 with nearest-even rounding; gradients in cfp8_152 with stochastic rounding; each
 *         tensor's bias chosen from its max-abs every step (numerics/bias.h) instead of loss scaling. FP32
 *         accumulation, master weights and optimizer state.
 * A tensor that several products read is rounded once (one RoundTo, read by all of them), as the machine stores it
 * once in the narrow format.
 * A user overrides the rule of an op class with a PrecisionPolicy built by hand (see make_policy).
 *
 * Precondition: a forward graph (before autodiff), so that RoundGrad sits in front of the backward products.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "dojo/ir/graph.h"

namespace dojo::compiler {

enum class Precision : std::uint8_t { Fp32, Bf16, Cfp8 };

/// "fp32", "bf16", "cfp8"; throws UsageError otherwise.
Precision parse_precision(std::string_view name);
std::string_view to_string(Precision precision);

struct RoundingRule {
    numerics::FormatKind format;
    numerics::Rounding rounding;
    double headroom_binades = 0.0;
};

/// Rules per op class: how a matrix product's or convolution's operands are rounded (forward) and how the gradient of
/// its output is rounded (backward). std::nullopt leaves that side in FP32.
struct PrecisionPolicy {
    std::optional<RoundingRule> matmul_operands;
    std::optional<RoundingRule> matmul_output_gradient;
    std::uint64_t seed = 0;  ///< key of stochastic rounding
    /// The named precision it implements (make_policy's), which the simulator's storage widths and matrix rates
    /// follow (sim/op_time.h); a policy built by hand states the nearest.
    Precision named = Precision::Fp32;
};

/// The policy of a named precision (table above).
PrecisionPolicy make_policy(Precision precision, std::uint64_t seed);

struct PolicyResult {
    ir::Graph graph;
    std::vector<ir::NodeId> remap;  ///< remap[old.index] = the node in `graph` that replaces it
    ir::NodeId step;                ///< F32 scalar Input (ir::kStepInputName): the training step number, which
                                    ///< stochastic rounding and dropout draw by; the forward graph's own step input
                                    ///< if it has one; invalid when nothing draws by step
};

/// Rewrites `forward` under `policy`: each MatMul(a, b) (and Conv2d(x, w)) becomes
/// RoundGrad(MatMul(RoundTo(a), RoundTo(b))) as the rules say, every rounding op with its own tensor id. Leaves keep their names and order; graph outputs are mapped.
PolicyResult apply_precision_policy(const ir::Graph& forward, const PrecisionPolicy& policy);

}  // namespace dojo::compiler
