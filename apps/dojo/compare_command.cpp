// `dojo compare`: one model, several machines, side by side with GPU-equivalents (compare_command.h).
#include "compare_command.h"

#include "data_path_report.h"
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"
#include "dojo/machine/software.h"
#include "dojo/sim/search.h"
#include "dojo/sim/simulate.h"
#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

struct CompareOptions {
    std::string model;
    std::string machines;
    std::string dir = machine::default_machines_dir();
    std::string software;  // a stack of machines/software every GPU runs; empty: the GPU kinds' defaults
    std::int64_t batch = 0;
    std::string precision = "bf16";
    std::string optimizer = "adamw";
    bool json_output = false;
    std::string video;  // the model is fed camera video (sim/data_path.h); empty: no input pipeline
};

struct Row {
    std::string spec;     // as the user wrote it
    sim::SimResult best;  // the fastest fitting strategy (the fastest of all when none fits)
    double a100 = 0, h100 = 0;
    std::optional<sim::DataPathReport> path;  // with --video
    double a100_delivered = 0, h100_delivered = 0;  // with --video: the rates the input pipelines let through
};

// A machine's simulated best and, with --video, its input pipeline.
struct Measured {
    sim::SimResult best;
    std::optional<sim::DataPathReport> path;
    double delivered() const { return path ? path->samples_per_s : best.samples_per_s; }
};

Measured measure(const CompareOptions& o, const std::string& spec, const autodiff::OptimizerConfig& optimizer);

// `spec` loaded, with --software's stack on its GPUs.
machine::Machine load(const CompareOptions& o, const std::string& spec) {
    machine::Machine m = machine::load_machine(spec, o.dir);
    if (!o.software.empty()) {
        machine::apply_software(m, machine::load_software(o.software, o.dir));
    }
    return m;
}

// The fastest plan `dojo sim --strategy auto` picks for `spec`; UsageError when no strategy splits the batch.
sim::SimResult fastest(const CompareOptions& o, const std::string& spec, const autodiff::OptimizerConfig& optimizer) {
    const sim::Topology topology = sim::derive_topology(load(o, spec));
    std::vector<sim::SimResult> results = sim::search_strategies(o.model, o.batch, topology, compiler::parse_precision(o.precision), optimizer);
    if (results.empty()) {
        throw UsageError("no strategy splits batch " + std::to_string(o.batch) + " of " + o.model + " over " + spec +
                         "; try another batch");
    }
    return std::move(results.front());
}

Measured measure(const CompareOptions& o, const std::string& spec, const autodiff::OptimizerConfig& optimizer) {
    Measured m{fastest(o, spec, optimizer), std::nullopt};
    if (!o.video.empty()) {
        m.path = video_data_path(o.video, o.model, load(o, spec), m.best);
    }
    return m;
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

// One GPU's share of a DGX's simulated rate (and, with --video, of the rate its input pipeline lets through).
struct Reference {
    Measured node;
    double per_gpu() const { return node.best.samples_per_s / static_cast<double>(node.best.devices_used); }
    double per_gpu_delivered() const { return node.delivered() / static_cast<double>(node.best.devices_used); }
};

void print_json(const CompareOptions& o, const std::vector<Row>& rows, const Reference& a100, const Reference& h100) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
        const sim::SimResult& b = r.best;
        nlohmann::json row{{"machine", r.spec},
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
                           {"h100_equivalents", r.h100}};
        if (r.path) {
            row["data_path"] = data_path_json(*r.path);
            row["a100_equivalents_delivered"] = r.a100_delivered;
            row["h100_equivalents_delivered"] = r.h100_delivered;
        }
        out.push_back(row);
    }
    nlohmann::json report{{"model", o.model},
                          {"global_batch", o.batch},
                          {"precision", o.precision},
                          {"software", o.software},
                          {"machines", out},
                          {"a100_samples_per_s_each", a100.per_gpu()},
                          {"h100_samples_per_s_each", h100.per_gpu()},
                          {"reference_nodes_fit", a100.node.best.fits && h100.node.best.fits}};
    if (!o.video.empty()) {
        report["video"] = o.video;
        report["a100_delivered_samples_per_s_each"] = a100.per_gpu_delivered();
        report["h100_delivered_samples_per_s_each"] = h100.per_gpu_delivered();
    }
    std::cout << report.dump(2) << "\n";
}

void print_text(const CompareOptions& o, const std::vector<Row>& rows, const Reference& a100, const Reference& h100) {
    std::cout << fmt::format("{}, batch {}, {}{}: the fastest fitting strategy on each machine (the fastest of all "
                             "where none fits)\n",
                             o.model, o.batch, o.precision,
                             o.software.empty() ? "" : ", GPUs running " + o.software);
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
                             a100.per_gpu(), h100.per_gpu(), o.batch);
    if (!a100.node.best.fits || !h100.node.best.fits) {
        std::cout << "  note: one DGX does not hold this model's training state; its step is timed as if it did, so "
                     "the GPU-equivalents are a bound, not a plan\n";
    }
}

