// `dojo compare`: one model, several machines, side by side with GPU-equivalents (compare_command.h).
#include "compare_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"
#include "dojo/sim/search.h"
#include "dojo/sim/simulate.h"
#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

struct CompareOptions {
    std::string model;
    std::string machines;
    std::string dir = machine::default_machines_dir();
    std::int64_t batch = 0;
    std::string precision = "bf16";
    std::string optimizer = "adamw";
    bool json_output = false;
};

struct Row {
    std::string spec;     // as the user wrote it
    sim::SimResult best;  // the fastest fitting strategy (the fastest of all when none fits)
    double a100 = 0, h100 = 0;
};

// The fastest plan `dojo sim --strategy auto` picks for `spec`; UsageError when no strategy splits the batch.
sim::SimResult fastest(const CompareOptions& o, const std::string& spec, const autodiff::OptimizerConfig& optimizer) {
    const sim::Topology topology = sim::derive_topology(machine::load_machine(spec, o.dir));
    std::vector<sim::SimResult> results = sim::search_strategies(o.model, o.batch, topology, compiler::parse_precision(o.precision), optimizer);
    if (results.empty()) {
        throw UsageError("no strategy splits batch " + std::to_string(o.batch) + " of " + o.model + " over " + spec +
                         "; try another batch");
    }
    return std::move(results.front());
}

// "tile,superpod-h100:nodes=4,pods=2,dgx-a100" -> its machine specs: a piece with '=' but no ':' is another
// parameter of the spec before it.
std::vector<std::string> machine_specs(const std::string& list) {
    std::vector<std::string> specs;
    std::size_t start = 0;
    while (start <= list.size()) {
        const std::size_t end = std::min(list.find(',', start), list.size());
        const std::string piece = list.substr(start, end - start);
        const bool parameter = piece.find('=') != std::string::npos && piece.find(':') == std::string::npos;
        if (parameter && !specs.empty()) {
            specs.back() += "," + piece;
        } else {
            specs.push_back(piece);
        }
        start = end + 1;
    }
    return specs;
}

std::string seconds_text(double s) {
    return s >= 1 ? fmt::format("{:.3f} s", s) : s >= 1e-3 ? fmt::format("{:.2f} ms", s * 1e3)
                                                        : fmt::format("{:.1f} us", s * 1e6);
}

