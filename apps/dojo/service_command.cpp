// `dojo tenant add` and `dojo serve` (service_command.h).
#include "service_command.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "dojo/service/server.h"
#include "dojo/service/store.h"
#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) { g_stop.store(true); }

struct TenantOptions {
    std::string name, state;
    bool admin = false;
    int max_slots = 1, max_queued = 100;
};

struct ServeCliOptions {
    std::string state;
    std::string listen = "127.0.0.1:8470";
    std::string scheduler = "local";
    int slots = 0;
    double half_life_hours = 24;
    std::string slurm_priorities = "qos";
};

void add_tenant(const TenantOptions& o) {
    service::Store store(o.state);
    const std::string token = store.add_tenant({o.name, o.admin, o.max_slots, o.max_queued});
    std::cout << token << "\n";
    std::cerr << "dojo tenant: added '" << o.name << "'" << (o.admin ? " (admin)" : "") << " to " << o.state
              << "; its token is above, shown this once (only its hash is kept)\n";
}

void run_serve(const ServeCliOptions& o) {
    if (o.scheduler != "local" && o.scheduler != "slurm") {
        throw UsageError("--scheduler " + o.scheduler + ": expected local (this host's cores) or slurm (a Slurm "
                         "cluster, its slurm.conf in SLURM_CONF)");
    }
    const std::size_t colon = o.listen.rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon > 0) {
        try {
            port = std::stoi(o.listen.substr(colon + 1));
        } catch (const std::exception&) {
            port = -1;
        }
    }
    if (port < 0 || port > 65535) {
        throw UsageError("--listen '" + o.listen + "': give HOST:PORT, like 127.0.0.1:8470 (port 0: any free one)");
    }
    if (o.slots < 0 || o.slots > 4096) {
        throw UsageError("--slots must be 0 (one per core) to 4096, got " + std::to_string(o.slots));
    }
    service::ServeOptions options;
    options.state_dir = o.state;
    options.host = o.listen.substr(0, colon);
    options.port = port;
    options.slots = o.slots;
    options.scheduler = o.scheduler;
    if (o.slurm_priorities != "qos" && o.slurm_priorities != "partitions") {
        throw UsageError("--slurm-priorities " + o.slurm_priorities + ": expected qos (Slurm's QOS high, normal, low) "
                         "or partitions (partitions high, normal, low)");
    }
    options.slurm_priorities = o.slurm_priorities;
    if (!(o.half_life_hours > 0) || o.half_life_hours > 24 * 365) {
        throw UsageError("--fair-share-half-life must be more than 0 and at most a year (8760 hours)");
    }
    options.fair_share_half_life_s = o.half_life_hours * 3600;
    options.dojo = std::filesystem::read_symlink("/proc/self/exe").string();
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    service::serve(options, g_stop, [&](int bound) {
        std::cerr << "dojo serve: listening on http://" << options.host << ":" << bound << " (state in " << o.state
                  << "); stop with Ctrl-C\n";
        std::cout << bound << std::endl;  // the port, for scripts that asked for any (port 0)
    });
}

}  // namespace

void add_service_commands(CLI::App& app) {
    CLI::App* tenant = app.add_subcommand("tenant", "Manage the service's tenants (teams sharing one dojo serve)");
    tenant->require_subcommand(1);
    auto t = std::make_shared<TenantOptions>();
    CLI::App* add = tenant->add_subcommand("add", "Add a tenant and print its API token (once)");
    add->add_option("name", t->name, "the tenant's name: letters, digits, '-' or '_'")->required();
    add->add_option("--state", t->state, "the service's state directory (as dojo serve --state)")->required();
    add->add_flag("--admin", t->admin, "an admin sees and cancels every tenant's jobs");
    add->add_option("--max-slots", t->max_slots, "slots its running jobs may hold together (default 1)");
    add->add_option("--max-queued", t->max_queued, "jobs it may have queued or running (default 100)");
    add->callback([t] { add_tenant(*t); });

    auto s = std::make_shared<ServeCliOptions>();
    CLI::App* serve = app.add_subcommand(
        "serve", "Serve the HTTP/JSON job API and run the jobs on this host (POST /v1/jobs; docs/service.md)");
    serve->add_option("--state", s->state, "directory of the service's state (SQLite) and the jobs' files")->required();
    serve->add_option("--listen", s->listen, "HOST:PORT to listen on (default 127.0.0.1:8470; port 0: any free one)");
    serve->add_option("--scheduler", s->scheduler,
                      "local (default): jobs run on this host's cores; slurm: jobs go to a Slurm cluster with sbatch "
                      "(priorities as its QOS high, normal, low, preemption by requeue: docs/service.md)");
    serve->add_option("--slurm-priorities", s->slurm_priorities,
                      "slurm: qos (default; QOS high, normal, low in Slurm's accounting) or partitions (partitions "
                      "high, normal, low by PriorityTier, for a cluster without accounting)");
    serve->add_option("--slots", s->slots, "slots (cores) jobs may hold together (default 0: one per core)");
    serve->add_option("--fair-share-half-life", s->half_life_hours,
                      "hours in which a tenant's past use halves: within a priority class the tenant that used the "
                      "least recently goes first (default 24)");
    serve->callback([s] { run_serve(*s); });
}

}  // namespace dojo::cli
