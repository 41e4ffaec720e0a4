/** \file
 * Memory fit: what each device of a pipeline stage holds (parameters, gradients, optimizer state, the activations of
 * the micro-batches in flight, recomputation's checkpoints, once what every micro-batch computes alike: a weight's
 * rounding) and where it lives (SRAM, or the device's HBM/DRAM with a working copy of the weights in SRAM), at the
 * precision's width. With zero=1 in bf16 or cfp8 the FP32 master parameters are sharded over the dp replicas with
 * the optimizer state (ZeRO stage 1 as Rajbhandari et al. 2020 define it): parameters_bytes is then a device's
 * share of them.
 */
#pragma once

#include <string>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

struct MemoryUse {
    double parameters_bytes = 0;
    double gradients_bytes = 0;
    double optimizer_bytes = 0;
    double activations_bytes = 0;        ///< saved activations of the micro-batches in flight
    double total_bytes() const { return parameters_bytes + gradients_bytes + optimizer_bytes + activations_bytes; }
    std::string weights_level;           ///< "SRAM", or the device's memory ("HBM"; "DRAM" on CPU hosts)
    std::string activations_level;
    /// Where the weights live in the device's memory but the activations and a copy of the parameters at the
    /// precision's width (16-bit in bf16/cfp8) fit in SRAM: that copy, which forward and backward read (0 otherwise).
    double working_copy_bytes = 0;
    bool fits = true;
    std::string largest_tensor;          ///< name of the largest tensor held per device
    double largest_tensor_bytes = 0;
};

/// Bytes each device of each stage of `plan` holds on `device` at the plan's precision, and whether it fits.
std::vector<MemoryUse> plan_memory(const compiler::Plan& plan, const Device& device);

}  // namespace dojo::sim