// With --video: each machine's input pipeline at its simulated rate, the resource that bounds it, and the
// GPU-equivalents of the rates the pipelines let through (a DGX's own hosts decoding for its GPUs).
void print_data_paths(const CompareOptions& o, const std::vector<Row>& rows, const Reference& a100,
                      const Reference& h100) {
    std::cout << fmt::format("\ninput pipeline (--video {}): what each machine's rate asks of its hosts and storage\n",
                             o.video.empty() ? "defaults" : o.video);
    std::cout << fmt::format("{:<24} {:>12} {:>22} {:>22} {:>20} {:<15} {:>12} {:>9} {:>9}\n", "machine",
                             "frames/s", "decode cores (have)", "host->device GB/s", "storage GB/s", "bound",
                             "delivered/s", "A100-eq", "H100-eq");
    const auto need = [](const sim::DataPathReport& p, const std::string& name, double scale) {
        for (const sim::Resource& r : p.resources) {
            if (r.name == name) {
                return fmt::format("{} ({})", r.needed ? fmt::format("{:.3g}", *r.needed / scale) : "?",
                                   r.capacity ? fmt::format("{:.3g}", *r.capacity / scale) : "?");
            }
        }
        return std::string("-");
    };
    for (const Row& r : rows) {
        const sim::DataPathReport& p = *r.path;
        std::cout << fmt::format("{:<24} {:>12.4g} {:>22} {:>22} {:>20} {:<15} {:>12.4g} {:>9.4g} {:>9.4g}\n", r.spec,
                                 p.frames_per_s, need(p, "decode", 1), need(p, "host-to-device", 1e9),
                                 need(p, "storage", 1e9), p.bound, p.samples_per_s, r.a100_delivered,
                                 r.h100_delivered);
    }
    std::cout << fmt::format("delivered GPU-equivalents: over one GPU's share of what a DGX A100 ({:.4g} samples/s each, "
                             "bound: {}) or DGX H100 ({:.4g}, bound: {}) delivers with its own hosts decoding\n",
                             a100.per_gpu_delivered(), a100.node.path->bound, h100.per_gpu_delivered(),
                             h100.node.path->bound);
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
    if (!o.video.empty()) {
        sim::VideoInput::parse(o.video);  // refused now, not after the simulations
    }
    const autodiff::OptimizerConfig optimizer = autodiff::optimizer_named(o.optimizer);
    std::vector<Row> rows;
    for (const std::string& spec : specs) {
        if (!o.json_output) {
            std::cerr << fmt::format("dojo compare: {} on {} ({}/{})\n", o.model, spec, rows.size() + 1,
                                     specs.size() + 2);
        }
        Measured m = measure(o, spec, optimizer);
        rows.push_back({spec, std::move(m.best), 0, 0, std::move(m.path)});
    }
    if (!o.json_output) {
        std::cerr << "dojo compare: one DGX A100 and one DGX H100 for GPU-equivalents\n";
    }
    const Reference a100{measure(o, "dgx-a100", optimizer)}, h100{measure(o, "dgx-h100", optimizer)};
    for (Row& r : rows) {
        r.a100 = r.best.samples_per_s / a100.per_gpu();
        r.h100 = r.best.samples_per_s / h100.per_gpu();
        if (r.path) {
            r.a100_delivered = r.path->samples_per_s / a100.per_gpu_delivered();
            r.h100_delivered = r.path->samples_per_s / h100.per_gpu_delivered();
        }
    }
    if (o.json_output) {
        print_json(o, rows, a100, h100);
        return;
    }
    print_text(o, rows, a100, h100);
    if (!o.video.empty()) {
        print_data_paths(o, rows, a100, h100);
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
    compare->add_option("--software", options->software,
                        "the software stack every GPU runs, the reference A100 and H100 included (machines/software, "
                        "e.g. nemo-te-2023; dojo sim --help)");
    compare->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    compare->add_option("--video", options->video,
                        "the model is fed camera video: also report each machine's input pipeline (decode cores, "
                        "host-to-device and storage bandwidth, the bound) and the GPU-equivalents of the rates the "
                        "pipelines deliver; KEY=VALUE,... as dojo sim --video: cameras= (8), sequence= (1), "
                        "stored=WxH (1280x960), bitrate=N[Mbps] per camera (8Mbps), fps= (36)");
    compare->add_flag("--json", options->json_output, "print JSON (seconds, samples/s, watts, joules)");
    compare->callback([options] { run(*options); });
}

}  // namespace dojo::cli
