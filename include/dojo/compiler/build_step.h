/** \file
 * The one step builder: a model's forward graph becomes the training step that `dojo train` runs and that
 * `dojo sim`, `dojo plan` and `dojo compare` compile, through the same function, so what is timed is what runs.
 *
 *   forward (frontend::Model) --precision policy--> rounded forward --loss--> --autodiff + optimizer--> Step
 *
 * The loss follows from the model, one way everywhere:
 *   - a classifier's logits [batch, classes]: softmax cross-entropy against one-hot class probabilities, the F32
 *     input "target" [batch, classes];
 *   - a language model's logits ([batch * seq, vocab], or an imported [batch, seq, vocab], flattened here): softmax
 *     cross-entropy against token ids, the I64 input "target" [batch * seq] (ids held as exact floats), one label
 *     per position;
 *   - a dense regression (Model::dense_target: the UNet's predicted noise): mean squared error against "target" of
 *     the output's shape;
 *   - independent yes/no outputs (Model::binary_target: an occupancy grid's voxels): the logits flattened to
 *     [batch, outputs], sigmoid binary cross-entropy against the F32 input "target" of that shape, 0s and 1s.
 * The precision policy (precision_policy.h) is a typed value; nothing past the command line names it by a string.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "dojo/autodiff/training.h"
#include "dojo/compiler/precision_policy.h"
#include "dojo/frontend/model.h"

namespace dojo::compiler {

/// How a step's "target" input holds the labels (see the file comment).
enum class TargetKind : std::uint8_t { ClassProbabilities, ClassIds, Dense, Binary };

struct StepOptions {
    PrecisionPolicy precision;  ///< make_policy(Precision, seed), or one built by hand
    autodiff::OptimizerConfig optimizer = autodiff::SgdConfig{};
};

/// A model's forward graph after the precision policy, with the ids the runtime binds (evaluation runs this).
struct Forward {
    ir::Graph graph;
    ir::NodeId input;          ///< [batch, sample...]
    ir::NodeId logits;         ///< the model's output, as the model gives it
    ir::NodeId step_input;     ///< F32 scalar Input (ir::kStepInputName): the step number stochastic rounding and
                               ///< dropout draw by, set before each step; invalid if nothing draws
    std::map<ir::NodeId, frontend::ParameterInit> init;         ///< as frontend::Model, ids of `graph`
    std::map<ir::NodeId, std::vector<float>> values;            ///< as frontend::Model, ids of `graph`
    std::vector<autodiff::Assignment> state_updates;            ///< the model's own (BatchNorm statistics)
    bool from_onnx = false;
};

/// One training step: forward, loss, backward and optimizer update in one graph (autodiff/training.h). The forward
/// nodes keep their ids from the rounded forward graph, so `input`, `init` and `values` are as Forward's.
struct Step {
    autodiff::TrainingGraph training;
    ir::NodeId input;                   ///< [batch, sample...]
    ir::NodeId logits;                  ///< what the loss reads: [rows, classes], or the regression output
    ir::NodeId target;                  ///< the "target" input
    TargetKind target_kind = TargetKind::ClassProbabilities;
    ir::NodeId step_input;           ///< as Forward::step_input
    std::map<ir::NodeId, frontend::ParameterInit> init;
    std::map<ir::NodeId, std::vector<float>> values;
    std::vector<ir::NodeId> model_states;  ///< the forward model's states (the optimizer's moments come after)
    bool from_onnx = false;
    Precision precision = Precision::Fp32;  ///< the policy's named precision (PrecisionPolicy::named)
};

/// Applies the precision policy to `model`'s forward graph (no loss): what evaluation runs.
Forward build_forward(frontend::Model model, const PrecisionPolicy& precision);

/// The training step of `model` (see the file comment). Throws UsageError for invalid hyperparameters.
Step build_step(frontend::Model model, const StepOptions& options);

/// Builds the step for a batch size: compiling a strategy needs the step at its micro-batch size.
using StepFactory = std::function<Step(std::int64_t batch)>;

/// The factory of a catalog spec or an .onnx file, loaded as the model declares its input (frontend/model.h
/// load_model_as_declared): the one place where the compiler's callers turn a model's name into steps.
StepFactory step_factory(std::string spec, StepOptions options);

/// A digest of `graph` that two builds of the same step share and any difference in a node's op, attributes,
/// type, inputs or name, or in the graph's inputs, parameters, states and outputs, changes (FNV-1a 64 over a
/// canonical text of every node, in node order).
std::uint64_t canonical_hash(const ir::Graph& graph);

}  // namespace dojo::compiler
