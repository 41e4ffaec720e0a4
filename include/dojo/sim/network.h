/** \file
 * Collectives and transfers as link-level flows, simulated with SimGrid (flow-level, max-min bandwidth sharing,
 * CM02 model) on the links of a Topology.
 *
 * A request names its participants by global device index. Links: each device's link to its neighbours (the D1
 * mesh edge, the GPU's NVLink port) and, for every level instance a hop leaves, that instance's egress (a tile's
 * edges, a tray's Z-plane Ethernet, a DGX's InfiniBand ports). A hop between devices a and b whose innermost common
 * level is L crosses a's device link if L is the innermost level, else the egress of a's instances of every level
 * below L; its latency is the sum of theirs.
 *
 * Symmetry folding: a Plan runs many identical groups at once (tp x pp data-parallel rings, dp x pp tensor-parallel
 * groups). One group is simulated; an egress link it shares with the identical groups of the same level instance
 * (devices in the instance / members of this group in it) gets that share of its bandwidth.
 *
 * Algorithms (steps of one algorithm are identical, so one step is simulated and multiplied):
 *   ring all-reduce    2 (n - 1) steps; in each, every member sends bytes / n to the next
 *   2-D mesh           members that fill a rows x columns grid (a tile's 5 x 5 D1): reduce-scatter along rows,
 *                      all-reduce along columns, all-gather along rows; rows run side by side
 *   send               one flow
 *   tree               NCCL's double binary tree: two binary trees over the members (heap order, and heap order of
 *                      the members reversed), each reducing half the buffer up to its root and broadcasting it back
 *                      down, pipelined in chunks: 2 steps of bytes / 2 per member, plus 2 (depth - 2) hop latencies
 *                      for the further levels the chunks cross (depth = floor(log2 n) + 1). Its latency grows as
 *                      log n where a ring's grows as n: it wins for small buffers over many members. Only for
 *                      members in several instances of the innermost level (nodes on a switched network); inside a
 *                      D1 mesh its edges would cross mesh hops that are not routed here.
 *   hierarchical       when the members fill several instances of a level equally (k GPUs in each of several DGX
 *                      nodes): ring reduce-scatter inside each instance, k rings across the instances side by side
 *                      (member j of every instance), each all-reducing its bytes / k, ring all-gather inside
 *   hierarchical-tree  the same, with k double binary trees across the instances
 *   binomial           reduce to the first member along a binomial tree, then broadcast: 2 ceil(log2 n) steps of
 *                      the whole buffer (OpenMPI's non-blocking all-reduce for fewer than 4 ranks or in place)
 * all_reduce() registers every algorithm that applies and evaluate() reports the fastest, with its name; a device
 * whose allreduce_algorithm names one (topology.h: its library's: "binomial", "ring") gets that one alone.
 *
 * Reductions: a device with a reduce_bandwidth (a CPU, whose MPI adds a received piece to its own on the core that
 * also moves the data) adds 3 x bytes / reduce_bandwidth after each reduce-scatter step (two operands read, the sum
 * written); on the others (GPUs' NCCL kernels, Dojo's cores) the additions run while the data streams in, and cost
 * no time of their own.
 *
 * Cache: on a device that states a cache (a CPU rank's share of it), a step runs beyond it when what the device
 * keeps live through the training step (resident_bytes: its model, gradients, optimizer state, activations, which
 * every step streams through the cache again) plus the step's buffer and received copy (2 x bytes per flow) exceed
 * it. Such a step moves over the device link at link_bandwidth_beyond_cache and adds at
 * reduce_bandwidth_beyond_cache, where stated: on a CPU both run from memory (bench/host_calibration measures both).
 *
 * SimGrid allows one engine per process, so evaluate() runs it in a forked child and reads the times back: many
 * evaluations may run in one process (tests, strategy search).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dojo/sim/topology.h"

namespace dojo::sim {

struct CollectiveTime {
    double seconds = 0;
    std::string algorithm;  ///< "ring", "2d-mesh", "tree", "hierarchical", "hierarchical-tree", "send", "binomial"
};

/// Whether a collective step moving `bytes_per_flow` runs beyond `device`'s cache (see Cache above).
bool beyond_cache(const Device& device, double resident_bytes, double bytes_per_flow);
/// Seconds `device` spends adding a received piece of `bytes` to its own (see Reductions above); 0 if its additions
/// overlap the transfers.
double reduce_seconds(const Device& device, double resident_bytes, double bytes);

class Network {
public:
    /// The most members one collective may have: each is a host of the SimGrid platform, whose build and run grow
    /// faster than linearly with them (on the 2-core VM, a strategy search over 4,096-member rings took 36 s and
    /// 3 GB; over 8,192-member rings, more than 3 minutes; 16,384, more than 5 minutes and 20 GB). UsageError beyond.
    static constexpr std::int64_t kMaxCollectiveMembers = 4'096;
    /// The flows of one simulation (all collectives and transfers of a step) at most kMaxCollectiveMembers times
    /// this: the step of a 4,096-way data-parallel ring with its algorithms' phases fits.
    static constexpr std::int64_t kMaxPhaseFactor = 16;
    /// `resident_bytes`: what each device keeps live through the step besides the collectives' buffers (see Cache).
    explicit Network(Topology topology, double resident_bytes = 0);

    /// An all-reduce of `bytes` (each member's full buffer) over `members` (ring order); returns its handle.
    std::size_t all_reduce(std::vector<std::int64_t> members, double bytes);
    /// One transfer of `bytes` from device `from` to device `to`; returns its handle.
    std::size_t send(std::int64_t from, std::int64_t to, double bytes);

    /// Simulates every registered request (each on its own copy of the links it uses) and returns their times by
    /// handle. Throws Error if the simulation process fails.
    std::vector<CollectiveTime> evaluate() const;

private:
    struct Hop {
        std::int64_t from, to;
    };
    struct Phase {                      ///< concurrent flows of one step, repeated `steps` times
        std::vector<Hop> hops;
        double bytes_per_flow = 0;
        std::int64_t steps = 0;
        std::int64_t reduce_steps = 0;  ///< of `steps`, those after which each member adds what it received
        double extra_latency_s = 0;     ///< added once: a pipelined tree's further levels
    };
    struct Request {
        std::string algorithm;
        std::vector<Phase> phases;
        std::vector<std::int64_t> members;  ///< for link sharing
        std::size_t handle = 0;
    };
    Topology topology_;
    double resident_bytes_ = 0;
    std::vector<Request> requests_;
    std::size_t handles_ = 0;

    /// One ring per entry, side by side, all of the same size n: each step moves bytes / n per member; n - 1 steps
    /// for the reduce-scatter and n - 1 for the all-gather, as asked.
    static Phase ring_phase(const std::vector<std::vector<std::int64_t>>& rings, double bytes, bool reduce_scatter,
                            bool all_gather);
    /// A double binary tree over each entry, side by side (see Algorithms).
    Phase tree_phase(const std::vector<std::vector<std::int64_t>>& groups, double bytes) const;
    void simulate_all(std::vector<double>& step_times) const;
    friend struct NetworkSimulation;
};

}  // namespace dojo::sim
