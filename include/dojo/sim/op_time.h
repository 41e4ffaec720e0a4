/** \file
 * The time of one node of a Plan on one device: a roofline of its compute and its memory traffic.
 *
 *   compute = FLOPs / rate. Matrix work (MatMul, convolutions as implicit GEMMs) runs at the precision's matrix
 *             peak x sustained_matrix_fraction x tiling efficiency: each of m, n, k pads to the device's matrix
 *             tile (8 on Dojo's 8x8 units, 128 on GPU thread-block tiles), and the output tiles run in waves over
 *             the device's cores or SMs (wave quantization). Other work runs at the vector rate (FP32 for fp32
 *             and for the optimizer; 16-bit SIMD otherwise).
 *   memory  = bytes / bandwidth of the level that holds the data (SRAM or HBM, chosen by the memory plan).
 *             Bytes are the op table's, scaled to the element width the device stores at the precision
 *             (stores_narrow; 4 bytes on a device that emulates the formats): fp32 4 bytes; bf16
 *             2; cfp8 1 for matrix inputs and 2 for other activations; the optimizer works on FP32 master values.
 *   time    = max(compute, memory); memory_bound when memory is the larger.
 * Work that tensor parallelism divides (TensorParallel::divided) is divided by tp.
 *
 * The precision's rounding nodes are in the step (compiler/precision_policy.h): a RoundGrad's forward is the identity
 * (no time, as the runtime aliases it); a RoundTo costs nothing on a device that converts as it stores
 * (Device::rounds_on_store: Dojo, GPUs) and is a pass over memory on one that emulates the formats (a CPU host).
 *
 * A fused elementwise group (compiler/fuse_elementwise.h) is one pass: its members' FLOPs at the vector rate, and
 * as memory traffic only its externals read once and its exported members written once; the intermediates stay in
 * registers and cache. Under tensor parallelism a divided group's externals count as divided too (a replicated
 * bias it broadcasts is small).
 */
#pragma once

#include <string>

#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/compiler/plan.h"
#include "dojo/ir/graph.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

struct OpTime {
    double flops = 0;        ///< on this device
    double bytes = 0;        ///< moved on this device
    double compute_s = 0;
    double memory_s = 0;
    double seconds = 0;
    bool matrix = false;
    bool memory_bound = false;
};

/// Whether a CPU host runs `op` with the op table's reference kernel (runtime/exec_plan.h: every op but the matrix
/// products and convolutions, pooling, roundings, sums and elementwise maps, which have kernels of their own), which
/// moves data at Device::reference_bandwidth where the device states one.
bool runs_reference(ir::OpKind op);

/// Whether `device` holds values at `precision`'s narrower width (16 bits; 8 for cfp8 matrix operands where it has
/// 8-bit units): it converts as it stores (Device::rounds_on_store). A device that emulates the formats holds FP32.
bool stores_narrow(const Device& device, compiler::Precision precision);

/// `node` of `graph` on `device` at `precision`; `share` divides its work (tp for divided nodes, else 1);
/// `fp32_master`: an optimizer node (FP32 regardless of precision); `bandwidth`: of the level holding its data.
OpTime op_time(const ir::Graph& graph, ir::NodeId node, const Device& device, compiler::Precision precision,
               double share, bool fp32_master, double bandwidth);

/// What pipeline stages balance on `device` at `precision` (compiler::Plan::stage_cost): each forward node's
/// op_time, its data at the level activations live in (SRAM on a chip that has it, else the device's memory).
compiler::NodeCost stage_cost(const Device& device, compiler::Precision precision);

/// `group` as one pass on `device` (the arguments as op_time's, for all of its members).
OpTime group_time(const ir::Graph& graph, const compiler::FusionGroup& group, const Device& device,
                  compiler::Precision precision, double share, bool fp32_master, double bandwidth);

}  // namespace dojo::sim
