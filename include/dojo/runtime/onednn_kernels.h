/** \file
 * Fast CPU kernels from oneDNN (Debian's libdnnl 2.6) for the ops that dominate a training step: Conv2d with both
 * adjoints and MatMul. They are created once per node when an executor is built (primitive creation is slow; running
 * one is not) and run on the executor's buffers in place, in the IR's plain row-major layouts (NCHW, OIHW / GOIHW);
 * convolutions run in the blocked layouts oneDNN picks for them, reordered from and to the plain buffers through
 * scratch storage shared by all kernels. An input several kernels read in one layout (a convolution's input, read
 * again by its filter adjoint; an output gradient, read by both adjoints) is reordered once per step, by its first
 * reader, into a copy the others read; the copies share one arena, placed by their lifetimes.
 *
 * Contract: a fast kernel computes what the op's reference kernel computes (ir/op.h) up to summation order: oneDNN
 * blocks and vectorises the reductions, so results differ from the reference in the last bits, not more. They are
 * deterministic for a given thread count. A node the fast path cannot take (e.g. a MatMul whose batch dimensions
 * broadcast in a way oneDNN does not support) simply runs its reference kernel.
 *
 * BF16 operands: where every operand of a node is a RoundTo output (the bf16 and cfp8 precision policies put one in
 * front of every matrix-unit operand, forward and backward) its values lie on a BF16 or CFloat grid, and BF16 holds
 * every such value exactly. On a CPU that multiplies BF16 in hardware (AVX512-BF16 or AMX) such a node's kernel reads
 * its operands as BF16 (converted on the way into the kernel's layout) and accumulates and writes FP32: the same
 * products as the FP32 kernel, summed in another order, at up to twice the speed. The one further difference is
 * the hardware's: BF16 dot products treat subnormal inputs and results as zero (VDPBF16PS), which only touches values
 * below 2^-126. (A CFloat RoundTo passes a tensor holding NaN or Inf through unrounded, ir/rounding.h; such a step has
 * diverged and the loss check stops the run, and the BF16 read rounds the tensor's finite values on the way.) On other CPUs, or where oneDNN has no fast BF16 kernel for a shape, the FP32 kernel runs. oneDNN's
 * ONEDNN_MAX_CPU_ISA (e.g. AVX512_CORE) turns the BF16 kernels off.
 *
 * Channel-blocked buffers: the executor may store an activation that every kernel touching it runs in oneDNN's
 * channel-blocked layout (runtime/channel_blocked.h) in that layout (use_blocked()); those kernels then read or
 * write the buffer as it is, with no reorder (a BF16 reader converts it, in the same layout, on the way in).
 *
 * BF16 copies written by their producer: where every reader of a value reads one shared BF16 copy laid out as the
 * value's buffer (a value one kernel reads so has a copy of its own too), the producer may write that copy itself
 * (bf16_copy(); runtime/round_to_bf16_copy.h does, for a CFloat8 or BF16 rounding), and the conversion does not run.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dojo/ir/buffer.h"
#include "dojo/ir/graph.h"

namespace dojo::runtime {

class OneDnnKernels {
public:
    /// Prepares a kernel for every node of `graph` the fast path supports and `live` marks (indexed by node).
    OneDnnKernels(const ir::Graph& graph, const std::vector<bool>& live);
    ~OneDnnKernels();
    OneDnnKernels(const OneDnnKernels&) = delete;
    OneDnnKernels& operator=(const OneDnnKernels&) = delete;

    /// How the kernels touching node `id`'s buffer would take it channel-blocked.
    enum class BlockedFit {
        Untouched,  ///< no kernel reads or writes it
        Fits,       ///< every kernel that reads or writes it runs in the channel-blocked layout
        Conflicts,  ///< some kernel runs in another layout (or the shape has none)
    };
    BlockedFit blocked_fit(ir::NodeId id) const;
    /// Stores the buffers `blocked` marks (indexed by node; each Fits) channel-blocked: their kernels read and write
    /// them without reorders; then allocates the reorder scratch and shared copies for those layouts. At most once,
    /// before the first run() (which otherwise allocates them for the plain layouts).
    void use_blocked(const std::vector<bool>& blocked);
    /// Whether node `id` has a fast kernel.
    bool has(ir::NodeId id) const;
    /// Marks the start of a step (an Executor::run): leaves may have changed, so no reordered copy is reused.
    void begin_step();
    /// Runs node `id`'s fast kernel on `values` (indexed by node), writing values[id].
    void run(ir::NodeId id, std::vector<ir::Buffer<float>>& values) const;
    /// Whether node `id`'s fast kernel reads its operands as BF16 (see above).
    bool reads_bf16(ir::NodeId id) const;
    /// oneDNN's name for node `id`'s fast kernel ("jit:avx512_core", "brg:avx512_core_bf16", "jit:avx2", ...), or ""
    /// where it has none: which instructions it runs on (sim/cpu_kernel_time.h times it by them).
    std::string implementation(ir::NodeId id) const;
    /// How many nodes have a fast kernel.
    std::size_t count() const;
    /// How many reordered inputs have a copy (above): those two or more kernels read, reordered once per step, and
    /// those one kernel reads as BF16 in the buffer's own layout, which their producer may write.
    std::size_t shared_copy_count() const;

    /// A reorder a kernel runs between its buffer's layout and the layout the primitive runs on (run()).
    struct Reorder {
        ir::NodeId value;               ///< the node whose value it moves
        std::size_t bytes_read = 0;     ///< the layout it reads (the buffer's for an input, the primitive's for the output)
        std::size_t bytes_written = 0;  ///< and the one it writes
        bool into_shared_copy = false;  ///< an input's shared copy: skipped where the producer wrote it (bf16_copy())
        /// The bytes it moves: each of the value's elements read in one layout's type and written in the other's.
        /// Less than bytes_read + bytes_written where a blocked layout pads the channels (6 of 16, say): a reorder
        /// neither reads nor writes the padding of the plain side.
        std::size_t bytes_moved = 0;
    };
    /// The reorders node `id`'s kernel runs in a step, in the layouts as they now stand (after use_blocked()): one
    /// for each argument in another layout than its buffer's, except a shared copy, which only its first reader of
    /// the step fills. Empty for a node without a fast kernel. (bench/node_times prints them beside each kernel.)
    std::vector<Reorder> reorders(ir::NodeId id) const;
    /// From now on, every run() also times its reorders (two clock reads each) for reorder_seconds().
    void time_reorders();
    /// With time_reorders(), the seconds node `id`'s reorders took over its runs so far (0 before, or without one).
    double reorder_seconds(ir::NodeId id) const;

    /// Where the producer of node `id` may write the value as its readers read it: when every kernel reading `id`
    /// reads one shared copy that is BF16 in the buffer's own layout (element i of the copy is element i of the
    /// buffer, as a BF16 bit pattern), that copy; else nullptr. A producer whose values are exact in BF16 (a CFloat8
    /// rounding) writes it instead of its FP32 buffer and calls bf16_copy_written(), and no reorder runs. The copy's
    /// bytes are reserved from the kernel after the node on, so it may be written any time after the previous kernel.
    /// Valid from construction to destruction (after use_blocked(), where the executor calls it).
    std::uint16_t* bf16_copy(ir::NodeId id) const;
    /// Node `id`'s bf16_copy() holds its value of this step (begin_step() forgets that).
    void bf16_copy_written(ir::NodeId id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dojo::runtime
