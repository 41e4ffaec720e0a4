// The step's collectives on the network (step_collectives.h).
#include "step_collectives.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace dojo::sim {

std::int64_t device_index(const compiler::Strategy& s, std::int64_t rank, std::int64_t stage, std::int64_t replica) {
    return rank + static_cast<std::int64_t>(s.tp) * (stage + static_cast<std::int64_t>(s.pp) * replica);
}

StepCollectives::StepCollectives(const compiler::Plan& plan, const Topology& topology, double resident_bytes,
                                 double wire)
    : plan_(plan), device_(topology.device), resident_bytes_(resident_bytes), wire_(wire) {
    Network network(topology, resident_bytes);
    std::vector<std::int64_t> tp_group;
    for (int rank = 0; rank < plan.strategy.tp; ++rank) {
        tp_group.push_back(rank);
    }
    for (const auto& ar : plan.tensor.all_reduces) {
        if (tp_handles_.count(ar.bytes * wire) == 0) {
            tp_handles_[ar.bytes * wire] = network.all_reduce(tp_group, ar.bytes * wire);
        }
    }
    register_buckets(plan, network);
    register_sends(plan, network, tp_group);
    times_ = network.evaluate();
    for (const auto& ar : plan.tensor.all_reduces) {
        tp_after_[ar.node.index] += times_[tp_handles_.at(ar.bytes * wire)].seconds;
    }
}

// On a device with a cache, which of a bucket's algorithms' steps leave it: a ring's step moves bytes / n, a 2-D
// mesh's bytes / sqrt(n), a binomial tree's all the bytes (network.h).
int StepCollectives::cache_regime(double bytes) const {
    const double n = static_cast<double>(plan_.strategy.dp);
    return (beyond_cache(device_, resident_bytes_, bytes) ? 1 : 0) |
           (beyond_cache(device_, resident_bytes_, bytes / n) ? 2 : 0) |
           (beyond_cache(device_, resident_bytes_, bytes / std::sqrt(n)) ? 4 : 0);
}

// The data-parallel all-reduce of each stage's gradient buckets (the plan's, as the runtime cuts them). On fixed
// links a collective's time is affine in its bytes (steps x (latency + bytes / bandwidth), plus the reductions), so
// the smallest and the largest bucket of a stage and cache regime are simulated and the rest interpolated: exact,
// and a model of thousands of buckets costs two simulations per stage and regime.
void StepCollectives::register_buckets(const compiler::Plan& plan, Network& network) {
    const compiler::Strategy& st = plan.strategy;
    const auto P = static_cast<std::size_t>(st.pp);
    const ir::Graph& g = plan.step.graph;
    bucket_bytes_.assign(P, {});
    grad_fits_.assign(P, {});
    for (std::size_t s = 0; s < P && st.dp > 1; ++s) {
        for (const compiler::GradientBucket& bucket : plan.gradient_buckets[s]) {
            double bytes = 0;
            for (const std::size_t k : bucket.gradients) {
                bytes += plan.tensor.bytes_per_device(g, g.parameters()[k]) * plan.gradient_wire_bytes / sizeof(float);
            }
            bucket_bytes_[s].push_back(bytes);
        }
        if (bucket_bytes_[s].empty()) {
            continue;
        }
        std::vector<std::int64_t> ring;
        for (int replica = 0; replica < st.dp; ++replica) {
            ring.push_back(device_index(st, 0, static_cast<std::int64_t>(s), replica));
        }
        std::map<int, std::pair<double, double>> extremes;  // regime -> smallest, largest bucket
        for (const double bytes : bucket_bytes_[s]) {
            const auto [it, added] = extremes.emplace(cache_regime(bytes), std::pair{bytes, bytes});
            it->second = {std::min(it->second.first, bytes), std::max(it->second.second, bytes)};
        }
        for (const auto& [regime, low_high] : extremes) {
            BucketFit& fit = grad_fits_[s][regime];
            fit.low_bytes = low_high.first;
            fit.high_bytes = low_high.second;
            fit.low = network.all_reduce(ring, fit.low_bytes);
            fit.high = fit.low_bytes == fit.high_bytes ? fit.low : network.all_reduce(ring, fit.high_bytes);
        }
    }
}

