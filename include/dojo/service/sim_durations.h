/** \file
 * Trace jobs' durations from the simulator (`dojo cluster replay --durations sim`): a job that says what it trains
 * (trace.h: model, samples, batch_per_device) runs for ceil(samples / (batch_per_device x devices)) steps of that
 * model on its devices of the machine, data parallel (`dojo sim MODEL --machine M --batch B*N --strategy dp=N`, AdamW,
 * bf16), each step as long as the simulator says. Steps are simulated once per (model, devices, batch).
 */
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "dojo/service/trace.h"
#include "dojo/sim/topology.h"

namespace dojo::service {

struct SimDurations {
    int jobs = 0;         ///< jobs whose duration now comes from the simulator
    int simulations = 0;  ///< distinct (model, devices, batch) simulated
    int not_fitting = 0;  ///< jobs whose plan does not fit the devices' memory (timed all the same)
};

/// Replaces every job's duration by the simulated one on `topology`'s machine. UsageError naming the job when one has
/// no model (every job needs one) or its model is unknown; jobs larger than the machine keep theirs (the replay
/// leaves them out). `progress` (may be empty) is called after each simulation with (done, total).
SimDurations durations_from_sim(std::vector<TraceJob>& jobs, const sim::Topology& topology,
                                const std::function<void(int, int)>& progress = {});

}  // namespace dojo::service
