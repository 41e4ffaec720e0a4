// `dojo plan`: compile the Plan for a machine and show its stages and the spatial placement of their layers.
#include "plan_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "dojo/compiler/dump.h"
#include "dojo/compiler/place_spatial.h"
#include "dojo/compiler/plan.h"
#include "dojo/machine/machine.h"
#include "dojo/proof/plan_check.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/trainer.h"
#include "dojo/sim/op_time.h"
#include "dojo/sim/search.h"
#include "dojo/sim/simulate.h"
#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

using json = nlohmann::json;

struct PlanOptions {
    std::string model;
    std::string machine;
    std::string dir = machine::default_machines_dir();
    std::int64_t batch = 0;
    std::string precision = "bf16";
    std::string strategy = "auto";
    std::string optimizer = "adamw";
    std::string layout = "auto";
    bool layout_given = false;  // --layout on the command line (a machine without a core mesh refuses it)
    std::string dump_passes;  // comma-separated pass names, or "all"
    bool dump = false;
    bool verify = false;
    bool json_output = false;
};

json placement_json(const compiler::SpatialPlacement& p) {
    json stages = json::array();
    for (const compiler::StagePlacement& s : p.stages) {
        json regions = json::array();
        for (const compiler::Region& r : s.regions) {
            regions.push_back({{"x", r.x}, {"y", r.y}, {"width", r.width}, {"height", r.height}, {"cores", r.cores},
                               {"layers", r.layers}, {"bytes_per_core", r.bytes_per_core},
                               {"flops_per_core", r.flops_per_core}});
        }
        json layers = json::array();
        for (const compiler::PlacedLayer& l : s.layers) {
            json forward = json::array();
            for (const ir::NodeId id : l.forward) {
                forward.push_back(id.index);
            }
            layers.push_back({{"name", l.name}, {"region", l.region}, {"nodes", l.nodes}, {"forward_nodes", forward},
                              {"flops", l.flops}, {"static_bytes", l.static_bytes},
                              {"activation_bytes", l.activation_bytes}, {"working_bytes", l.working_bytes},
                              {"stream_bytes_per_step", l.stream_bytes_per_step}});
        }
        stages.push_back({{"stage", s.stage}, {"fits", s.fits}, {"report", s.report}, {"residency", s.residency},
                          {"weight_panels", s.weight_panels}, {"balance", s.balance},
                          {"mean_hops", s.mean_hops}, {"stream_bytes_per_step", s.stream_bytes_per_step},
                          {"stream_s", s.stream_s}, {"layers", layers}, {"regions", regions}});
    }
    const compiler::CoreMesh& m = p.mesh;
    return {{"mesh", {{"chip", m.chip}, {"columns", m.columns}, {"rows", m.rows}, {"working_cores", m.working_cores},
                      {"sram_bytes_per_core", m.sram_bytes_per_core}, {"hbm_bytes", m.hbm_bytes},
                      {"hbm_bandwidth", m.hbm_bandwidth}}},
            {"fits", p.fits()},
            {"stages", stages}};
}

void print_check(const std::optional<proof::PlanCheck>& checked) {
    if (checked) {
        std::cout << fmt::format("  functional check: the partitioned step ({}{} transfers, {:.3g} MB; {} all-reduces, "
                                 "{:.3g} MB per device; {} parameter all-gathers) {} the whole step: {}; loss {:.9g} "
                                 "vs {:.9g} ({:.2f} s)\n",
                                 checked->interleaved ? fmt::format("{} chunks in the interleaved order; ",
                                                                    checked->outcome.pipeline_chunks)
                                                      : std::string(),
                                 checked->outcome.transfers, checked->outcome.transfer_bytes / 1e6,
                                 checked->outcome.all_reduces, checked->outcome.all_reduce_bytes / 1e6,
                                 checked->outcome.all_gathers,
                                 checked->against_whole.identical ? "equals" : "matches",
                                 checked->against_whole.identical ? "every parameter bit for bit"
                                                    : fmt::format("largest relative difference {:.3g}",
                                                                  checked->against_whole.largest_relative),
                                 checked->loss_partitioned, checked->loss_whole, checked->seconds);
        if (const auto& s = checked->spatial; s && !s->not_run.empty()) {
            std::cout << "  spatial check: not run: " << s->not_run << "\n";
        } else if (s) {
            std::cout << fmt::format("  spatial check: layer by layer on the placement's rectangles ({} layers, each "
                                     "micro-batch in {} piece(s); {} transfers between rectangles, {:.3g} MB) {} "
                                     "the whole step: {}\n",
                                     s->layers, s->pieces, s->outcome.transfers, s->outcome.transfer_bytes / 1e6,
                                     s->against_whole.identical ? "equals" : "matches",
                                     s->against_whole.identical
                                         ? "every parameter bit for bit"
                                         : fmt::format("largest relative difference {:.3g}",
                                                       s->against_whole.largest_relative));
        }
    }
}

