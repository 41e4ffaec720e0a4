// The step's collectives (tensor-parallel all-reduces, gradient buckets, pipeline sends) registered on the network
// and simulated together, once (network.h): a part of simulate() in its own file. Private to src/sim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "dojo/compiler/plan.h"
#include "dojo/sim/network.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"

namespace dojo::sim {

// Device index of (tensor rank, stage, replica): tensor rank fastest (compiler/plan.h).
std::int64_t device_index(const compiler::Strategy& s, std::int64_t rank, std::int64_t stage, std::int64_t replica);

class StepCollectives {
public:
    // `wire`: activations' and gradients' bytes on the wire per F32 byte of the graph (0.5 at 16 bits);
    // `resident_bytes`: what a device keeps live through the step (network.h: whether a bucket finds the cache).
    StepCollectives(const compiler::Plan& plan, const Topology& topology, double resident_bytes, double wire);

    // [node]: the tensor-parallel all-reduce after it, seconds per micro-batch (absent: none).
    const std::map<std::uint32_t, double>& tensor_comm_after() const { return tp_after_; }
    // [stage][bucket]: bytes on the wire per device, and the seconds each takes alone on the network.
    const std::vector<std::vector<double>>& bucket_bytes() const { return bucket_bytes_; }
    std::vector<double> bucket_seconds(std::size_t stage) const;
    // Pipeline stage `from` to `to`, per micro-batch: the send, plus the receivers' all-gather of a value the tensor-
    // parallel group holds whole (half a ring all-reduce).
    double send_s(int from, int to) const;
    // (from, to) stage -> bytes per device per micro-batch.
    const std::map<std::pair<int, int>, double>& sends() const { return sends_; }

    // The report's collectives, per occurrence: `stages` with their bucket wall times, `busiest` the stage reported.
    std::vector<CollectiveReport> report(const std::vector<StageTime>& stages, std::size_t busiest) const;

private:
    struct BucketFit {  // a stage's smallest and largest bucket of one cache regime, simulated
        double low_bytes = 0, high_bytes = 0;
        std::size_t low = 0, high = 0;  // their handles
    };
    int cache_regime(double bytes) const;
    void register_buckets(const compiler::Plan& plan, Network& network);
    void register_sends(const compiler::Plan& plan, Network& network, const std::vector<std::int64_t>& tp_group);

    const compiler::Plan& plan_;
    const Device& device_;
    double resident_bytes_ = 0;
    double wire_ = 1;
    std::map<double, std::size_t> tp_handles_;  // by bytes on the wire
    std::map<std::uint32_t, double> tp_after_;
    std::vector<std::vector<double>> bucket_bytes_;
    std::vector<std::map<int, BucketFit>> grad_fits_;  // [stage][cache regime]
    std::map<std::pair<int, int>, double> sends_, gathers_;
    std::map<std::pair<int, int>, std::size_t> send_handles_, gather_handles_;
    std::vector<CollectiveTime> times_;
};

}  // namespace dojo::sim
