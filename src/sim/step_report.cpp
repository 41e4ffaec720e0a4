// The step's fit report and energy (step_report.h).
#include "step_report.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "report_text.h"

namespace dojo::sim {
namespace {

std::string others_short(std::size_t short_stages, std::size_t stages) {
    if (short_stages <= 1) {
        return {};
    }
    return "; " + std::to_string(short_stages - 1) + " other stage" + (short_stages > 2 ? "s" : "") + " of " +
           std::to_string(stages) + " short by less";
}

void report_core_fit(const compiler::SpatialPlacement& placement, SimResult& r) {
    const compiler::StagePlacement* first_short = nullptr;
    std::size_t short_core_stages = 0;
    for (const compiler::StagePlacement& sp : placement.stages) {
        StageTime& stage = r.stages[static_cast<std::size_t>(sp.stage)];
        stage.core_fits = sp.fits;
        stage.core_placement = !sp.fits    ? "no core layout fits"
                               : sp.temporal ? std::to_string(sp.layers.size()) + " layers in turn on all cores, " +
                                                   sp.residency
                                             : std::to_string(sp.layers.size()) + " layers on " +
                                                   std::to_string(sp.regions.size()) + " rectangles of cores, " +
                                                   sp.residency;
        if (!sp.fits) {
            ++short_core_stages;
            first_short = first_short == nullptr ? &sp : first_short;
        }
    }
    if (first_short != nullptr && r.fits) {
        r.fits = false;
        r.fit_report = first_short->report;
        if (short_core_stages > 1) {
            r.fit_report += "; " + std::to_string(short_core_stages - 1) + " other stage" +
                            (short_core_stages > 2 ? "s" : "") + " do not fit either";
        }
    }
}

}  // namespace

void report_fit(const Device& device, const compiler::SpatialPlacement& placement, SimResult& r) {
    const auto capacity_of = [&](const StageTime& stage) {
        return device.memory_bytes + (stage.memory.activations_level == "SRAM" ? 0 : device.local_bytes);
    };
    const auto needed_by = [](const StageTime& stage) {
        return stage.memory.activations_level == "SRAM" ? stage.memory.total_bytes() - stage.memory.activations_bytes
                                                         : stage.memory.total_bytes();
    };
    const StageTime* worst = nullptr;
    std::size_t short_stages = 0;
    for (const StageTime& stage : r.stages) {
        if (!stage.memory.fits) {
            ++short_stages;
            if (worst == nullptr || needed_by(stage) - capacity_of(stage) > needed_by(*worst) - capacity_of(*worst)) {
                worst = &stage;
            }
        }
    }
    if (worst != nullptr) {
        r.fits = false;
        const double needed = needed_by(*worst), capacity = capacity_of(*worst);
        r.fit_report = "stage " + std::to_string(worst->stage) + ": needs " + bytes_text(needed) + " of " +
                       (device.local_bytes > 0 ? "SRAM + " + device.memory_name + " share" : device.memory_name) +
                       " per " + device.kind + " but has " + bytes_text(capacity) + " (short by " +
                       bytes_text(needed - capacity) + "); largest tensor: " + worst->memory.largest_tensor + " (" +
                       bytes_text(worst->memory.largest_tensor_bytes) + ")" +
                       others_short(short_stages, r.stages.size());
    }
    if (!placement.stages.empty()) {
        report_core_fit(placement, r);
    }
}

double step_energy_j(const Topology& topology, const compiler::Strategy& st, const SimResult& r) {
    const Device& device = topology.device;
    const double idle = device.power_w * device.idle_power_fraction;
    double device_energy = static_cast<double>(device.count) * idle * r.step_s;
    for (const StageTime& stage : r.stages) {
        device_energy += static_cast<double>(st.tp) * st.dp * (device.power_w - idle) * stage.busy_s;
    }
    const double rest_w = std::max(0.0, topology.machine_power_w - static_cast<double>(device.count) * device.power_w);
    return device_energy + rest_w * r.step_s;
}

}  // namespace dojo::sim
