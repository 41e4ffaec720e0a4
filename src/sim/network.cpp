// Flow-level collectives on SimGrid (network.h). The parent process describes the flows; a forked child builds the
// SimGrid platform, runs one step of every phase side by side (their links are disjoint copies) and writes the step
// times back through a pipe.
#include "dojo/sim/network.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <simgrid/s4u.hpp>
#include <set>
#include <xbt/log.h>

#include "dojo/util/error.h"

namespace dojo::sim {

namespace sg4 = simgrid::s4u;

namespace {

// The members fill a square grid inside one innermost-level instance (a tile's 5 x 5 D1 with tp = 25)?
std::int64_t grid_side(const Topology& t, const std::vector<std::int64_t>& members) {
    const auto n = static_cast<std::int64_t>(members.size());
    const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    if (n < 4 || side * side != n) {
        return 0;
    }
    for (const std::int64_t m : members) {
        if (t.common_level(members.front(), m) > 0) {
            return 0;
        }
    }
    return side;
}

// The members grouped by their instance of level `level`, in order: empty unless there are several groups, all of
// the same size k > 1 (8 GPUs in each of several DGX nodes).
std::vector<std::vector<std::int64_t>> equal_groups(const Topology& t, const std::vector<std::int64_t>& members,
                                                    std::size_t level) {
    std::map<std::int64_t, std::vector<std::int64_t>> by_instance;
    for (const std::int64_t m : members) {
        by_instance[m / t.levels[level].devices].push_back(m);
    }
    std::vector<std::vector<std::int64_t>> groups;
    for (auto& [instance, group] : by_instance) {
        if (group.size() < 2 || (!groups.empty() && group.size() != groups.front().size())) {
            return {};
        }
        groups.push_back(std::move(group));
    }
    return groups.size() < 2 ? std::vector<std::vector<std::int64_t>>{} : groups;
}

// Latency of one hop from a to b: the device link's within the innermost zone, else the egress latencies of every
// level it leaves (the route NetworkSimulation builds).
double hop_latency(const Topology& t, std::int64_t a, std::int64_t b) {
    const int level = t.common_level(a, b);
    if (level <= 0) {
        return level == 0 ? t.device.link_latency_s : 0.0;
    }
    double latency = 0;
    for (int l = 0; l < level; ++l) {
        latency += t.levels[static_cast<std::size_t>(l)].latency_s;
    }
    return latency;
}

}  // namespace

bool beyond_cache(const Device& device, double resident_bytes, double bytes_per_flow) {
    return device.cache_bytes > 0 && resident_bytes + 2 * bytes_per_flow > device.cache_bytes;
}

double reduce_seconds(const Device& device, double resident_bytes, double bytes) {
    if (device.reduce_bandwidth <= 0) {
        return 0;  // the additions overlap the transfers
    }
    const double rate = beyond_cache(device, resident_bytes, bytes) && device.reduce_bandwidth_beyond_cache > 0
                            ? device.reduce_bandwidth_beyond_cache
                            : device.reduce_bandwidth;
    return 3.0 * bytes / rate;  // two operands read, the sum written
}

Network::Network(Topology topology, double resident_bytes)
    : topology_(std::move(topology)), resident_bytes_(resident_bytes) {}

std::size_t Network::all_reduce(std::vector<std::int64_t> members, double bytes) {
    const auto n = static_cast<std::int64_t>(members.size());
    if (n > kMaxCollectiveMembers) {
        throw UsageError("an all-reduce over " + std::to_string(n) + " devices is beyond the flow-level network "
                         "simulation (at most " + std::to_string(kMaxCollectiveMembers) + " members, each a SimGrid "
                         "host); use a smaller --batch or a strategy with fewer data-parallel replicas");
    }
    const std::size_t handle = handles_++;
    if (n < 2) {
        requests_.push_back({"none", {}, members, handle});
        return handle;
    }
    const std::string& algorithm = topology_.device.allreduce_algorithm;
    if (algorithm == "binomial") {
        // Reduce to the first member along a binomial tree, then broadcast back down it: ceil(log2 n) rounds each
        // way, every round moving the whole buffer. The first round (every odd member to its even neighbour) has
        // the most flows at once; later rounds, fewer, are taken to cost the same.
        Request tree{"binomial", {}, members, handle};
        Phase round;
        for (std::int64_t i = 0; i + 1 < n; i += 2) {
            round.hops.push_back({members[static_cast<std::size_t>(i + 1)], members[static_cast<std::size_t>(i)]});
        }
        const auto rounds = static_cast<std::int64_t>(std::ceil(std::log2(static_cast<double>(n))));
        round.bytes_per_flow = bytes;
        round.steps = 2 * rounds;
        round.reduce_steps = rounds;
        tree.phases.push_back(round);
        requests_.push_back(tree);
        return handle;
    }
    requests_.push_back({"ring", {ring_phase({members}, bytes, true, true)}, members, handle});
    if (algorithm == "ring") {
        return handle;
    }
    // Trees only between instances of the innermost level (DGX nodes, tiles), where a switch or a long route
    // connects any two members at the same cost; inside a D1 mesh, a tree's edges would cross several mesh hops
    // this model does not route, and inside an NVSwitch node NCCL runs rings.
    const bool spread = std::any_of(members.begin(), members.end(),
                                    [&](std::int64_t m) { return topology_.common_level(members.front(), m) > 0; });
    if (spread) {
        requests_.push_back({"tree", {tree_phase({members}, bytes)}, members, handle});
    }
    // Hierarchical: reduce-scatter inside each instance of the innermost level the members spread over, all-reduce
    // each member's 1/k share across the instances (k rings, or k double binary trees, side by side), all-gather
    // inside again (NCCL's and Horovod's scheme for NVLink nodes on InfiniBand).
    for (std::size_t level = 0; level < topology_.levels.size(); ++level) {
        const std::vector<std::vector<std::int64_t>> groups = equal_groups(topology_, members, level);
        if (groups.empty()) {
            continue;
        }
        const std::size_t k = groups.front().size();
        std::vector<std::vector<std::int64_t>> across(k);
        for (const std::vector<std::int64_t>& group : groups) {
            for (std::size_t j = 0; j < k; ++j) {
                across[j].push_back(group[j]);
            }
        }
        const Phase inside = ring_phase(groups, bytes, true, false);
        Phase inside_both = inside;  // the reduce-scatter and the all-gather: the same flows
        inside_both.steps = 2 * inside.steps;
        const double share = bytes / static_cast<double>(k);
        requests_.push_back({"hierarchical", {inside_both, ring_phase(across, share, true, true)}, members, handle});
        requests_.push_back({"hierarchical-tree", {inside_both, tree_phase(across, share)}, members, handle});
        break;
    }
    if (const std::int64_t side = grid_side(topology_, members); side > 0) {
        Request mesh{"2d-mesh", {}, members, handle};
        Phase rows, columns;
        for (std::int64_t r = 0; r < side; ++r) {
            for (std::int64_t c = 0; c < side; ++c) {
                const auto at = [&](std::int64_t row, std::int64_t col) {
                    return members[static_cast<std::size_t>(row * side + col)];
                };
                rows.hops.push_back({at(r, c), at(r, (c + 1) % side)});
                columns.hops.push_back({at(r, c), at((r + 1) % side, c)});
            }
        }
        rows.bytes_per_flow = bytes / static_cast<double>(side);        // reduce-scatter, then all-gather
        rows.steps = 2 * (side - 1);
        rows.reduce_steps = side - 1;
        columns.bytes_per_flow = bytes / static_cast<double>(n);        // all-reduce of a row's 1/side share
        columns.steps = 2 * (side - 1);
        columns.reduce_steps = side - 1;
        mesh.phases = {rows, columns};
        requests_.push_back(mesh);
    }
    return handle;
}

Network::Phase Network::ring_phase(const std::vector<std::vector<std::int64_t>>& rings, double bytes,
                                   bool reduce_scatter, bool all_gather) {
    Phase step;
    const auto n = static_cast<std::int64_t>(rings.front().size());
    for (const std::vector<std::int64_t>& ring : rings) {
        for (std::size_t i = 0; i < ring.size(); ++i) {
            step.hops.push_back({ring[i], ring[(i + 1) % ring.size()]});
        }
    }
    step.bytes_per_flow = bytes / static_cast<double>(n);
    step.steps = (reduce_scatter ? n - 1 : 0) + (all_gather ? n - 1 : 0);
    step.reduce_steps = reduce_scatter ? n - 1 : 0;  // the all-gather only copies
    return step;
}

Network::Phase Network::tree_phase(const std::vector<std::vector<std::int64_t>>& groups, double bytes) const {
    // Two binary trees in heap order, the second over the members reversed, each carrying half the buffer: every
    // member but a root sends one half up each tree, then receives it back down. Pipelined in chunks, a step costs
    // one transfer of the half plus one hop latency per further level of depth.
    Phase step;
    const std::size_t n = groups.front().size();
    double latency = 0;
    for (const std::vector<std::int64_t>& group : groups) {
        for (std::size_t i = 1; i < n; ++i) {
            const std::size_t parent = (i - 1) / 2;
            step.hops.push_back({group[i], group[parent]});
            step.hops.push_back({group[n - 1 - i], group[n - 1 - parent]});
            latency = std::max(latency, hop_latency(topology_, group[i], group[parent]));
        }
    }
    const auto depth = static_cast<std::int64_t>(std::floor(std::log2(static_cast<double>(n)))) + 1;
    step.bytes_per_flow = bytes / 2;
    step.steps = 2;  // reduce up, broadcast down
    step.reduce_steps = 1;
    step.extra_latency_s = 2.0 * static_cast<double>(depth - 2) * latency;
    return step;
}

std::size_t Network::send(std::int64_t from, std::int64_t to, double bytes) {
    const std::size_t handle = handles_++;
    Phase one;
    one.hops.push_back({from, to});
    one.bytes_per_flow = bytes;
    one.steps = from == to ? 0 : 1;
    requests_.push_back({"send", {one}, {from, to}, handle});
    return handle;
}

// Builds every phase's platform in one SimGrid engine and runs one step of each; fills step_times in phase order.
struct NetworkSimulation {
    static void run(const Network& network, std::vector<double>& step_times) {
        int argc = 1;
        char name[] = "dojo-sim";
        char* argv[] = {name, nullptr};
        xbt_log_control_set("root.thres:critical");
        sg4::Engine engine(&argc, argv);
        sg4::Engine::set_config("network/model:CM02");
        // No TCP acknowledgement traffic on the reverse route: the fabrics modelled here (NVLink, InfiniBand, Dojo's
        // mesh) are full duplex, and a link stands for one direction.
        sg4::Engine::set_config("network/crosstraffic:0");
        sg4::Engine::set_config("contexts/stack-size:16");  // KiB: a flow's actors only send, receive, read the clock
        sg4::Engine::set_config("contexts/guard-size:0");   // no guard pages: an mprotect per actor otherwise
        // Phases go into child zones of at most zone_hosts hosts: phases never exchange flows, a full zone's routing
        // table is quadratic in its hosts (one zone for a data-parallel ring over an ExaPOD tried with five algorithms
        // would be gigabytes), and SimGrid looks a new host's or link's name up zone by zone (so not one zone per phase
        // either: a pipeline of 128 stages has thousands of phases).
        constexpr std::size_t zone_hosts = 512;
        auto* root = sg4::create_full_zone("machine");
        const Topology& t = network.topology_;
        struct PhaseRun {
            std::vector<std::pair<sg4::Host*, sg4::Host*>> flows;
            double bytes = 0;
            std::size_t result = 0;
        };
        std::vector<PhaseRun> runs;
        std::size_t phase_index = 0;
        sg4::NetZone* zone = nullptr;
        std::size_t hosts_in_zone = 0;
        for (std::size_t r = 0; r < network.requests_.size(); ++r) {
            const Network::Request& request = network.requests_[r];
            // How many members of this group each level instance holds: its egress is shared with the identical
            // groups of the other devices there.
            std::vector<std::map<std::int64_t, std::int64_t>> members_in(t.levels.size());
            for (const std::int64_t m : request.members) {
                for (std::size_t l = 0; l < t.levels.size(); ++l) {
                    ++members_in[l][m / t.levels[l].devices];
                }
            }
            for (std::size_t p = 0; p < request.phases.size(); ++p, ++phase_index) {
                const Network::Phase& phase = request.phases[p];
                const std::string prefix = "r" + std::to_string(r) + "p" + std::to_string(p) + ".";
                std::set<std::int64_t> devices;
                for (const Network::Hop& hop : phase.hops) {
                    if (hop.from != hop.to) {
                        devices.insert(hop.from);
                        devices.insert(hop.to);
                    }
                }
                if (zone == nullptr || hosts_in_zone + devices.size() > zone_hosts) {
                    if (zone != nullptr) {
                        zone->seal();
                    }
                    zone = sg4::create_full_zone(prefix);
                    zone->set_parent(root);
                    hosts_in_zone = 0;
                }
                hosts_in_zone += devices.size();
                std::map<std::int64_t, sg4::Host*> hosts;
                std::map<std::string, sg4::Link*> links;
                auto host = [&](std::int64_t device) {
                    auto [it, added] = hosts.emplace(device, nullptr);
                    if (added) {
                        it->second = zone->create_host(prefix + "d" + std::to_string(device), 1e9);
                    }
                    return it->second;
                };
                auto link = [&](const std::string& key, double bandwidth, double latency) {
                    auto [it, added] = links.emplace(key, nullptr);
                    if (added) {
                        it->second = zone->create_link(prefix + key, bandwidth)->set_latency(latency)->seal();
                    }
                    return it->second;
                };
                const double device_bandwidth =
                    beyond_cache(t.device, network.resident_bytes_, phase.bytes_per_flow) &&
                            t.device.link_bandwidth_beyond_cache > 0
                        ? t.device.link_bandwidth_beyond_cache
                        : t.device.link_bandwidth;
                PhaseRun run;
                run.bytes = phase.bytes_per_flow;
                run.result = phase_index;
                for (const Network::Hop& hop : phase.hops) {
                    if (hop.from == hop.to) {
                        continue;
                    }
                    const int level = t.common_level(hop.from, hop.to);
                    std::vector<sg4::LinkInRoute> route;
                    if (level == 0) {
                        route.emplace_back(link("dev" + std::to_string(hop.from), device_bandwidth,
                                                t.device.link_latency_s));
                    }
                    for (int l = 0; l < level; ++l) {
                        const Level& lv = t.levels[static_cast<std::size_t>(l)];
                        const std::int64_t instance = hop.from / lv.devices;
                        const double share = static_cast<double>(lv.devices) /
                                             static_cast<double>(members_in[static_cast<std::size_t>(l)][instance]);
                        route.emplace_back(link("L" + std::to_string(l) + "." + std::to_string(instance),
                                                lv.egress_bandwidth / share, lv.latency_s));
                    }
                    sg4::Host* a = host(hop.from);
                    sg4::Host* b = host(hop.to);
                    zone->add_route(a->get_netpoint(), b->get_netpoint(), nullptr, nullptr, route, false);
                    run.flows.emplace_back(a, b);
                }
                runs.push_back(std::move(run));
            }
        }
        if (zone != nullptr) {
            zone->seal();
        }
        root->seal();
        step_times.assign(phase_index, 0.0);
        std::size_t flow_count = 0;
        for (PhaseRun& run : runs) {
            if (run.flows.empty()) {
                continue;
            }
            // Two actors per flow, over a mailbox of its own: SimGrid removes a finished comm from a list of its
            // issuers' activities by a linear search, and host-to-host sends (Comm::sendto) all share one such list,
            // quadratic in a phase's thousands of flows. The phase ends at its last flow's end.
            for (const auto& [from, to] : run.flows) {
                sg4::Mailbox* box = sg4::Mailbox::by_name("f" + std::to_string(flow_count++));
                sg4::Actor::create("send", from, [&run, box]() {
                    static int payload = 0;
                    box->put(&payload, static_cast<std::uint64_t>(std::ceil(run.bytes)));
                });
                sg4::Actor::create("receive", to, [&run, &step_times, box]() {
                    box->get<int>();
                    step_times[run.result] = std::max(step_times[run.result], sg4::Engine::get_clock());
                });
            }
        }
        engine.run();
    }
};

void Network::simulate_all(std::vector<double>& step_times) const {
    // Every phase's devices become hosts of the platform: bound their number before building it (the build's time
    // and memory grow with them; a million-GPU machine's groups would exhaust the memory of the forked child).
    std::size_t hosts = 0;
    for (const Request& request : requests_) {
        for (const Phase& phase : request.phases) {
            hosts += 2 * phase.hops.size();  // at most; each hop joins two devices
        }
    }
    if (hosts > 2 * static_cast<std::size_t>(kMaxCollectiveMembers) * kMaxPhaseFactor) {
        throw UsageError("the step's collectives and transfers need about " + std::to_string(hosts / 2) +
                         " flows at once, beyond the flow-level network simulation (" +
                         std::to_string(kMaxCollectiveMembers * kMaxPhaseFactor) + "); simulate a smaller machine "
                         "or batch, or a strategy with fewer replicas");
    }
    int fds[2];
    if (pipe(fds) != 0) {
        throw Error("network simulation: cannot create a pipe");
    }
    std::fflush(nullptr);  // nothing buffered may be written twice
    const pid_t child = fork();
    if (child < 0) {
        close(fds[0]);
        close(fds[1]);
        throw Error("network simulation: cannot fork");
    }
    if (child == 0) {
        close(fds[0]);
        std::vector<double> times;
        NetworkSimulation::run(*this, times);
        const std::size_t count = times.size();
        bool ok = write(fds[1], &count, sizeof count) == static_cast<ssize_t>(sizeof count);
        const auto bytes = static_cast<ssize_t>(count * sizeof(double));
        ok = ok && (count == 0 || write(fds[1], times.data(), static_cast<std::size_t>(bytes)) == bytes);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    std::size_t count = 0;
    std::vector<char> buffer;
    char chunk[65536];
    ssize_t got = 0;
    while ((got = read(fds[0], chunk, sizeof chunk)) > 0) {
        buffer.insert(buffer.end(), chunk, chunk + got);
    }
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || buffer.size() < sizeof count) {
        throw Error("network simulation: the SimGrid process failed (status " + std::to_string(status) + ")");
    }
    std::memcpy(&count, buffer.data(), sizeof count);
    if (buffer.size() != sizeof count + count * sizeof(double)) {
        throw Error("network simulation: the SimGrid process returned a truncated result");
    }
    step_times.resize(count);
    std::memcpy(step_times.data(), buffer.data() + sizeof count, count * sizeof(double));
}

std::vector<CollectiveTime> Network::evaluate() const {
    std::vector<double> steps;
    simulate_all(steps);
    std::vector<CollectiveTime> times(handles_);
    std::vector<bool> set(handles_, false);
    std::size_t phase = 0;
    for (const Request& request : requests_) {
        double seconds = 0;
        for (const Phase& p : request.phases) {
            seconds += static_cast<double>(p.steps) * steps[phase++] + p.extra_latency_s;
            seconds += static_cast<double>(p.reduce_steps) * reduce_seconds(topology_.device, resident_bytes_, p.bytes_per_flow);
        }
        if (!set[request.handle] || seconds < times[request.handle].seconds) {
            times[request.handle] = {seconds, request.algorithm};
            set[request.handle] = true;
        }
    }
    return times;
}

}  // namespace dojo::sim
