// `dojo sim`: parse, compile the Plan, simulate, print (text or JSON).
#include "sim_command.h"

#include "data_path_report.h"
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "dojo/compiler/gradient_buckets.h"
#include "dojo/compiler/plan.h"
#include "dojo/frontend/model.h"
#include "dojo/machine/machine.h"
#include "dojo/machine/software.h"
#include "dojo/runtime/gradient_sync.h"
#include "dojo/sim/op_time.h"
#include "dojo/sim/search.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/trace.h"
#include "dojo/util/check.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"

namespace dojo::cli {
namespace {

using json = nlohmann::json;

struct SimOptions {
    std::string model;
    std::string machine;
    std::string software;  // a stack of machines/software; empty: the GPU kinds' defaults
    std::string dir = machine::default_machines_dir();
    std::int64_t batch = 0;
    std::string precision = "bf16";
    std::string strategy = "auto";
    std::string optimizer = "adamw";
    double bucket_mib = 8;
    std::string grad_compression = "none";
    bool json_output = false;
    int top = 5;
    std::string trace;  // a path: write the step as a Chrome / Perfetto trace there
    std::string video;  // the input pipeline of a camera-fed model (sim/data_path.h); empty: not reported
};

std::string seconds_text(double s) {
    if (s >= 1) {
        return fmt::format("{:.3f} s", s);
    }
    if (s >= 1e-3) {
        return fmt::format("{:.3f} ms", s * 1e3);
    }
    return fmt::format("{:.3f} us", s * 1e6);
}

std::string gb(double bytes) { return fmt::format("{:.3g} GB", bytes / 1e9); }

json result_json(const sim::SimResult& r) {
    json stages = json::array();
    for (const sim::StageTime& s : r.stages) {
        stages.push_back({{"stage", s.stage},
                          {"nodes", s.nodes},
                          {"forward_s", s.forward_s},
                          {"backward_s", s.backward_s},
                          {"tensor_comm_s", s.tensor_comm_s},
                          {"tensor_comm_total_s", s.tensor_comm_total_s},
                          {"optimizer_s", s.optimizer_s},
                          {"busy_s", s.busy_s},
                          {"grad_allreduce_s", s.grad_allreduce_s},
                          {"grad_allreduce_exposed_s", s.grad_allreduce_exposed_s},
                          {"recompute_s", s.recompute_s},
                          {"param_allgather_s", s.param_allgather_s},
                          {"param_allgather_exposed_s", s.param_allgather_exposed_s},
                          {"finish_s", s.finish_s},
                          {"memory",
                           {{"parameters_bytes", s.memory.parameters_bytes},
                            {"gradients_bytes", s.memory.gradients_bytes},
                            {"optimizer_bytes", s.memory.optimizer_bytes},
                            {"activations_bytes", s.memory.activations_bytes},
                            {"weights_level", s.memory.weights_level},
                            {"activations_level", s.memory.activations_level},
                            {"working_copy_bytes", s.memory.working_copy_bytes},
                            {"largest_tensor", s.memory.largest_tensor},
                            {"largest_tensor_bytes", s.memory.largest_tensor_bytes},
                            {"fits", s.memory.fits}}},
                          {"core_placement", s.core_placement},
                          {"core_fits", s.core_fits},
                          {"roofline",
                           {{"flop", s.roofline.flop},
                            {"memory_bytes", s.roofline.memory_bytes},
                            {"sram_bytes", s.roofline.sram_bytes},
                            {"compute_s", s.roofline.compute_s},
                            {"memory_s", s.roofline.memory_s},
                            {"link_s", s.roofline.link_s},
                            {"busy_s", s.roofline.busy_s},
                            {"bound", s.roofline.bound}}}});
    }
    json ops = json::array();
    for (const sim::OpClassTime& o : r.ops) {
        ops.push_back({{"op", o.op}, {"nodes", o.nodes}, {"seconds", o.seconds}, {"flops", o.flops},
                       {"memory_bound_nodes", o.memory_bound}});
    }
    json collectives = json::array();
    for (const sim::CollectiveReport& c : r.collectives) {
        collectives.push_back({{"what", c.what}, {"count", c.count}, {"bytes", c.bytes},
                               {"participants", c.participants}, {"algorithm", c.algorithm}, {"seconds", c.seconds}});
    }
    json critical = json::array();
    for (const sim::CriticalItem& c : r.critical_path) {
        critical.push_back({{"what", c.what}, {"seconds", c.seconds}, {"share", c.share}, {"why", c.why}});
    }
    return {{"model", r.model},
            {"machine", r.machine},
            {"software", r.software},
            {"device", r.device},
            {"precision", r.precision},
            {"strategy", r.strategy.to_string()},
            {"global_batch", r.global_batch},
            {"devices_used", r.devices_used},
            {"devices_total", r.devices_total},
            {"step_s", r.step_s},
            {"samples_per_s", r.samples_per_s},
            {"model_flops", r.model_flops},
            {"achieved_flops", r.achieved_flops},
            {"utilization", r.utilization},
            {"pipeline_bubble_s", r.pipeline_bubble_s},
            {"exposed_comm_s", r.exposed_comm_s},
            {"critical_stage", r.critical_stage},
            {"energy_j", r.energy_j},
            {"average_power_w", r.average_power_w},
            {"fits", r.fits},
            {"fit_report", r.fit_report},
            {"stages", stages},
            {"ops", ops},
            {"collectives", collectives},
            {"critical_path", critical},
            {"simulation_wall_s", r.simulation_wall_s}};
}

// `skipped`: splits the search left out because their weights alone exceed a device (search.h).
void print_text(const sim::SimResult& r, const std::vector<sim::SimResult>& others, int top, double wall_s,
                std::size_t skipped) {
    std::cout << fmt::format("{} on {} ({} x {} of {}), {}, batch {}, strategy {}\n", r.model,
                             r.software.empty() ? r.machine : r.machine + " with " + r.software,
                             r.devices_used, r.device, r.devices_total, r.precision, r.global_batch,
                             r.strategy.to_string());
    std::cout << fmt::format("  step time        {}   ({:.4g} samples/s)\n", seconds_text(r.step_s), r.samples_per_s);
    std::cout << fmt::format("  utilization      {:.1f}% of {} peak ({:.4g} PFLOP/s achieved, {:.4g} PFLOP per step)\n",
                             100 * r.utilization, r.precision, r.achieved_flops / 1e15, r.model_flops / 1e15);
    const sim::StageTime& c = r.stages[static_cast<std::size_t>(r.critical_stage)];
    const double mb = r.strategy.micro_batches;
    const std::string tensor_comm =
        c.tensor_comm_total_s > c.tensor_comm_s
            ? seconds_text(mb * c.tensor_comm_s) + " exposed (of " + seconds_text(mb * c.tensor_comm_total_s) + ")"
            : seconds_text(mb * c.tensor_comm_s);
    std::cout << fmt::format("  critical stage   {} of {}: compute {}, tensor-parallel comm {}, optimizer {}, "
                             "gradient all-reduce exposed {} (of {}), pipeline bubble {}\n",
                             r.critical_stage, r.stages.size(), seconds_text(mb * (c.forward_s + c.backward_s)),
                             tensor_comm, seconds_text(c.optimizer_s),
                             seconds_text(c.grad_allreduce_exposed_s), seconds_text(c.grad_allreduce_s),
                             seconds_text(r.pipeline_bubble_s));
    if (c.recompute_s > 0 || c.param_allgather_s > 0) {
        const std::string gather = c.param_allgather_exposed_s < c.param_allgather_s
                                       ? seconds_text(c.param_allgather_exposed_s) + " exposed (of " +
                                             seconds_text(c.param_allgather_s) + ")"
                                       : seconds_text(c.param_allgather_s);
        std::cout << fmt::format("                   of which recomputation {}; parameter all-gather after the "
                                 "update {}\n",
                                 seconds_text(mb * c.recompute_s), gather);
    }
    const sim::StageRoofline& roof = c.roofline;
    std::cout << fmt::format("  roofline         stage {}: {:.4g} TFLOP, {} from {}, {} from SRAM per step; at the "
                             "device's peaks alone: compute {}, memory {}, links {}; busy {}: {}-bound "
                             "(--json: every stage)\n",
                             r.critical_stage, roof.flop / 1e12, gb(roof.memory_bytes), c.memory.weights_level == "SRAM"
                                                                                            ? std::string("memory")
                                                                                            : c.memory.weights_level,
                             gb(roof.sram_bytes), seconds_text(roof.compute_s), seconds_text(roof.memory_s),
                             seconds_text(roof.link_s), seconds_text(roof.busy_s), roof.bound);
    std::cout << (r.critical_path.size() > 5 ? fmt::format("  critical path    the longest 5 of {} items (--json lists "
                                                           "them all)\n", r.critical_path.size())
                                             : std::string("  critical path\n"));
    for (std::size_t i = 0; i < r.critical_path.size() && i < 5; ++i) {
        const sim::CriticalItem& item = r.critical_path[i];
        std::cout << fmt::format("    {:5.1f}%  {:<44} {:>12}  {}\n", 100 * item.share, item.what,
                                 seconds_text(item.seconds), item.why);
    }
    std::cout << fmt::format("  energy           {:.4g} kJ per step ({:.4g} kW average)\n", r.energy_j / 1e3,
                             r.average_power_w / 1e3);
    std::cout << "  memory per device (stage: parameters + gradients + optimizer + activations = total, where)\n";
    for (const sim::StageTime& s : r.stages) {
        if (r.stages.size() > 6 && s.stage > 2 && s.stage + 3 < static_cast<int>(r.stages.size())) {
            if (s.stage == 3) {
                std::cout << "    ...\n";
            }
            continue;
        }
        std::cout << fmt::format("    {:>3}: {} + {} + {} + {} = {}, weights in {}, activations in {}{}\n", s.stage,
                                 gb(s.memory.parameters_bytes), gb(s.memory.gradients_bytes),
                                 gb(s.memory.optimizer_bytes), gb(s.memory.activations_bytes),
                                 gb(s.memory.total_bytes()),
                                 s.memory.working_copy_bytes > 0
                                     ? fmt::format("{} ({} copy in SRAM)", s.memory.weights_level,
                                                   gb(s.memory.working_copy_bytes))
                                     : s.memory.weights_level,
                                 s.memory.activations_level,
                                 s.memory.fits ? "" : "  DOES NOT FIT");
        if (!s.core_placement.empty()) {
            std::cout << fmt::format("         cores: {}{}\n", s.core_placement,
                                     s.core_fits ? "" : "  DOES NOT FIT (dojo plan --dump shows why)");
        }
    }
    std::cout << (r.fits ? "  fits             yes\n" : "  fits             NO: " + r.fit_report + "\n");
    std::cout << "  collectives (each)\n";
    constexpr std::size_t kListed = 8;  // a deep pipeline has a send per stage boundary: --json has them all
    for (std::size_t i = 0; i < r.collectives.size(); ++i) {
        if (i == kListed) {
            std::cout << fmt::format("    ... {} more (--json lists them)\n", r.collectives.size() - kListed);
            break;
        }
        const sim::CollectiveReport& col = r.collectives[i];
        std::cout << fmt::format("    {:<34} x{:<6} {:>10} over {:>5}, {:<8} {}\n", col.what, col.count, gb(col.bytes),
                                 col.participants, col.algorithm, seconds_text(col.seconds));
    }
    std::cout << "  ops on the busiest stage's device (per step)\n";
    for (std::size_t i = 0; i < r.ops.size() && i < 8; ++i) {
        const sim::OpClassTime& o = r.ops[i];
        std::cout << fmt::format("    {:<22} {:>6} nodes {:>12} {:>6} memory-bound\n", o.op, o.nodes,
                                 seconds_text(o.seconds), o.memory_bound);
    }
    if (!others.empty()) {
        std::cout << "  other strategies tried\n";
        for (std::size_t i = 0; i < others.size() && static_cast<int>(i) < top; ++i) {
            const sim::SimResult& o = others[i];
            std::cout << fmt::format("    {:<28} {:>12} {:>6.1f}% {}\n", o.strategy.to_string(), seconds_text(o.step_s),
                                     100 * o.utilization, o.fits ? "fits" : "does not fit");
        }
    }
    if (skipped > 0) {
        std::cout << fmt::format("  {} more split{} not simulated: {} parameters, gradients and optimizer state alone "
                                 "exceed a {}'s memory\n",
                                 skipped, skipped == 1 ? "" : "s", skipped == 1 ? "its" : "their", r.device);
    }
    std::cout << fmt::format("  (compiled and simulated in {:.2f} s)\n", wall_s);
}

// Writes the trace as util/files.h writes outputs: a failed run leaves no half file and replaces no device or link.
void write_trace(const sim::SimResult& r, const sim::Topology& topology, const std::string& path) {
    std::ostringstream out;
    sim::write_chrome_trace(r, topology, out);
    write_output_file(path, out.str(), "trace (--trace)");
}

void run(const SimOptions& o) {
    const auto started = std::chrono::steady_clock::now();
    machine::Machine m = machine::load_machine(o.machine, o.dir);
    if (!o.software.empty()) {
        machine::apply_software(m, machine::load_software(o.software, o.dir));
    }
    const sim::Topology topology = sim::derive_topology(m);
    if (o.batch < 1) {
        throw UsageError("--batch must be a positive number of samples per step, got " + std::to_string(o.batch));
    }
    if (o.top < 0) {
        throw UsageError("--top must be 0 or more (how many other strategies to list), got " + std::to_string(o.top));
    }
    if (!o.trace.empty()) {
        require_output_path(o.trace, "trace (--trace)");  // before the simulation, not after it
    }
    const autodiff::OptimizerConfig optimizer = autodiff::optimizer_named(o.optimizer);
    const std::size_t bucket_bytes = compiler::bucket_bytes_from_mib(o.bucket_mib);
    const auto wire_bytes =
        static_cast<double>(runtime::wire_bytes_per_element(runtime::parse_wire_format(o.grad_compression)));
    const compiler::Precision precision = compiler::parse_precision(o.precision);
    std::vector<sim::SimResult> results;
    std::size_t skipped = 0;
    if (o.strategy == "auto") {
        if (!o.json_output) {
            std::cerr << "dojo sim: trying strategies for " << o.model << " on " << m.name << "...\n";
        }
        results = sim::search_strategies(o.model, o.batch, topology, precision, optimizer, bucket_bytes, wire_bytes,
                                         &skipped);
        if (results.empty()) {
            throw UsageError("no strategy splits batch " + std::to_string(o.batch) + " of " + o.model + " over " +
                             m.name + "; try another batch or an explicit --strategy");
        }
    } else {
        const compiler::Strategy strategy = compiler::parse_strategy(o.strategy);
        compiler::Plan plan = compiler::make_plan(o.model, o.batch, strategy, optimizer,
                                                  sim::stage_cost(topology.device, precision), precision);
        plan.gradient_wire_bytes = wire_bytes;
        compiler::bucket_gradients(plan, bucket_bytes);
        results.push_back(sim::simulate(plan, topology));
    }
    if (!o.trace.empty()) {  // the chosen plan again, recording its timeline
        compiler::Plan plan = compiler::make_plan(o.model, o.batch, results.front().strategy, optimizer,
                                                  sim::stage_cost(topology.device, precision), precision);
        plan.gradient_wire_bytes = wire_bytes;
        compiler::bucket_gradients(plan, bucket_bytes);
        const sim::SimResult traced = sim::simulate(plan, topology, true);
        write_trace(traced, topology, o.trace);
        if (!o.json_output) {
            std::cerr << "dojo sim: wrote the trace of " << traced.strategy.to_string() << " to " << o.trace
                      << " (open it in ui.perfetto.dev or chrome://tracing)\n";
        }
    }
    for (const sim::SimResult& r : results) {  // bad input is refused before it gets here: a report never shows inf
        DOJO_CHECK(std::isfinite(r.step_s) && r.step_s > 0 && std::isfinite(r.utilization))
            << "simulating " << o.model << " with " << r.strategy.to_string() << " gave a step time of " << r.step_s
            << " s and a utilization of " << r.utilization;
    }
    const sim::SimResult& best = results.front();
    const std::vector<sim::SimResult> others(results.begin() + 1, results.end());
    const std::optional<sim::DataPathReport> path =
        o.video.empty() ? std::nullopt : std::optional(video_data_path(o.video, o.model, m, best));
    if (o.json_output) {
        json out = result_json(best);
        if (path) {
            out["data_path"] = data_path_json(*path);
        }
        json alternatives = json::array();
        for (const sim::SimResult& other : others) {
            alternatives.push_back({{"strategy", other.strategy.to_string()}, {"step_s", other.step_s},
                                    {"utilization", other.utilization}, {"fits", other.fits}});
        }
        out["alternatives"] = alternatives;
        out["splits_not_simulated"] = skipped;  // their weights alone exceed a device (--strategy auto)
        std::cout << out.dump(2) << "\n";
    } else {
        print_text(best, others, o.top,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), skipped);
        if (path) {
            print_data_path(*path);
        }
    }
}

}  // namespace

