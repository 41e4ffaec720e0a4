/** \file
 * What the simulator needs of a machine, derived from its description (machine/machine.h): the device that runs one
 * shard of a Plan (a D1 chip, a GPU) and the levels of zones above it, each with the bandwidth that leaves one of
 * its instances.
 *
 * The device is the first zone, top down, whose kind states peak FLOP/s (a GPU) or whose children state FLOP per
 * cycle (a D1 and its nodes; an MPI rank and its CPU cores). Its figures:
 *   matrix_flops[p]   peak per precision (children x clock x flop_per_cycle, or the kind's peak)
 *   vector_flops      elementwise rate: FP32 peak, or the nodes' simd_bf16_flop_per_cycle for 16-bit work
 *   local memory      the children's SRAM and load bandwidth (D1); none on GPUs (caches are not modelled)
 *   device memory     the kind's own HBM (`hbm`, `hbm_bandwidth`) or DRAM (`memory`, `memory_bandwidth`: a CPU
 *                     rank's share of its host), or its share of the HBM of the interface processors (DIPs) in
 *                     the nearest zone that holds both (a tray's 20 DIPs over its 150 D1)
 *   link              to a neighbour in the innermost zone: edge_bandwidth per direction (D1 mesh), half of
 *                     nvlink_bandwidth (NVLink counts both directions; times nvlink_protocol_efficiency, the
 *                     payload left after NVLink's packet overhead), or link_bandwidth (a CPU rank's shared
 *                     memory transport); latency die_to_die_latency or link_latency
 *   reduce_bandwidth  the kind's, if it states one (network.h: reductions that do not overlap the transfers)
 *   cache, link_bandwidth_beyond_cache, reduce_bandwidth_beyond_cache  the kind's, if it states them: a CPU rank's
 *                     share of its cache, and the rates of collective steps too large for it (network.h)
 *   allreduce_algorithm  the kind's label, if it has one (network.h)
 *   collective_cores  the kind's label: "shared" where collectives run on the cores that compute (an MPI rank: its
 *                     communication thread copies and adds on them; simulate.h), else "dedicated" (DMA engines,
 *                     Dojo's network; the default)
 *   format_conversion  the kind's label: "on_store" where a value is converted to a narrower format as its producer
 *                     stores it (Dojo's stores, GPU kernels' epilogues: a step's RoundTo nodes cost no pass of their
 *                     own; the default), or "pass" where a rounding is a pass of its own over memory (a CPU emulating
 *                     the formats, as the runtime's ExecPlan runs it)
 *   runtime           the kind's label: "opendojo" on a CPU host that trains with OpenDojo's own runtime (an MPI rank
 *                     of `dojo train`); its step is then timed kernel by kernel as the runtime lowers it
 *                     (sim/cpu_kernel_time.h), with the rates of its kernels the kind states (CpuKernelRates)
 * A level's egress bandwidth per instance, in each direction: edges x edge_bandwidth (a tile), else
 * injection_bandwidth (a DGX, a host's NIC), else the Ethernet of the DIPs it contains (a tray reaches other trays
 * only through the Z-plane: the inter-tray mesh is not published, spec 13 Q5), else the sum of its children's (no new
 * bottleneck: a non-blocking fat tree, a cabinet of trays). Its latency: its kind's switch_latency, else its
 * injection_latency (a NIC's), the Z-plane's for Ethernet, else that of the level below.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/compiler/place_spatial.h"
#include "dojo/ir/op.h"
#include "dojo/machine/machine.h"

namespace dojo::sim {

/// The rates of OpenDojo's CPU kernels on one rank (all of its threads), as bench/cpu_calibration measures them:
/// the per-element times are of the rank's cores together.
struct CpuKernelRates {
    double fused_map_s = 0;             ///< a fused group's member per element: Add, Mul, Relu and other cheap maps
    double fused_divide_s = 0;          ///< ... Div and Sqrt
    std::map<ir::OpKind, double> fused_function_s;  ///< ... Exp, Log, Tanh, Erf, Sigmoid (libm), by op
    double fused_sum_s = 0;             ///< ... a ReduceSum of the pass's rows, per element summed
    double pool_tiled_forward_s = 0;    ///< max-pooling by tiling 2x2 windows, per vector step (16 outputs of a row)
    double pool_tiled_backward_s = 0;   ///< its adjoint per vector step
    double pool_window_forward_s = 0;   ///< the channel-blocked max-pooling, per window position (outputs x window)
    double pool_window_backward_s = 0;  ///< its adjoint per window position
    double pool_window_plain_forward_s = 0;   ///< any other windows in the plain layout, per window position
    double pool_window_plain_backward_s = 0;  ///< its adjoint per window position
    double round_bf16_s = 0;            ///< a RoundTo pass of its own per element, BF16
    double round_cfp8_s = 0;            ///< ... CFloat8 (its bias from the tensor's max-abs)
    double round_cfp8_stochastic_s = 0; ///< ... CFloat8 with stochastic rounding
    /// The same three for tensors the rounding does on one thread (under 2 x numerics::kMinElementsPerThread)
    double round_bf16_small_s = 0, round_cfp8_small_s = 0, round_cfp8_stochastic_small_s = 0;
    /// A transpose that moves the innermost axis (runtime::TransposeWay::Tiles), per element: on the threads, and on
    /// one thread (a tensor too small to share: runtime::transpose_runs_on_threads)
    double transpose_tiles_s = 0, transpose_tiles_small_s = 0;
    double fused_memory_bandwidth = 0;  ///< bytes read and written per second by a fused pass beyond the cache
    double copy_bandwidth = 0;          ///< bytes read and written per second copying a buffer (an update's apply)
    double kernel_overhead_s = 0;       ///< a kernel run across the cores: starting and joining its threads
    double matrix_call_overhead_s = 0;  ///< a oneDNN call's fixed cost
    double node_overhead_s = 0;         ///< a reference kernel's fixed cost
    /// Reference kernels' rates by op (inputs read and output written per second); an elementwise map's at
    /// reference_map_bandwidth; others at Device::reference_bandwidth
    std::map<ir::OpKind, double> reference_bandwidth;
    double reference_map_bandwidth = 0;  ///< an elementwise map too small to fuse, run by the reference kernel
    /// A oneDNN convolution's rate over 32, 128 and 512 output pixels (over the batch) as a share of its rate over
    /// 1,152 and more, [direction: forward, backward data, backward filter][fp32, bf16][32, 128, 512]
    double conv_pixel_efficiency[3][2][3] = {};
    /// A oneDNN product of 2 x 64 x 512 x 512 FLOP (64 samples through a 512-wide layer) as a share of the rate of
    /// one of 2 x 1024^3 (the sustained fractions'), [fp32, bf16]
    double matmul_small_efficiency[2] = {};
};

struct Device {
    std::string kind;
    std::int64_t count = 0;                     ///< in the whole machine
    std::int64_t parallel_units = 1;            ///< cores (D1 nodes) or SMs that matrix tiles spread over
    std::int64_t matrix_tile = 1;               ///< edge of the matrix tile work pads to (8 on Dojo, 128 on GPUs)
    double sustained_matrix_fraction = 1.0;     ///< of peak, for a perfectly tiled matmul
    double sustained_matrix_fraction_16bit = 0; ///< the same in bf16 and cfp8 where it differs (0: the same)
    std::map<std::string, double> matrix_flops; ///< FLOP/s by precision (fp32, bf16, cfp8, ...)
    /// Bytes a cfp8 matrix operand moves: 1 where the device has 8-bit matrix units (Dojo's CFP8, the H100's FP8);
    /// 2 where it runs cfp8 as BF16 (the A100: its kind says cfp8_runs_as = "bf16").
    double cfp8_operand_bytes = 1;
    double vector_flops_fp32 = 0;               ///< FLOP/s of elementwise work in FP32
    double vector_flops_16bit = 0;              ///< FLOP/s of elementwise work in BF16/CFP16
    double local_bytes = 0;                     ///< SRAM (0: none)
    double local_bandwidth = 0;                 ///< bytes/s
    double memory_bytes = 0;                    ///< HBM (own or share), or a CPU rank's DRAM
    std::string memory_name = "HBM";            ///< what that memory is: "HBM", or "DRAM" for a CPU rank
    double memory_bandwidth = 0;                ///< bytes/s
    double link_bandwidth = 0;                  ///< bytes/s per direction to a neighbour in the innermost zone
    double link_latency_s = 0;
    double reduce_bandwidth = 0;                ///< bytes/s a collective's additions stream at, when they do not
                                                ///< overlap its transfers (a CPU); 0: they overlap (network.h)
    double cache_bytes = 0;                     ///< a CPU rank's share of its cache (0: not modelled)
    double cache_bandwidth = 0;                 ///< its cores' streaming rate in cache: an op whose bytes fit in
                                                ///< cache_bytes moves at this rate, not memory_bandwidth (op_time.h)
    double reference_bandwidth = 0;             ///< where a CPU runs an op with its plain reference loops (op_time.h:
                                                ///< runs_reference), the rate they move data at (0: not modelled)
    double link_bandwidth_beyond_cache = 0;     ///< link_bandwidth and reduce_bandwidth of collective steps whose
    double reduce_bandwidth_beyond_cache = 0;   ///< buffers leave the cache (network.h); 0: the same as in it
    bool collectives_share_cores = false;       ///< collective_cores = "shared" (see above)
    bool rounds_on_store = true;                ///< format_conversion = "on_store" (see above), not "pass"
    /// transposed_operands = "in_place": the matrix units' software reads a matrix operand transposed where it lies
    /// (cuBLAS's transa/transb, a compiler that lays the operand out for its reader), so a Transpose of the last two
    /// axes that only products read moves nothing; "copied" (the default): it is a pass of its own.
    bool transposes_in_place = false;
    /// bias_gradient = "epilogue": a product reading an output gradient also sums its rows into the bias gradient
    /// as it streams them, so that ReduceSum moves nothing; "pass" (the default): it is a pass of its own.
    bool bias_gradient_in_epilogue = false;
    /// tensor_parallel_comm = "overlapped": the framework splits each tensor-parallel collective into chunks that it
    /// pipelines with the product that reads or writes the tensor (Transformer Engine's userbuffers), so only what
    /// the collective takes beyond that product waits; "exposed" (the default): the compute waits for all of it.
    bool tensor_comm_overlapped = false;
    /// parameter_gather = "overlapped": with sharded optimizer state (zero=1), the gather of the updated parameters
    /// runs while the next step's forward pass already computes with the buckets that arrived (a distributed
    /// optimizer's overlap_param_sync); "after_update" (the default): the step ends when the gather does.
    bool parameter_gather_overlapped = false;
    /// fp8_products = "linear": at cfp8 only the products of the model's Linear layers (a product that reads a
    /// parameter, or whose result becomes a parameter's gradient) run in the 8-bit format; the rest (attention's
    /// batched products) run as BF16, with 2-byte operands at the BF16 rate, as Transformer Engine does; "all" (the
    /// default): every product runs at the precision.
    bool fp8_linear_only = false;
    /// row_kernels = "fused": chains of row-wise passes (softmax, LayerNorm and their gradients) run as one kernel
    /// each, their intermediate values kept on chip (sim/row_kernels.h); "passes" (the default): each fused group
    /// and each standalone op is a pass over memory of its own.
    bool row_kernels_fused = false;
    /// attention = "fused": each attention core runs as one kernel forward and one backward, its S x S scores and
    /// probabilities on chip, computed again by the backward kernel (sim/fused_attention.h); "materialised" (the
    /// default): the scores and probabilities are values in memory, kept for the backward pass.
    bool attention_fused = false;
    /// fp8_operands = "k_major": an FP8 product reads both operands with the contraction axis contiguous (cuBLASLt's
    /// FP8 "TN" layout on Hopper); an operand laid out otherwise is first copied, transposed, in FP8
    /// (sim/fp8_operand_copies.h). "any_layout" (the default): products read operands as they lie.
    bool fp8_operands_k_major = false;
    /// saved_activations = "kernel_inputs": a row-wise kernel (fused bias+GeLU, LayerNorm, softmax) keeps what it read
    /// for its backward kernel, which recomputes the values in between, instead of each of them (sim/kept_activations.h);
    /// "every_value" (the default): every forward value the backward pass reads is kept.
    bool keeps_kernel_inputs = false;
    std::string allreduce_algorithm;            ///< the one its collective library uses ("binomial"), or empty:
                                                ///< the fastest the simulator knows (network.h)
    int mesh_columns = 0, mesh_rows = 0;        ///< positions of the cores' 2-D mesh (a D1's mesh_columns and
                                                ///< mesh_rows; 0 on GPUs and CPUs: no mesh to place layers on)
    double core_local_bytes = 0;                ///< SRAM of one core (local_bytes / parallel_units on a mesh)
    double mesh_bisection_bandwidth = 0;        ///< bytes/s across the chip's mesh (its bisection_bandwidth)
    double power_w = 0;                         ///< TDP
    double idle_power_fraction = 0.3;
    bool runs_cpu_runtime = false;              ///< runtime = "opendojo" (see above): `cpu_kernels` holds its rates
    CpuKernelRates cpu_kernels;
};

struct Level {
    std::string kind;
    std::int64_t devices = 1;        ///< devices in one instance
    std::int64_t instances = 1;      ///< in the whole machine
    double egress_bandwidth = 0;     ///< bytes/s leaving one instance, each direction
    double latency_s = 0;            ///< added by a hop that leaves an instance
};

struct Topology {
    std::string machine;
    std::string software;  ///< the software stack its GPUs run (Machine::software); empty: the kinds' defaults
    Device device;
    std::vector<Level> levels;       ///< innermost (tile, DGX) first; the machine's root last
    double machine_power_w = 0;      ///< the machine's total (totals().power_watts)

    /// The innermost level index whose instance holds both devices (levels.size() - 1 at most); -1 if a == b.
    int common_level(std::int64_t a, std::int64_t b) const;
};

/// Derives the topology; UsageError if the machine has no device kind with FLOP rates.
Topology derive_topology(const machine::Machine& machine);

/// The device's mesh of cores for spatial placement (compiler/place_spatial.h) at `precision`: its positions,
/// working cores, SRAM per core, its HBM share and the cores' matrix peak. A device without a mesh (a GPU, a CPU
/// rank) has columns = rows = 0, which place_spatial rejects.
compiler::CoreMesh core_mesh(const Topology& topology, compiler::Precision precision);

}  // namespace dojo::sim
