/** \file
 * The simulated step as a Chrome / Perfetto trace (JSON trace-event format: chrome://tracing, ui.perfetto.dev).
 *
 * Zoom levels, outermost first:
 *   process "<machine>": the step as one slice, and counters of what the network carries over time (for each
 *       stage, how many of its gradient all-reduce and pipeline-send streams are busy, 0 or 1 each, and the GB/s
 *       its representative device's links carry: each transfer's bytes over its duration, summed while they overlap)
 *   process per zone holding a stage's device ("tray 0 / tile 3", "dgx-h100 2"), named by the machine's levels
 *   thread per device and stream: "d1 #57 compute" and "d1 #57 communication" (a GPU's compute and NCCL streams)
 *   thread per rectangle of a mesh chip's cores (Dojo): "d1 #57 cores (0,4) 15x16" with its layers' work while
 *       the micro-batch streams through side by side, or "d1 #57 all 354 cores (layers in turn)" with each layer
 *       and the re-spreading of its output between layers (simulate.h)
 *   slices: forward and backward tasks per micro-batch, the optimizer update, gradient buckets, pipeline sends;
 *       inside the first and last micro-batch's tasks, one slice per op (or fused group) and tensor-parallel
 *       all-reduce (when the layers run in turn; side by side the rectangles' slices are the detail).
 * Each stage is shown on its representative device (tensor rank 0 of replica 0): the dp x tp devices of a stage do
 * identical work (folding, simulate.h), and the thread name says how many it stands for.
 */
#pragma once

#include <ostream>

#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

/// Writes `result`'s timeline (simulate(..., record_timeline = true)) as a trace-event JSON object.
void write_chrome_trace(const SimResult& result, const Topology& topology, std::ostream& out);

}  // namespace dojo::sim