void add_sim_command(CLI::App& app) {
    auto options = std::make_shared<SimOptions>();
    CLI::App* sim = app.add_subcommand(
        "sim", "Compile one training step (forward, backward, optimizer) for a machine and simulate it: time, "
               "utilization, memory fit, energy, communication");
    sim->add_option("model", options->model, "an ONNX file or a catalog spec (e.g. resnet50, bert-large, "
                                             "gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200)")
        ->required();
    sim->add_option("--machine", options->machine, "machine preset, with parameters (dojo machine list): tile, "
                                                 "exapod, superpod-h100:nodes=64 ...")
        ->required();
    sim->add_option("--batch", options->batch, "global batch: samples per step over all replicas")->required();
    sim->add_option("--precision", options->precision, "fp32, bf16 or cfp8 (default bf16)");
    sim->add_option("--strategy", options->strategy,
                    "auto (try data/tensor/pipeline splits, and where one does not fit the memory savings below; "
                    "report the fastest that fits) or dp=N,tp=N,pp=N,mb=N (missing ones are 1; mb = micro-batches "
                    "per replica), optionally with vp=N (N model chunks per pipeline device: Megatron's interleaved "
                    "schedule; mb a multiple of pp), sp=1 (sequence parallelism: token activations split over tp), "
                    "zero=1 (shard the optimizer state over the dp replicas) and recompute=full (keep checkpoints, "
                    "recompute activations in the backward pass; also recompute=1) or recompute=selective (recompute "
                    "only attention's score tensors, Megatron's selective recomputation)");
    sim->add_option("--software", options->software,
                    "the software stack the GPUs run, from machines/software (e.g. megatron-lm-2021, nemo-te-2023) "
                    "or a .toml file: its modelled choices (fused bias gradients, tensor-parallel communication "
                    "overlapped with products, ...) replace the GPU kinds' defaults (docs/machines.md)");
    sim->add_option("--optimizer", options->optimizer, "adamw (default) or sgd");
    sim->add_option("--bucket-mib", options->bucket_mib,
                    "data parallel: gradient bucket size in MiB of FP32, as dojo train's (default 8)");
    sim->add_option("--grad-compression", options->grad_compression,
                    "data parallel: gradients on the wire as none (FP32, default), bf16 or cfp8, as dojo train's");
    sim->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    sim->add_option("--top", options->top, "with --strategy auto: how many other strategies to list (default 5)");
    sim->add_flag("--json", options->json_output, "print JSON (seconds, bytes, FLOP, joules, watts)");
    sim->add_option("--video", options->video,
                    "the model is fed camera video: report its input pipeline at the simulated rate (decode cores, "
                    "host-to-device and storage bandwidth, the bound); KEY=VALUE,... with cameras= (8), sequence= "
                    "(1), stored=WxH (1280x960), bitrate=N[Mbps] per camera (8Mbps), fps= (36)");
    sim->add_option("--trace", options->trace,
                    "write the step as a Chrome/Perfetto trace (JSON) to this file: zones, devices' compute and "
                    "communication streams, tasks, ops, buckets, sends, link counters");
    sim->callback([options] { run(*options); });
}

}  // namespace dojo::cli
