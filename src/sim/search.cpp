// search_strategies: candidate splits, each simulated, with memory-saving and interleaved variants (search.h).
#include "dojo/sim/search.h"

#include <algorithm>
#include <map>
#include <optional>

#include "dojo/sim/memory_fit.h"
#include "dojo/sim/op_time.h"
#include "dojo/util/error.h"

namespace dojo::sim {

using compiler::Plan;

std::vector<SimResult> search_strategies(const std::string& model, std::int64_t global_batch,
                                         const Topology& topology, compiler::Precision precision,
                                         const autodiff::OptimizerConfig& optimizer, std::size_t bucket_bytes,
                                         double gradient_wire_bytes) {
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
    std::map<std::int64_t, Plan> plans;  // by micro-batch size: one graph build each
    std::vector<SimResult> results;
    int token_model = -1;  // whether the model reads tokens (sequence parallelism applies), once a plan tells
    std::optional<UsageError> first_refusal;  // why the first split was refused: the answer if every one is
    for (compiler::Strategy s : candidates) {
        // Sequence parallelism costs no communication (an all-reduce's bytes, as a reduce-scatter and an
        // all-gather) and divides activations and their work: every tensor-parallel split of a token model uses it.
        if (s.tp > 1 && token_model < 0 && !plans.empty()) {
            token_model = compiler::token_count(plans.begin()->second.step.graph) > 0 ? 1 : 0;
        }
        s.sp = s.tp > 1 && token_model == 1;
        const std::int64_t micro = global_batch / (static_cast<std::int64_t>(s.dp) * s.micro_batches);
        auto it = plans.find(micro);
        try {
            if (it == plans.end()) {
                it = plans.emplace(micro, compiler::make_plan(model, global_batch, s, optimizer,
                                                              stage_cost(topology.device, precision), precision))
                         .first;
                it->second.gradient_wire_bytes = gradient_wire_bytes;
                compiler::bucket_gradients(it->second, bucket_bytes);
            } else {
                compiler::lay_out(it->second, s);
            }
            const std::size_t first = results.size();
            results.push_back(simulate(it->second, topology));
            // A split that does not fit tries to save memory: optimizer-state sharding (with dp > 1), selective
            // recomputation, full recomputation, each recomputation with sharding too. Each costs time, so a split
            // that fits does not need them, full recomputation is not tried where selective fits, and a saving that
            // still does not fit is not simulated (its memory plan is cheap, a simulation is not).
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
                    compiler::lay_out(it->second, saving);
                    const std::vector<MemoryUse> memory = plan_memory(it->second, topology.device);
                    if (std::all_of(memory.begin(), memory.end(), [](const MemoryUse& m) { return m.fits; })) {
                        results.push_back(simulate(it->second, topology));  // its verdict: a mesh's placement
                        selective_fits = selective_fits || (recompute == Recompute::Selective && results.back().fits);
                    }
                }
            }
            // A pipeline that fits also tries the interleaved schedule with two chunks per device (a smaller
            // bubble for twice the sends and a longer warm-up), where its micro-batches come in groups of pp.
            for (std::size_t k = first, end = results.size(); k < end; ++k) {
                compiler::Strategy interleaved = results[k].strategy;
                if (!results[k].fits || interleaved.pp < 2 || interleaved.micro_batches % interleaved.pp != 0) {
                    continue;
                }
                interleaved.virtual_stages = 2;
                compiler::lay_out(it->second, interleaved);
                const std::vector<MemoryUse> memory = plan_memory(it->second, topology.device);
                if (std::all_of(memory.begin(), memory.end(), [](const MemoryUse& m) { return m.fits; })) {
                    results.push_back(simulate(it->second, topology));
                }
            }
        } catch (const UsageError& refused) {
            if (!first_refusal) {
                first_refusal = refused;
            }
            continue;  // a split the model cannot take (more stages than ops)
        }
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
