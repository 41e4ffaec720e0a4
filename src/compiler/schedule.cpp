// schedule (schedule.h): the pipeline devices' task orders, 1F1B or interleaved.
#include "dojo/compiler/schedule.h"

#include <algorithm>

#include "dojo/util/error.h"

namespace dojo::compiler {

std::vector<std::vector<PipelineTask>> pipeline_schedule(const Strategy& strategy) {
    const int pp = strategy.pp, m = strategy.micro_batches, vp = strategy.virtual_stages;
    if (pp < 1 || m < 1 || vp < 1) {
        throw UsageError("pipeline schedule: pp, mb and vp must be at least 1, got " + strategy.to_string());
    }
    if (vp > 1 && m % pp != 0) {
        throw UsageError("pipeline schedule: the interleaved schedule (vp=" + std::to_string(vp) + ") runs micro-batches "
                         "in groups of pp=" + std::to_string(pp) + "; mb=" + std::to_string(m) + " is not a multiple");
    }
    std::vector<std::vector<PipelineTask>> order(static_cast<std::size_t>(pp));
    for (int s = 0; s < pp; ++s) {
        std::vector<PipelineTask>& list = order[static_cast<std::size_t>(s)];
        if (vp == 1) {
            const int warmup = std::min(pp - 1 - s, m);
            for (int i = 0; i < warmup; ++i) {
                list.push_back({false, s, i});
            }
            for (int i = 0; i + warmup < m; ++i) {
                list.push_back({false, s, warmup + i});
                list.push_back({true, s, i});
            }
            for (int i = m - warmup; i < m; ++i) {
                list.push_back({true, s, i});
            }
            continue;
        }
        const int total = m * vp;
        const int warmup = std::min((pp - s - 1) * 2 + (vp - 1) * pp, total);
        auto task = [&](bool backward, int j) {
            const int in_group = j % (pp * vp);
            const int c = backward ? vp - 1 - in_group / pp : in_group / pp;
            list.push_back({backward, c * pp + s, j / (pp * vp) * pp + j % pp});
        };
        for (int j = 0; j < warmup; ++j) {
            task(false, j);
        }
        for (int j = 0; j + warmup < total; ++j) {
            task(false, j + warmup);
            task(true, j);
        }
        for (int j = total - warmup; j < total; ++j) {
            task(true, j);
        }
    }
    return order;
}

std::string dump_schedule(const Strategy& strategy) {
    const std::vector<std::vector<PipelineTask>> order = pipeline_schedule(strategy);
    std::string out = std::string(strategy.virtual_stages > 1 ? "interleaved 1F1B" : "1F1B") + " schedule, " +
                      std::to_string(strategy.pp) + " device(s) x " + std::to_string(strategy.virtual_stages) +
                      " chunk(s), " + std::to_string(strategy.micro_batches) +
                      " micro-batch(es) (F/B chunk.micro-batch)\n";
    for (std::size_t s = 0; s < order.size(); ++s) {
        out += "  device " + std::to_string(s) + ":";
        for (const PipelineTask& t : order[s]) {
            out += std::string(" ") + (t.backward ? "B" : "F") + std::to_string(t.chunk) + "." + std::to_string(t.micro);
        }
        out += "\n";
    }
    return out;
}

}  // namespace dojo::compiler
