// search_strategies: candidate splits, each simulated, with memory-saving and interleaved variants (search.h).
#include "dojo/sim/search.h"

#include <algorithm>
#include <map>
#include <optional>

#include "dojo/sim/memory_fit.h"
#include "dojo/sim/op_time.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

using compiler::Plan;

}  // namespace

std::vector<compiler::Strategy> candidate_splits(const Topology& topology, std::int64_t global_batch) {
    const std::int64_t devices = topology.device.count;
    const std::int64_t domain = topology.levels.front().devices;
    std::vector<compiler::Strategy> candidates;
    for (std::int64_t tp = 1; tp <= domain; ++tp) {
        if (domain % tp != 0) {
            continue;
        }
        for (std::int64_t pp = 1; pp * tp <= devices && pp <= 128; pp *= 2) {
            std::int64_t dp = std::min(devices / (tp * pp), global_batch);
            while (dp > 1 && global_batch % dp != 0) {
                --dp;
            }
            compiler::Strategy s{static_cast<int>(dp), static_cast<int>(tp), static_cast<int>(pp), 1};
            s.micro_batches = pp > 1 ? static_cast<int>(global_batch / dp) : 1;
            candidates.push_back(s);
        }
    }
    return candidates;
}

namespace {

bool all_fit(const std::vector<MemoryUse>& memory) {
    return std::all_of(memory.begin(), memory.end(), [](const MemoryUse& m) { return m.fits; });
}

// What every device of split `s` holds whatever saving it takes, at least: the gradients (F32), divided at most
// tp x pp ways, and the optimizer state and the parameters, divided at most dp x tp x pp ways (zero=1 shards the
// optimizer state, and the FP32 master parameters too where the step computes in 16 bits: memory_fit.h).
// Recomputation saves activations only. A split above its device's memory and SRAM cannot fit.
double least_weight_bytes(const Plan& plan, const compiler::Strategy& s) {
    const ir::Graph& g = plan.step.graph;
    double parameters = 0, state = 0;
    for (const ir::NodeId p : g.parameters()) {
        parameters += static_cast<double>(g.type(p).shape.numel()) * 4.0;
    }
    for (const ir::NodeId st : g.states()) {
        state += static_cast<double>(g.type(st).shape.numel()) * 4.0;
    }
    return (parameters + (parameters + state) / s.dp) / (static_cast<double>(s.tp) * s.pp);
}

// Simulates split `s` on `plan` (laid out anew), and where it does not fit its memory savings: optimizer-state
// sharding (with dp > 1), selective recomputation, full recomputation, each recomputation with sharding too. Each
// costs time, so a split that fits does not need them, full recomputation is not tried where selective fits, and
// a saving that still does not fit is not simulated (its memory plan is cheap, a simulation is not). A pipeline
// that fits also tries the interleaved schedule with two chunks per device (a smaller bubble for twice the sends
// and a longer warm-up), where its micro-batches come in groups of pp.
void simulate_split(Plan& plan, const compiler::Strategy& s, const Topology& topology, std::vector<SimResult>& results) {
    compiler::lay_out(plan, s);
    const std::size_t first = results.size();
    results.push_back(simulate(plan, topology));
    if (!results.back().fits) {
        enum class Recompute { None, Selective, Full };
        bool selective_fits = false;
        for (const auto& [zero, recompute] :
             {std::pair{true, Recompute::None}, {false, Recompute::Selective}, {true, Recompute::Selective},
              {false, Recompute::Full}, {true, Recompute::Full}}) {
            if ((zero && s.dp == 1) || (recompute == Recompute::Full && selective_fits)) {
                continue;
            }
            compiler::Strategy saving = s;
            saving.zero = zero;
            saving.recompute = recompute != Recompute::None;
            saving.selective = recompute == Recompute::Selective;
            compiler::lay_out(plan, saving);
            if (all_fit(plan_memory(plan, topology.device))) {
                results.push_back(simulate(plan, topology));  // its verdict: a mesh's placement decides
                selective_fits = selective_fits || (recompute == Recompute::Selective && results.back().fits);
            }
        }
    }
    for (std::size_t k = first, end = results.size(); k < end; ++k) {
        compiler::Strategy interleaved = results[k].strategy;
        if (!results[k].fits || interleaved.pp < 2 || interleaved.micro_batches % interleaved.pp != 0) {
            continue;
        }
        interleaved.virtual_stages = 2;
        compiler::lay_out(plan, interleaved);
        if (all_fit(plan_memory(plan, topology.device))) {
            results.push_back(simulate(plan, topology));
        }
    }
}

}  // namespace

std::vector<SimResult> search_strategies(const std::string& model, std::int64_t global_batch,
                                         const Topology& topology, compiler::Precision precision,
                                         const autodiff::OptimizerConfig& optimizer, std::size_t bucket_bytes,
                                         double gradient_wire_bytes, std::size_t* skipped) {
    std::map<std::int64_t, Plan> plans;  // by micro-batch size: one graph build each
    std::vector<SimResult> results;
    std::vector<compiler::Strategy> hopeless;  // splits whose weights exceed a device: tried only if nothing fits
    int token_model = -1;  // whether the model reads tokens (sequence parallelism applies), once a plan tells
    std::optional<UsageError> first_refusal;  // why the first split was refused: the answer if every one is
    const double capacity = topology.device.memory_bytes + topology.device.local_bytes;
    auto try_split = [&](compiler::Strategy s, bool prune) {
        // Sequence parallelism costs no communication (an all-reduce's bytes, as a reduce-scatter and an
        // all-gather) and divides activations and their work: every tensor-parallel split of a token model uses it.
        if (s.tp > 1 && token_model < 0 && !plans.empty()) {
            token_model = compiler::token_count(plans.begin()->second.step.graph) > 0 ? 1 : 0;
        }
        s.sp = s.tp > 1 && token_model == 1;
        const std::int64_t micro = global_batch / (static_cast<std::int64_t>(s.dp) * s.micro_batches);
        try {
            auto it = plans.find(micro);
            if (it == plans.end()) {
                it = plans.emplace(micro, compiler::make_plan(model, global_batch, s, optimizer,
                                                              stage_cost(topology.device, precision), precision))
                         .first;
                it->second.gradient_wire_bytes = gradient_wire_bytes;
                compiler::bucket_gradients(it->second, bucket_bytes);
            }
            if (prune && capacity > 0 && least_weight_bytes(it->second, s) > capacity) {
                hopeless.push_back(s);
                return;
            }
            simulate_split(it->second, s, topology, results);
        } catch (const UsageError& refused) {
            if (!first_refusal) {
                first_refusal = refused;  // a split the model cannot take (more stages than ops)
            }
        }
    };
    for (const compiler::Strategy& s : candidate_splits(topology, global_batch)) {
        try_split(s, true);
    }
    if (std::none_of(results.begin(), results.end(), [](const SimResult& r) { return r.fits; })) {
        for (const compiler::Strategy& s : hopeless) {  // nothing fits: the fastest of all is the answer
            try_split(s, false);
        }
        hopeless.clear();
    }
    if (skipped != nullptr) {
        *skipped = hopeless.size();
    }
    if (results.empty() && first_refusal) {
        throw *first_refusal;  // a bad model spec is refused by every split: say why, not that none fits
    }
    std::stable_sort(results.begin(), results.end(), [](const SimResult& a, const SimResult& b) {
        return a.fits != b.fits ? a.fits : a.step_s < b.step_s;
    });
    return results;
}

}  // namespace dojo::sim
