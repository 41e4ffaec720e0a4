/** \file
 * schedule: the order in which each pipeline device runs its tasks (a chunk's forward or backward pass for one
 * micro-batch) in a step, so that communication overlaps compute: while a device computes one micro-batch, the
 * activations of the next and the gradients of an earlier one travel between stages. The simulator's event run
 * times this order (sim/simulate.h) and the functional simulation executes it (runtime/functional_sim.h), so the
 * order timed is an order that runs.
 *
 * Chunks are virtual stages k = c * pp + s: device s runs chunks s, pp + s, ..., (vp - 1) * pp + s (with vp = 1,
 * chunk k is stage k). A forward task (k, i) needs the forward of (k - 1, i); a backward task (k, i) needs the
 * forward of (k, i) and the backward of (k + 1, i).
 *   vp = 1, 1F1B (PipeDream-Flush; Narayanan et al. 2021, sec. 2.2.1): device s runs min(pp - 1 - s, m) warm-up
 *     forwards, then alternates one forward and one backward, then drains the remaining backwards; it holds at most
 *     pp - s micro-batches' activations.
 *   vp > 1, interleaved 1F1B (sec. 2.2.2, Megatron-LM's forward_backward_pipelining_with_interleaving): m * vp
 *     micro-steps per device; micro-step j runs chunk (j mod (pp vp)) / pp forwards (reversed for backwards) on
 *     micro-batch (j / (pp vp)) * pp + j mod pp; (pp - s - 1) * 2 + (vp - 1) * pp warm-up forwards, then one forward
 *     and one backward, then the drain. Needs m a multiple of pp.
 * Preconditions: pp >= 1, micro_batches >= 1, virtual_stages >= 1 (UsageError otherwise, and for vp > 1 with m not a
 * multiple of pp).
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/compiler/plan.h"

namespace dojo::compiler {

struct PipelineTask {
    bool backward = false;
    int chunk = 0;   ///< virtual stage: chunk % pp is the device
    int micro = 0;   ///< micro-batch, 0 .. m - 1
    bool operator==(const PipelineTask&) const = default;
};

/// Per device 0 .. pp - 1, its tasks in order: every (chunk, micro-batch) of its chunks once forward, once backward.
std::vector<std::vector<PipelineTask>> pipeline_schedule(const Strategy& strategy);

/// The schedule as text, one line per device ("F0.1" = forward of chunk 0, micro-batch 1): `--dump-pass schedule`.
std::string dump_schedule(const Strategy& strategy);

}  // namespace dojo::compiler
