// Trace jobs timed by the simulator (sim_durations.h).
#include "dojo/service/sim_durations.h"

#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "dojo/compiler/plan.h"
#include "dojo/sim/simulate.h"
#include "dojo/util/error.h"

namespace dojo::service {

SimDurations durations_from_sim(std::vector<TraceJob>& jobs, const sim::Topology& topology,
                                const std::function<void(int, int)>& progress) {
    using Key = std::tuple<std::string, int, int>;  // model, devices, batch per device
    std::set<Key> wanted;
    for (const TraceJob& job : jobs) {
        if (job.model.empty()) {
            throw UsageError("trace job '" + job.id + "' does not say what it trains: --durations sim needs a model, " +
                             "samples and batch_per_device for every job (dojo cluster trace --models writes them)");
        }
        if (job.devices <= topology.device.count) {
            wanted.insert({job.model, job.devices, job.batch_per_device});
        }
    }
    std::map<Key, std::pair<double, bool>> step;  // seconds a step, whether it fits
    SimDurations out;
    for (const Key& key : wanted) {
        const auto& [model, devices, batch] = key;
        compiler::Strategy strategy;
        strategy.dp = devices;
        const compiler::Plan plan = compiler::make_plan(model, static_cast<std::int64_t>(batch) * devices, strategy,
                                                        autodiff::AdamWConfig{}, {}, compiler::Precision::Bf16);
        const sim::SimResult r = sim::simulate(plan, topology);
        step[key] = {r.step_s, r.fits};
        ++out.simulations;
        if (progress) {
            progress(out.simulations, static_cast<int>(wanted.size()));
        }
    }
    for (TraceJob& job : jobs) {
        const auto it = step.find({job.model, job.devices, job.batch_per_device});
        if (it == step.end()) {
            continue;  // larger than the machine
        }
        const double steps = std::ceil(job.samples / (static_cast<double>(job.batch_per_device) * job.devices));
        job.duration_s = std::max(1.0, steps) * it->second.first;
        ++out.jobs;
        out.not_fitting += it->second.second ? 0 : 1;
    }
    return out;
}

}  // namespace dojo::service