void run(const CompareOptions& o) {
    if (o.batch < 1) {
        throw UsageError("--batch must be a positive number of samples per step, got " + std::to_string(o.batch));
    }
    const std::vector<std::string> specs = machine_specs(o.machines);
    if (specs.empty() || std::any_of(specs.begin(), specs.end(), [](const std::string& s) { return s.empty(); })) {
        throw UsageError("--machines needs a comma-separated list of presets, e.g. tile,dgx-a100,dgx-h100 "
                         "(dojo machine list)");
    }
    const autodiff::OptimizerConfig optimizer = autodiff::optimizer_named(o.optimizer);
    std::vector<Row> rows;
    for (const std::string& spec : specs) {
        if (!o.json_output) {
            std::cerr << fmt::format("dojo compare: {} on {} ({}/{})\n", o.model, spec, rows.size() + 1,
                                     specs.size() + 2);
        }
        rows.push_back({spec, fastest(o, spec, optimizer)});
    }
    if (!o.json_output) {
        std::cerr << "dojo compare: one DGX A100 and one DGX H100 for GPU-equivalents\n";
    }
    const sim::SimResult a100 = fastest(o, "dgx-a100", optimizer);
    const sim::SimResult h100 = fastest(o, "dgx-h100", optimizer);
    const double per_a100 = a100.samples_per_s / static_cast<double>(a100.devices_used);
    const double per_h100 = h100.samples_per_s / static_cast<double>(h100.devices_used);
    for (Row& r : rows) {
        r.a100 = r.best.samples_per_s / per_a100;
        r.h100 = r.best.samples_per_s / per_h100;
    }
    if (o.json_output) {
        nlohmann::json out = nlohmann::json::array();
        for (const Row& r : rows) {
            const sim::SimResult& b = r.best;
            out.push_back({{"machine", r.spec},
                           {"device", b.device},
                           {"devices_used", b.devices_used},
                           {"devices_total", b.devices_total},
                           {"strategy", b.strategy.to_string()},
                           {"step_s", b.step_s},
                           {"samples_per_s", b.samples_per_s},
                           {"utilization", b.utilization},
                           {"average_power_w", b.average_power_w},
                           {"energy_per_sample_j", b.energy_j / static_cast<double>(b.global_batch)},
                           {"fits", b.fits},
                           {"a100_equivalents", r.a100},
                           {"h100_equivalents", r.h100}});
        }
        std::cout << nlohmann::json{{"model", o.model},
                                    {"global_batch", o.batch},
                                    {"precision", o.precision},
                                    {"machines", out},
                                    {"a100_samples_per_s_each", per_a100},
                                    {"h100_samples_per_s_each", per_h100},
                                    {"reference_nodes_fit", a100.fits && h100.fits}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::cout << fmt::format("{}, batch {}, {}: the fastest fitting strategy on each machine (the fastest of all where none fits)\n", o.model, o.batch,
                             o.precision);
    std::cout << fmt::format("{:<24} {:>11} {:<26} {:>11} {:>12} {:>6} {:>9} {:>11} {:<5} {:>9} {:>9}\n",
                             "machine", "devices", "strategy", "step", "samples/s", "MFU", "power", "J/sample",
                             "fits", "A100-eq", "H100-eq");
    for (const Row& r : rows) {
        const sim::SimResult& b = r.best;
        std::cout << fmt::format("{:<24} {:>11} {:<26} {:>11} {:>12.4g} {:>5.1f}% {:>6.3g} kW {:>11.4g} {:<5} {:>9.4g} "
                                 "{:>9.4g}\n",
                                 r.spec, fmt::format("{} {}", b.devices_used, b.device), b.strategy.to_string(),
                                 seconds_text(b.step_s), b.samples_per_s, 100 * b.utilization,
                                 b.average_power_w / 1e3, b.energy_j / static_cast<double>(b.global_batch),
                                 b.fits ? "yes" : "NO", r.a100, r.h100);
    }
    std::cout << fmt::format("GPU-equivalents: samples/s over one GPU's share of a DGX A100 ({:.4g} samples/s each) "
                             "or DGX H100 ({:.4g}) at batch {}, scaled linearly (no inter-node cost: the fewest GPUs "
                             "that could match)\n",
                             per_a100, per_h100, o.batch);
    if (!a100.fits || !h100.fits) {
        std::cout << "  note: one DGX does not hold this model's training state; its step is timed as if it did, so "
                     "the GPU-equivalents are a bound, not a plan\n";
    }
}

}  // namespace

void add_compare_command(CLI::App& app) {
    auto options = std::make_shared<CompareOptions>();
    CLI::App* compare = app.add_subcommand(
        "compare", "Simulate one training step on several machines side by side, with how many A100s and H100s "
                   "deliver each one's throughput (GPU-equivalents)");
    compare->add_option("model", options->model, "an ONNX file or a catalog spec (resnet50, bert-large, gpt:...)")
        ->required();
    compare->add_option("--machines", options->machines,
                        "comma-separated machine presets with parameters, e.g. tile,exapod,superpod-h100:nodes=16")
        ->required();
    compare->add_option("--batch", options->batch, "global batch: samples per step over all replicas")->required();
    compare->add_option("--precision", options->precision, "fp32, bf16 or cfp8 (default bf16)");
    compare->add_option("--optimizer", options->optimizer, "adamw (default) or sgd");
    compare->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    compare->add_flag("--json", options->json_output, "print JSON (seconds, samples/s, watts, joules)");
    compare->callback([options] { run(*options); });
}

}  // namespace dojo::cli