// --dump-pass exec-plan: the CPU lowering (runtime/exec_plan.h) of the one-process Plan of one micro-batch's step at
// the precision, as dojo train lowers it on this machine.
std::string exec_plan_dump(const PlanOptions& o, std::int64_t micro_batch, const autodiff::OptimizerConfig& optimizer) {
    const compiler::StepFactory build = compiler::step_factory(
        o.model, {compiler::make_policy(compiler::parse_precision(o.precision), 0), optimizer});
    const compiler::Step step = build(micro_batch);
    const compiler::Plan one_process = compiler::make_plan(build, o.model, micro_batch, compiler::Strategy{});
    return runtime::dump_exec_plan(
        runtime::lower_cpu(one_process, runtime::training_executor_options(step, runtime::Kernels::Fast)));
}

void run(const PlanOptions& o) {
    const machine::Machine m = machine::load_machine(o.machine, o.dir);
    const sim::Topology topology = sim::derive_topology(m);
    if (o.batch < 1) {
        throw UsageError("--batch must be a positive number of samples per step, got " + std::to_string(o.batch));
    }
    const autodiff::OptimizerConfig optimizer = autodiff::optimizer_named(o.optimizer);
    const compiler::Precision precision = compiler::parse_precision(o.precision);
    compiler::Strategy strategy;
    if (o.strategy == "auto") {
        if (!o.json_output) {
            std::cerr << "dojo plan: trying strategies for " << o.model << " on " << m.name << "...\n";
        }
        const std::vector<sim::SimResult> results =
            sim::search_strategies(o.model, o.batch, topology, precision, optimizer);
        if (results.empty()) {
            throw UsageError("no strategy splits batch " + std::to_string(o.batch) + " of " + o.model + " over " +
                             m.name + "; try another batch or an explicit --strategy");
        }
        strategy = results.front().strategy;
    } else {
        strategy = compiler::parse_strategy(o.strategy);
    }
    if (strategy.devices() > topology.device.count) {
        throw UsageError("strategy " + strategy.to_string() + " needs " + std::to_string(strategy.devices()) + " " +
                         topology.device.kind + "; " + m.name + " has " + std::to_string(topology.device.count));
    }
    const compiler::Plan plan = compiler::make_plan(o.model, o.batch, strategy, optimizer,
                                                    sim::stage_cost(topology.device, precision), precision);
    const bool mesh = topology.device.mesh_columns > 0 && topology.device.mesh_rows > 0;
    if (!mesh && o.layout_given) {
        throw UsageError("--layout places layers on a chip's core mesh, and " + topology.device.kind + " (the device of " +
                         m.name + ") has none; leave out --layout on this machine");
    }
    const compiler::LayoutChoice layout = compiler::parse_layout_choice(o.layout);  // checked before the work
    std::optional<compiler::SpatialPlacement> placement;
    if (mesh) {
        placement = compiler::place_spatial(plan, sim::core_mesh(topology, precision), layout,
                                            sim::stage_cost(topology.device, precision));
    }
    const std::string header =
        fmt::format("{} on {} ({} of {} {}), {}, batch {}, strategy {}", plan.model, m.name, strategy.devices(),
                    topology.device.count, topology.device.kind, o.precision, plan.global_batch, strategy.to_string());
    std::vector<std::pair<std::string, std::string>> pass_dumps;  // (pass, its dump)
    if (!o.dump_passes.empty()) {
        std::vector<std::string> names;
        if (o.dump_passes == "all") {
            names = compiler::dump_pass_names();
        } else {
            std::size_t start = 0;
            while (start <= o.dump_passes.size()) {
                const std::size_t comma = std::min(o.dump_passes.find(',', start), o.dump_passes.size());
                names.push_back(o.dump_passes.substr(start, comma - start));
                start = comma + 1;
            }
        }
        for (const std::string& name : names) {
            pass_dumps.emplace_back(name, name == "exec-plan" ? exec_plan_dump(o, plan.micro_batch, optimizer)
                                                              : compiler::dump_pass(plan, name));
        }
        if (o.dump_passes == "all") {
            pass_dumps.emplace_back("exec-plan", exec_plan_dump(o, plan.micro_batch, optimizer));
        }
    }
    std::optional<proof::PlanCheck> checked;
    if (o.verify) {
        if (!o.json_output) {
            std::cerr << "dojo plan: running the partitioned step and the whole step on this machine's CPU...\n";
        }
        checked = proof::check_plan(plan, o.model, o.batch, optimizer, placement);
    }
    if (o.json_output) {
        json out = {{"model", plan.model}, {"machine", m.name}, {"device", topology.device.kind},
                    {"precision", o.precision}, {"global_batch", plan.global_batch},
                    {"micro_batch", plan.micro_batch}, {"strategy", strategy.to_string()}};
        if (placement) {
            out["placement"] = placement_json(*placement);
        } else {
            out["placement"] = nullptr;
        }
        for (const auto& [name, text] : pass_dumps) {
            out["pass_dumps"][name] = text;
        }
        if (checked) {
            out["functional_check"] = {{"identical", checked->against_whole.identical},
                                       {"largest_relative_difference", checked->against_whole.largest_relative},
                                       {"loss_whole", checked->loss_whole},
                                       {"loss_partitioned", checked->loss_partitioned},
                                       {"pipeline_chunks", checked->outcome.pipeline_chunks},
                                       {"transfers", checked->outcome.transfers},
                                       {"transfer_bytes", checked->outcome.transfer_bytes},
                                       {"all_reduces", checked->outcome.all_reduces},
                                       {"all_reduce_bytes", checked->outcome.all_reduce_bytes},
                                       {"all_gathers", checked->outcome.all_gathers},
                                       {"all_gather_bytes", checked->outcome.all_gather_bytes},
                                       {"replicas_agree", checked->outcome.replicas_agree},
                                       {"seconds", checked->seconds}};
            if (const auto& s = checked->spatial) {
                out["functional_check"]["spatial"] = {
                    {"not_run", s->not_run}, {"layers", s->layers}, {"pieces", s->pieces}, {"identical", s->against_whole.identical},
                    {"largest_relative_difference", s->against_whole.largest_relative},
                    {"transfers", s->outcome.transfers}, {"transfer_bytes", s->outcome.transfer_bytes}};
            } else {
                out["functional_check"]["spatial"] = nullptr;
            }
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << header << "\n";
    for (const auto& [name, text] : pass_dumps) {
        std::cout << "--- " << name << "\n" << text;
    }
    std::cout << fmt::format("  micro-batch {} samples; {} pipeline stage(s) of {} tensor-parallel {} each, {} "
                             "replica(s)\n",
                             plan.micro_batch, strategy.pp, strategy.tp, topology.device.kind, strategy.dp);
    if (!placement) {
        std::cout << fmt::format("  {} has no mesh of cores: layers are not placed spatially (stages only)\n",
                                 topology.device.kind);
        print_check(checked);
        return;
    }
    if (o.dump) {
        std::cout << compiler::dump_placement(*placement);
    } else {
        for (const compiler::StagePlacement& s : placement->stages) {
            if (!s.fits) {
                std::cout << fmt::format("  stage {:>3}: {} layers, DOES NOT FIT: {}\n", s.stage, s.layers.size(),
                                         s.report);
                continue;
            }
            std::cout << fmt::format("  stage {:>3}: {} layers {}, {}, load balance {:.2f}, compute {:.4g} ms per "
                                     "step at peak\n",
                                     s.stage, s.layers.size(),
                                     s.temporal ? std::string("in turn on the whole mesh")
                                                : fmt::format("on {} rectangles", s.regions.size()),
                                     s.residency, s.balance, s.compute_s * 1e3);
        }
        std::cout << "  (--dump draws each stage's mesh and lists its layers; --json prints it all)\n";
    }
    std::cout << (placement->fits() ? "  every core's working set fits its SRAM\n"
                                    : "  DOES NOT FIT: a stage's layers need more than its chip's cores hold\n");
    print_check(checked);
}

}  // namespace

void add_plan_command(CLI::App& app) {
    auto options = std::make_shared<PlanOptions>();
    CLI::App* plan = app.add_subcommand(
        "plan", "Compile one training step for a machine and show where it goes: the strategy, the pipeline "
                "stages and, on a Dojo mesh, each layer's rectangle of cores, what every core holds and what streams "
                "from HBM");
    plan->add_option("model", options->model, "an ONNX file or a catalog spec (e.g. lenet, resnet50, "
                                              "gpt:layers=2,hidden=256,heads=4,seq=128,vocab=1000)")
        ->required();
    plan->add_option("--machine", options->machine, "machine preset, with parameters (dojo machine list): d1, tile, "
                                                  "v1-matrix ...")
        ->required();
    plan->add_option("--batch", options->batch, "global batch: samples per step over all replicas")->required();
    plan->add_option("--precision", options->precision, "fp32, bf16 or cfp8 (default bf16)");
    plan->add_option("--strategy", options->strategy,
                     "auto (the fastest plan dojo sim finds; default) or dp=N,tp=N,pp=N,mb=N[,vp=N,sp=1,zero=1,recompute=full|selective]"
                     " as for dojo sim");
    plan->add_option("--optimizer", options->optimizer, "adamw (default) or sgd");
    plan->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    plan->add_option("--layout", options->layout,
                     "auto (default: per stage the faster by the pass's model), spatial (layers side by side on "
                     "rectangles of cores wherever that fits) or temporal (layers in turn on the whole mesh)");
    plan->add_option("--dump-pass", options->dump_passes,
                     "print what compiler passes decided: layouts, stages, transfers, fusion, recompute, buckets, "
                     "programs, schedule, and exec-plan (the CPU lowering of one micro-batch's step at --precision: "
                     "each node's kernel, layout, fused group and arena offset, as dojo train runs it on this "
                     "machine), comma-separated, or all");
    plan->add_flag("--dump", options->dump, "draw each stage's mesh (one letter per layer's rectangle) and list "
                                            "its layers: cores, place, GFLOP, bytes per core");
    plan->add_flag("--verify", options->verify,
                   "run one step of the plan stage by stage and device by device on this CPU in the 1F1B order "
                   "(vp=N: the step cut into pp*N chunks, run in the interleaved order), "
                   "every transfer a copy and every all-reduce a sum, and on a core mesh also layer by layer on the "
                   "placement's rectangles; compare each with the unpartitioned step (seeded weights and data; FP32 "
                   "reference kernels, so for small models; tp with Megatron-style layers and sp=1, zero=1 shards "
                   "the update, recompute=1 recomputes from checkpoints, recompute=selective recomputes attention's "
                   "scores)");
    plan->add_flag("--json", options->json_output, "print the plan and its placement as JSON (bytes, FLOP, seconds)");
    plan->callback([options, plan] {
        options->layout_given = plan->get_option("--layout")->count() > 0;
        run(*options);
    });
}

}  // namespace dojo::cli
