/** \file
 * insert_transfers: cuts a Plan's training graph into the programs each pipeline stage runs, with every value that
 * crosses from one program to another an explicit receive, so that a runtime can execute the plan stage by stage
 * with real copies (runtime/functional_sim.h) and nothing is shared behind the plan's back.
 *
 * Per stage s, three programs (any of them may be empty):
 *   Forward   the stage's live forward nodes (up to the loss), once per micro-batch;
 *   Backward  its live backward nodes that run per micro-batch (those the gradients need), once per micro-batch;
 *   Update    its per-step nodes (the optimizer), once per step, after the gradients are accumulated over the
 *             micro-batches and all-reduced over the replicas.
 * Each program is a graph of its own. Leaves of the training graph it reads are leaves of the same kind and name in
 * it (parameters, optimizer states, data inputs, the learning rate; fills and constants are copied); every other
 * value it reads, computed by another program, is an Input leaf named "recv #N" listed in `receives`: a forward
 * value from an earlier stage (an activation sent down the pipeline), a gradient from a later stage, the stage's
 * own saved activations (forward to backward: kept, not sent), or, for the Update program, an accumulated gradient.
 * With recomputation (recompute=1), a Backward program receives only its stage's checkpoints from its Forward
 * program and computes the other forward values it reads again, as compiler/recompute.h plans it.
 * Values every device computes for itself (compiler::computed_locally: from fills, constants and the learning rate)
 * are recomputed in each program that reads them, as the plan has no transfer for them.
 * Values another program receives, the loss and the new values of the training graph's assignments are the
 * program's outputs.
 *
 * Tensor parallelism: each device of the group runs its own program (compiler/split_tensor_parallel.h), and that
 * graph is cut the same way, each of its nodes going where its origin (the training node it is or serves) goes:
 * stage s's programs on device r then hold device r's blocks, receive device r's blocks from other stages (Megatron's
 * pipeline sends between matching ranks) and list the group's all-reduces they compute (`all_reduce_after`, in
 * order; a backward program recomputing a forward value all-reduces it again).
 *
 * Preconditions: lay_out has set plan.live, stage and per_step.
 */
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/compiler/split_tensor_parallel.h"

namespace dojo::compiler {

enum class ProgramPart { Forward, Backward, Update };
const char* to_string(ProgramPart part);

struct StageProgram {
    int stage = 0;
    ProgramPart part = ProgramPart::Forward;
    ir::Graph graph;
    /// [node of `graph`]: the node of the source graph it stands for (the training graph's, or with tensor
    /// parallelism the device program's).
    std::vector<ir::NodeId> origin;
    struct Receive {
        ir::NodeId input;               ///< the Input leaf of `graph` that takes the value
        ir::NodeId value;               ///< the source-graph node whose value it takes
        int from_stage = 0;             ///< the stage whose program computes it
        ProgramPart from_part = ProgramPart::Forward;
    };
    std::vector<Receive> receives;
    struct Leaf {
        ir::NodeId here;                ///< a Parameter, State or Input leaf of `graph`
        ir::NodeId training;            ///< the training-graph leaf it is or holds a block of
        int split_axis = -1;            ///< tensor parallelism: as DeviceProgram::Leaf (-1: all of it)
        std::int64_t groups = 1;
    };
    std::vector<Leaf> leaves;
    std::vector<ir::NodeId> all_reduce_after;  ///< nodes of `graph` summed over the tensor-parallel group, in order
    bool empty() const { return origin.empty(); }
};

/// The programs of `plan`, stage by stage, Forward, Backward, Update each: index 3 * stage + part. UsageError for
/// tp > 1 (cut each device's program instead).
std::vector<StageProgram> insert_transfers(const Plan& plan);

/// The programs of one device of a tensor-parallel plan: `device` (split_tensor_parallel(plan)[rank]) cut by stage
/// and part as above; origins and receives name nodes of device.graph.
std::vector<StageProgram> insert_transfers(const Plan& plan, const DeviceProgram& device);

}  // namespace dojo::compiler
