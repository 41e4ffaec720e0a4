// Two steps of the CPU lowering (exec_plan.h) in files of their own. Private to src/runtime.
#pragma once

#include <vector>

#include "dojo/runtime/exec_plan.h"

namespace dojo::runtime {

// Data parallel (ExecutorOptions::batch_shard_inputs): per node, a RoundTo that rounds a batch-sharded tensor as
// one process holding the global batch would (all false without shard inputs). dojo::Error for a rounded tensor that
// derives from the batch but does not lead with it. Needs p.live.
std::vector<bool> mark_sharded_rounding(const ExecPlan& p, const ExecutorOptions& options);

// Sets p.blocked: the buffers stored in oneDNN's channel-blocked layout, where every kernel touching them runs in it
// and a convolution touches them (or a group touching one a convolution touches). `pinned`: values the caller reads
// or rewrites (plain); `aliased`, `fast_pool`, `rounds_shard`: per node, as lower_cpu decided. Needs p.onednn.
void choose_channel_blocked(ExecPlan& p, const std::vector<bool>& pinned, const std::vector<bool>& aliased,
                            const std::vector<bool>& fast_pool, const std::vector<bool>& rounds_shard);

}  // namespace dojo::runtime
