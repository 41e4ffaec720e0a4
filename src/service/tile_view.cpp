// A sim job's plan on a simulated Dojo's tiles (tile_view.h).
#include "dojo/service/tile_view.h"

#include <set>

#include "dojo/compiler/plan.h"
#include "dojo/machine/machine.h"
#include "dojo/sim/topology.h"
#include "dojo/util/error.h"

namespace dojo::service {

nlohmann::json tile_view(const nlohmann::json& sim_result, const std::string& machines_dir) {
    if (!sim_result.is_object() || !sim_result.contains("machine") || !sim_result.contains("strategy") ||
        !sim_result["machine"].is_string() || !sim_result["strategy"].is_string()) {
        throw UsageError("not a dojo sim result: it names no machine and strategy");
    }
    const std::string machine = sim_result["machine"].get<std::string>();
    const sim::Topology topology = sim::derive_topology(machine::load_machine(machine, machines_dir));
    std::int64_t per_tile = 0;
    for (const sim::Level& level : topology.levels) {
        if (level.kind.find("tile") != std::string::npos) {
            per_tile = level.devices;
            break;
        }
    }
    if (per_tile < 1) {
        throw UsageError("machine '" + machine + "' has no tiles (a Dojo machine does: tile, exapod, ...)");
    }
    const compiler::Strategy s = compiler::parse_strategy(sim_result["strategy"].get<std::string>());
    const std::int64_t used = static_cast<std::int64_t>(s.dp) * s.tp * s.pp;
    std::map<std::int64_t, std::pair<std::set<int>, std::set<int>>> on_tile;  // tile -> stages, replicas
    std::map<std::int64_t, int> devices_on_tile;
    for (std::int64_t d = 0; d < used && d < topology.device.count; ++d) {
        const std::int64_t tile = d / per_tile;
        const int stage = static_cast<int>(d / s.tp % s.pp);
        const int replica = static_cast<int>(d / (static_cast<std::int64_t>(s.tp) * s.pp));
        on_tile[tile].first.insert(stage);
        on_tile[tile].second.insert(replica);
        ++devices_on_tile[tile];
    }
    nlohmann::json tiles = nlohmann::json::array();
    for (const auto& [tile, what] : on_tile) {
        tiles.push_back({{"tile", tile},
                         {"devices", devices_on_tile[tile]},
                         {"stages", std::vector<int>(what.first.begin(), what.first.end())},
                         {"replicas", std::vector<int>(what.second.begin(), what.second.end())}});
    }
    return {{"machine", machine},
            {"device_kind", topology.device.kind},
            {"devices_per_tile", per_tile},
            {"tiles", (topology.device.count + per_tile - 1) / per_tile},
            {"devices_used", used},
            {"dp", s.dp},
            {"tp", s.tp},
            {"pp", s.pp},
            {"tiles_used", tiles}};
}

}  // namespace dojo::service
