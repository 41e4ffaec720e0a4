/** \file
 * Text dumps of what each compiler pass decided for a Plan, for people bringing a model up and for golden tests
 * (`dojo plan ... --dump-pass NAME[,NAME...]`): one per pass of compile_passes() (plan.h), then the device programs and
 * the pipeline schedule that follow from the Plan. Each dump is stable (node order, fixed formats) and self-describing:
 *
 *   layouts    tensor parallelism (tensor_parallel.h): per live computed node, its layout on the tp devices
 *              ("whole", "split axis A", "partial -> all-reduce") and whether its work is divided; conflicts
 *   liveness   how many computed nodes are live, and each one that is not
 *   stages     pipeline stages (plan.h): per stage, its forward nodes (first and last), count and FLOPs
 *   transfers  values sent between stages per micro-batch, with bytes per device
 *   fusion     elementwise fusion groups (fuse_elementwise.h): members, by stage
 *   recompute  recomputation (recompute.h): per stage, segments, checkpoint and segment bytes
 *   buckets    gradient buckets (gradient_buckets.h): per stage, parameters and elements each
 *   programs   insert_transfers.h: per stage program, its nodes and what it receives from where (tp = 1); with
 *              tp > 1 and pp = 1, split_tensor_parallel.h's device programs and where they all-reduce
 * The spatial placement has its own dump (place_spatial.h: dump_placement), which needs a machine.
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

/// The names above, in order.
const std::vector<std::string>& dump_pass_names();

/// The dump of pass `name` for `plan`. UsageError naming the choices for an unknown name.
std::string dump_pass(const Plan& plan, const std::string& name);

}  // namespace dojo::compiler
