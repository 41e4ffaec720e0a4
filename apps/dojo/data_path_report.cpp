// The data path's report (data_path_report.h).
#include "data_path_report.h"

#include <fmt/format.h>

#include <iostream>

#include "dojo/frontend/model.h"

namespace dojo::cli {

sim::DataPathReport video_data_path(const std::string& video, const std::string& model,
                                    const machine::Machine& machine, const sim::SimResult& result) {
    sim::VideoInput input = sim::VideoInput::parse(video);
    const frontend::Model loaded = frontend::load_model_as_declared(model, 1);
    input.sample_bytes = static_cast<double>(loaded.graph.type(loaded.input).shape.numel()) *
                         (result.precision == "fp32" ? 4.0 : 2.0);
    return sim::data_path(machine, result.samples_per_s, input);
}

nlohmann::json data_path_json(const sim::DataPathReport& r) {
    using nlohmann::json;
    json resources = json::array();
    for (const sim::Resource& resource : r.resources) {
        json entry{{"name", resource.name}};
        entry["needed"] = resource.needed ? json(*resource.needed) : json(nullptr);
        entry["capacity"] = resource.capacity ? json(*resource.capacity) : json(nullptr);
        entry["samples_per_s"] = resource.samples_per_s ? json(*resource.samples_per_s) : json(nullptr);
        resources.push_back(entry);
    }
    return {{"frames_per_s", r.frames_per_s}, {"resources", resources}, {"bound", r.bound},
            {"samples_per_s", r.samples_per_s}};
}

void print_data_path(const sim::DataPathReport& r) {
    std::cout << fmt::format("  input pipeline: {:.4g} camera frames/s at the compute's rate\n", r.frames_per_s);
    const auto units = [](const sim::Resource& resource, double v) {
        return resource.name == "decode" ? fmt::format("{:.4g} cores", v) : fmt::format("{:.4g} GB/s", v / 1e9);
    };
    for (const sim::Resource& resource : r.resources) {
        if (resource.name == "compute") {
            std::cout << fmt::format("    {:<15} {:>12.4g} samples/s\n", resource.name, *resource.samples_per_s);
            continue;
        }
        std::cout << fmt::format("    {:<15} {:>12} samples/s  needs {} of {}\n", resource.name,
                                 resource.samples_per_s ? fmt::format("{:.4g}", *resource.samples_per_s) : "unknown",
                                 resource.needed ? units(resource, *resource.needed) : "unknown",
                                 resource.capacity ? units(resource, *resource.capacity) : "(not described)");
    }
    std::cout << fmt::format("  bound: {} ({:.4g} samples/s)\n", r.bound, r.samples_per_s);
}

}  // namespace dojo::cli
