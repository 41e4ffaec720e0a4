/** \file
 * The simulator's model of a CPU host that trains with OpenDojo's own runtime (Device::runs_cpu_runtime): the step is
 * the ExecPlan runtime::lower_cpu makes of the Plan on the machine that runs `dojo sim` (the kernels it chooses, e.g.
 * BF16 products, depend on that CPU), and each kernel is timed by what it is:
 *
 *   oneDNN product or convolution   the roofline of op_time.h at its operands' width (FP32, or BF16 for OneDnnBf16),
 *                                   a product's compute slowed by its size (measured at a small model's product
 *                                   and at 1024^3), plus a call's fixed cost, plus its reorders between the
 *                                   buffers' layouts and the primitive's (runtime::OneDnnKernels::reorders: blocked
 *                                   layouts, conversions to BF16), each a copy of its elements at the copy rate
 *                                   plus a kernel's start
 *   fused group                     one pass: its compute (each member's elements times the time per element of
 *                                   its kind of map: cheap maps, sums, divisions and square roots, each of libm's
 *                                   functions)
 *                                   plus its memory traffic (externals read once, exported members written once),
 *                                   plus the cost of starting its threads. Compute and traffic add: each block of
 *                                   the pass reads its externals at its first members and then computes from cache,
 *                                   so the loads do not overlap the arithmetic (measured: an AdamW group costs their
 *                                   sum)
 *   vectorised max-pooling          by its kernel (runtime::max_pool_kernel): tiling 2x2 windows, its vector steps
 *                                   (16 outputs of a row, however few a short row fills) at their measured time;
 *                                   other windows, plain or channel-blocked, its window positions (outputs x window
 *                                   size) at theirs
 *   rounding of its own             its elements at the format's measured rate (BF16, CFloat8)
 *   tiled transpose                 runs that stay contiguous at the copy rate; a moved innermost axis by element, at
 *                                   the measured rate of square tiles on the threads or, for a small tensor, on one
 *   reference kernel                its inputs read and its output written at the op's measured reference rate
 *                                   (sums, LogSoftmax, slices, reshapes, elementwise maps too small to fuse;
 *                                   others at the transposes'),
 *                                   plus a node's fixed cost
 *   alias, fused member, dead node  nothing
 * and after the run the executor applies the updates (copies each updated value that was not computed in place into
 * its leaf: cpu_apply_seconds).
 *
 * Traffic: whether a buffer is in cache when a kernel reads or writes it follows from the run order and the arena:
 * an LRU cache of the rank's cache size over the arena's bytes (in 64 KiB chunks), fed every kernel's reads and
 * writes in the order the executor runs them, the second of two steps counted (the steady state). Bytes that hit
 * move at the cache's rate, the others at DRAM's (for a fused pass its measured rate, fused_memory_bandwidth).
 * The rates are the device kind's (CpuKernelRates), measured by bench/cpu_calibration on shapes of its own.
 */
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/sim/op_time.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

/// The ExecPlan `dojo train` would run for one rank of `plan` on `device`: present where the device runs the CPU
/// runtime and the plan is one the runtime runs (data parallel only); otherwise nothing (the roofline of op_time.h
/// times the plan).
std::optional<runtime::ExecPlan> lower_for_host(const compiler::Plan& plan, const Device& device);

/// Bytes a kernel moves, split by where they come from.
struct KernelTraffic {
    double cached = 0;    ///< found in the cache
    double uncached = 0;  ///< from DRAM
};

/// What each kernel of `exec` (indexed by node: the node a kernel runs at) and the apply after the run (the last
/// entry) move through the LRU cache of `cache_bytes` described above. `updates`: the step's assignments (apply's
/// copies).
std::vector<KernelTraffic> kernel_traffic(const runtime::ExecPlan& exec,
                                          std::span<const autodiff::Assignment> updates, double cache_bytes);

/// The kernel that computes node `node` of `exec`'s graph, at the position it runs at (a fused group's time at its
/// last member, nothing at its other members), with its `traffic`. Precondition: device.runs_cpu_runtime.
OpTime cpu_kernel_time(const runtime::ExecPlan& exec, ir::NodeId node, const Device& device,
                       const KernelTraffic& traffic);

/// The executor's apply after each run (every updated value copied into its leaf), with its `traffic`.
double cpu_apply_seconds(const Device& device, const KernelTraffic& traffic);

}  // namespace dojo::sim
