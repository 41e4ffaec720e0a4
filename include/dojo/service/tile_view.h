/** \file
 * Where a simulated Dojo runs a sim job's plan, tile by tile (`GET /v1/jobs/{id}/placement`, the dashboard's tiles):
 * from the job's `dojo sim --json` result, the machine's tiles (the innermost level of zones whose kind is a tile: 25
 * D1 on `tile`, `exapod`) and, for each tile the plan uses, its devices and the pipeline stages and data-parallel
 * replicas they run. The plan's devices are numbered replica by replica, stage by stage, tensor rank by tensor rank
 * (device = (replica * pp + stage) * tp + rank), and fill the tiles in that order.
 */
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dojo::service {

/// {"machine", "device_kind", "devices_per_tile", "tiles", "devices_used", "dp", "tp", "pp", "tiles_used": [{"tile",
/// "devices", "stages": [...], "replicas": [...]}]} for `sim_result` (a `dojo sim --json` output). UsageError when the
/// machine has no tiles or the result is not a sim result.
nlohmann::json tile_view(const nlohmann::json& sim_result, const std::string& machines_dir);

}  // namespace dojo::service