// Pipeline sends, per device and micro-batch. A value the tensor-parallel group holds whole on every device is sent
// as Megatron-LM's scatter/gather does (Narayanan et al. 2021, sec. 4.1): each of the tp devices sends its 1/tp over
// its own link, and the receiving group all-gathers the pieces (half a ring all-reduce's steps) on its fast links; a
// split value is sent as each device holds it.
void StepCollectives::register_sends(const compiler::Plan& plan, Network& network,
                                     const std::vector<std::int64_t>& tp_group) {
    const compiler::Strategy& st = plan.strategy;
    for (const compiler::Plan::Transfer& t : plan.transfers) {
        const bool whole = st.tp > 1 && !plan.tensor.layout[t.node.index].split() &&
                           (plan.tensor.sequence_split.empty() || !plan.tensor.sequence_split[t.node.index]);
        sends_[{t.from, t.to}] += whole ? t.bytes * wire_ / st.tp : t.bytes * wire_;
        gathers_[{t.from, t.to}] += whole ? t.bytes * wire_ : 0.0;
    }
    std::map<double, std::size_t> gather_by_bytes;  // every stage's group is alike: one simulation per size
    for (const auto& [key, bytes] : sends_) {
        send_handles_[key] =
            network.send(device_index(st, 0, key.first, 0), device_index(st, 0, key.second, 0), bytes);
        if (gathers_[key] > 0) {
            auto it = gather_by_bytes.find(gathers_[key]);
            if (it == gather_by_bytes.end()) {
                it = gather_by_bytes.emplace(gathers_[key], network.all_reduce(tp_group, gathers_[key])).first;
            }
            gather_handles_[key] = it->second;
        }
    }
}

std::vector<double> StepCollectives::bucket_seconds(std::size_t stage) const {
    std::vector<double> seconds;
    for (const double bytes : bucket_bytes_[stage]) {
        const BucketFit& fit = grad_fits_[stage].at(cache_regime(bytes));
        const double t_low = times_[fit.low].seconds, t_high = times_[fit.high].seconds;
        const double along =
            fit.high_bytes == fit.low_bytes ? 0.0 : (bytes - fit.low_bytes) / (fit.high_bytes - fit.low_bytes);
        seconds.push_back(t_low + along * (t_high - t_low));
    }
    return seconds;
}

double StepCollectives::send_s(int from, int to) const {
    const auto it = send_handles_.find({from, to});
    const auto gather = gather_handles_.find({from, to});
    return (it == send_handles_.end() ? 0.0 : times_[it->second].seconds) +
           (gather == gather_handles_.end() ? 0.0 : times_[gather->second].seconds / 2);
}

std::vector<CollectiveReport> StepCollectives::report(const std::vector<StageTime>& stages,
                                                      std::size_t busiest) const {
    const compiler::Strategy& st = plan_.strategy;
    std::vector<CollectiveReport> out;
    if (!plan_.tensor.all_reduces.empty()) {
        double bytes = 0, seconds = 0;
        for (const auto& ar : plan_.tensor.all_reduces) {
            bytes += ar.bytes * wire_;
            seconds += times_[tp_handles_.at(ar.bytes * wire_)].seconds;
        }
        const auto count = static_cast<double>(plan_.tensor.all_reduces.size());
        out.push_back({"tensor-parallel all-reduce", static_cast<std::int64_t>(count) * st.micro_batches,
                       bytes / count, st.tp, times_[tp_handles_.begin()->second].algorithm, seconds / count});
    }
    if (st.dp > 1 && !bucket_bytes_[busiest].empty()) {
        const double buckets = static_cast<double>(bucket_bytes_[busiest].size());
        double bytes = 0;
        for (const double b : bucket_bytes_[busiest]) {
            bytes += b;
        }
        out.push_back({"gradient all-reduce (stage " + std::to_string(busiest) + ", per bucket)",
                       static_cast<std::int64_t>(buckets), bytes / buckets, st.dp,
                       times_[grad_fits_[busiest].rbegin()->second.high].algorithm,
                       stages[busiest].grad_allreduce_s / buckets});
    }
    for (const auto& [key, handle] : send_handles_) {
        out.push_back({"pipeline send " + std::to_string(key.first) + "->" + std::to_string(key.second),
                       st.micro_batches, sends_.at(key), 2, times_[handle].algorithm, send_s(key.first, key.second)});
    }
    return out;
}

}  // namespace dojo::sim
