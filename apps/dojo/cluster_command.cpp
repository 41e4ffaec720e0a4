// `dojo cluster replay` and `dojo cluster trace` (cluster_command.h).
#include "cluster_command.h"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"
#include "dojo/service/replay.h"
#include "dojo/service/sim_durations.h"
#include "dojo/service/trace.h"
#include "dojo/sim/topology.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"

namespace dojo::cli {
namespace {

struct ReplayCliOptions {
    std::string trace, machine, policy = "priority", svg, dir = machine::default_machines_dir(), durations = "trace";
    double checkpoint_minutes = 30;
    double half_life_hours = 24;
    bool json_output = false;
};

struct TraceCliOptions {
    std::string machine, out, dir = machine::default_machines_dir(), layout = "helios";
    std::vector<std::string> models;
    int jobs = 1000;
    double load = 1.2, high_fraction = 0.84;
    std::uint64_t seed = 0;
};

// The machine's devices: the units a trace's GPUs map onto (a GPU, a D1).
int devices_of(const std::string& spec, const std::string& dir, std::string& kind) {
    const sim::Topology topology = sim::derive_topology(machine::load_machine(spec, dir));
    kind = topology.device.kind;
    if (topology.device.count > 100'000'000) {
        throw UsageError("machine '" + spec + "' has " + std::to_string(topology.device.count) +
                         " devices; a replay takes at most 100,000,000");
    }
    return static_cast<int>(topology.device.count);
}

std::string hours(double seconds) { return fmt::format("{:.2f} h", seconds / 3600); }

// Replaces the jobs' durations by dojo sim's on the machine (--durations sim), saying how many it timed.
void time_jobs_by_sim(const ReplayCliOptions& o, std::vector<service::TraceJob>& jobs) {
    const sim::Topology topology = sim::derive_topology(machine::load_machine(o.machine, o.dir));
    const service::SimDurations timed = service::durations_from_sim(jobs, topology, [](int done, int total) {
        std::cerr << fmt::format("\rdojo cluster: simulating the jobs' steps {}/{}", done, total) << std::flush;
    });
    std::cerr << fmt::format("\rdojo cluster: {} jobs timed by dojo sim ({} distinct steps simulated{})\n", timed.jobs,
                             timed.simulations,
                             timed.not_fitting > 0 ? fmt::format("; {} do not fit their devices' memory",
                                                                 timed.not_fitting)
                                                   : "");
}

void print_replay_json(const ReplayCliOptions& o, const service::ReplayResult& r, std::size_t jobs, int devices) {
    nlohmann::json classes = nlohmann::json::object();
    for (const auto& [priority, c] : r.classes) {
        classes[std::string(service::to_string(priority))] = {
            {"jobs", c.jobs}, {"wait_p50_s", c.wait_p50_s}, {"wait_p99_s", c.wait_p99_s},
            {"completion_p50_s", c.completion_p50_s}, {"completion_p99_s", c.completion_p99_s}};
    }
    std::cout << nlohmann::json{{"machine", o.machine}, {"devices", devices}, {"policy", o.policy},
                                {"jobs", jobs}, {"utilization", r.utilization},
                                {"idle_fraction", r.idle_fraction},
                                {"utilization_with_drain", r.utilization_with_drain},
                                {"steady_from_s", r.steady_from_s}, {"steady_to_s", r.steady_to_s},
                                {"span_s", r.span_s},
                                {"preemptions", r.preemptions}, {"lost_device_s", r.lost_device_s},
                                {"too_large", r.too_large}, {"classes", classes}}
                     .dump(2)
              << "\n";
}

void print_replay_text(const ReplayCliOptions& o, const service::ReplayResult& r, std::size_t jobs, int devices,
                       const std::string& kind) {
    std::cout << fmt::format("{} jobs on {} ({} {}), policy {}: {:.1f} days\n", jobs, o.machine, devices, kind,
                             o.policy, r.span_s / 86400);
    if (r.steady_from_s >= 0) {
        std::cout << fmt::format("  steady state (day {:.2f} to {:.2f}, work waiting): utilization {:.2f}%, idle "
                                 "{:.2f}%; the whole replay: {:.1f}%\n",
                                 r.steady_from_s / 86400, r.steady_to_s / 86400, 100 * r.utilization,
                                 100 * r.idle_fraction, 100 * r.utilization_with_drain);
    } else {  // no job ever waited: the machine had room throughout
        std::cout << fmt::format("  never saturated (no job waited): utilization {:.1f}% over the whole replay\n",
                                 100 * r.utilization_with_drain);
    }
    std::cout << fmt::format("  {} preemptions, {:.0f} {}-hours of work lost to them\n", r.preemptions,
                             r.lost_device_s / 3600, kind);
    if (r.too_large > 0) {
        std::cout << fmt::format("  {} jobs wider than the machine never ran\n", r.too_large);
    }
    std::cout << "  class    jobs   wait p50   wait p99   done p50   done p99\n";
    for (const auto& [priority, c] : r.classes) {
        std::cout << fmt::format("  {:<7} {:>5} {:>10} {:>10} {:>10} {:>10}\n", service::to_string(priority), c.jobs,
                                 hours(c.wait_p50_s), hours(c.wait_p99_s), hours(c.completion_p50_s),
                                 hours(c.completion_p99_s));
    }
}

void run_replay(const ReplayCliOptions& o) {
    service::ReplayOptions options;
    options.policy = service::parse_policy(o.policy);
    if (!(o.checkpoint_minutes > 0)) {
        throw UsageError("--checkpoint-minutes must be positive");
    }
    options.checkpoint_interval_s = o.checkpoint_minutes * 60;
    if (!(o.half_life_hours > 0)) {
        throw UsageError("--half-life must be positive (hours)");
    }
    options.half_life_s = o.half_life_hours * 3600;
    if (!o.svg.empty()) {
        require_output_path(o.svg, "plot (--svg)");
    }
    if (o.durations != "trace" && o.durations != "sim") {
        throw UsageError("--durations " + o.durations + ": expected trace (the trace's own) or sim (from dojo sim)");
    }
    std::string kind;
    options.slots = devices_of(o.machine, o.dir, kind);
    std::vector<service::TraceJob> jobs = service::read_trace(o.trace);
    if (o.durations == "sim") {
        time_jobs_by_sim(o, jobs);
    }
    const service::ReplayResult r = service::replay(jobs, options);
    if (!o.svg.empty()) {
        std::ofstream(o.svg) << service::replay_svg(r, options.slots,
                                                    o.machine + ", " + service::to_string(options.policy));
    }
    if (o.json_output) {
        print_replay_json(o, r, jobs.size(), options.slots);
        return;
    }
    print_replay_text(o, r, jobs.size(), options.slots, kind);
    if (!o.svg.empty()) {
        std::cerr << "dojo cluster: wrote the plot to " << o.svg << "\n";
    }
}

void run_trace(const TraceCliOptions& o) {
    require_output_path(o.out, "trace (--out)");
    service::TraceMix mix;
    std::string kind;
    mix.machine_devices = devices_of(o.machine, o.dir, kind);
    mix.jobs = o.jobs;
    mix.load = o.load;
    mix.high_fraction = o.high_fraction;
    mix.seed = o.seed;
    mix.models = o.models;
    if (o.jobs < 1 || o.jobs > 10'000'000) {
        throw UsageError("--jobs must be 1 to 10,000,000");
    }
    const std::string text = service::generate_trace(mix, service::parse_trace_layout(o.layout));
    std::ofstream out(o.out);
    out << text;
    if (!out) {
        throw IoError("cannot write the trace " + o.out);
    }
    std::cerr << fmt::format("dojo cluster: wrote {} jobs for {} ({} {}), offered load {}, {:.0f}% high priority, to {}\n",
                             o.jobs, o.machine, mix.machine_devices, kind, o.load, 100 * o.high_fraction, o.out);
}

}  // namespace

void add_cluster_command(CLI::App& app) {
    CLI::App* cluster = app.add_subcommand("cluster", "The scheduler's policy at cluster scale: replay job traces");
    cluster->require_subcommand(1);
    auto r = std::make_shared<ReplayCliOptions>();
    CLI::App* replay = cluster->add_subcommand(
        "replay", "Run a job trace (the Helios CSV layout) through the scheduler on a machine's devices");
    replay->add_option("trace", r->trace,
                       "the trace: Helios CSV (job_id, user, gpu_num, submit_time, duration[, priority]) or Philly "
                       "JSON job log (jobid, user, submitted_time, attempts)")
        ->required();
    replay->add_option("--machine", r->machine, "machine preset whose devices run the jobs (exapod, superpod-a100...)")
        ->required();
    replay->add_option("--policy", r->policy, "priority (default: the service's), fifo, fairshare or shortest-first");
    replay->add_option("--durations", r->durations,
                       "trace (default: each job's own duration) or sim: each job's model, samples and batch per device "
                       "timed by dojo sim on its devices of the machine");
    replay->add_option("--half-life", r->half_life_hours,
                       "hours in which a user's past use halves in the fair share's order (default 24)");
    replay->add_option("--checkpoint-minutes", r->checkpoint_minutes,
                       "a preempted job loses the work since its last checkpoint, taken this often (default 30)");
    replay->add_option("--svg", r->svg, "write a plot of busy devices and queued jobs over time");
    replay->add_option("--machines-dir", r->dir, "directory of machine presets (default: OpenDojo's)");
    replay->add_flag("--json", r->json_output, "print JSON (seconds)");
    replay->callback([r] { run_replay(*r); });

    auto t = std::make_shared<TraceCliOptions>();
    CLI::App* trace = cluster->add_subcommand("trace", "Write a synthetic job trace (Helios or Philly layout) for a machine");
    trace->add_option("--machine", t->machine, "machine preset the trace is sized for")->required();
    trace->add_option("--out", t->out, "the file to write")->required();
    trace->add_option("--layout", t->layout, "helios (CSV, default) or philly (JSON job log)");
    trace->add_option("--models", t->models,
                      "catalog models the jobs train (each job one at random, samples from its duration at 100 per "
                      "device-second), for replay --durations sim")
        ->delimiter(';');
    trace->add_option("--jobs", t->jobs, "jobs (default 1000)");
    trace->add_option("--load", t->load, "device-seconds offered per device-second of the machine (default 1.2)");
    trace->add_option("--high-fraction", t->high_fraction, "share of high-priority jobs (default 0.84, Tesla's mix)");
    trace->add_option("--seed", t->seed, "seed (default 0)");
    trace->add_option("--machines-dir", t->dir, "directory of machine presets (default: OpenDojo's)");
    trace->callback([t] { run_trace(*t); });
}

}  // namespace dojo::cli
