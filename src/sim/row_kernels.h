// Row kernels: where a GPU framework runs a chain of row-wise passes as one kernel (Device::row_kernels_fused), as
// Megatron's fused scale-mask-softmax and apex's and Transformer Engine's fused LayerNorm do, a value passed between
// those passes stays in the kernel's on-chip memory: it is neither written by its producer nor read by its readers.
// A part of the stage timing (stage_times.h) in its own file. Private to src/sim.
#pragma once

#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

// Per node: the bytes its kernel does not move because of row kernels (a fused group's at its last member, where
// time_stage_ops charges the group), in the units op_time and group_time count. A value stays on chip when its
// producer and every reader are row-wise passes (fused elementwise groups and standalone elementwise maps whose
// sums run along the last axis only, a LogSoftmax along the last axis) of the same pass of the step (forward,
// backward or update), and a row of it fits a thread block's shared memory. All zeros unless the device says
// row_kernels = "fused". Values `on_chip_already` marks (per node: fused attention's scores, fused_attention.h) are
// counted there, not here.
std::vector<double> row_kernel_savings(const compiler::Plan& plan, const Device& device,
                                       const std::vector<bool>& on_chip_already);

// Per value: the live nodes of the plan's step that read it, in graph order.
std::vector<std::vector<std::uint32_t>> live_readers(const compiler::Plan& plan);

// A row-wise pass: an elementwise map, or a sum or log-softmax along the last axis only.
bool row_wise(const ir::Graph& g, ir::NodeId id);

}  // namespace dojo::sim
