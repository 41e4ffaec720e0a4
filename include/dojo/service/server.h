/** \file
 * `dojo serve`: the HTTP/JSON API over the store (store.h) and an engine that runs the jobs (engine.h: this host's
 * cores, runner.h, or a Slurm cluster, slurm.h), on cpp-httplib.
 *
 * Every request carries `Authorization: Bearer TOKEN` (401 without a valid one). A tenant sees and touches only its
 * own jobs (another tenant's id is a 404, as a missing one is); admins see all. Errors are `{"error": "..."}` with
 * the status: 400 for a bad request body (job_spec.h says what), 401, 404, 429 when the tenant's queue is full.
 *   POST /v1/jobs                    {"kind", "args", "priority", "slots"} -> 201 {"id"}
 *   GET  /v1/jobs[?limit=N]          the tenant's jobs, newest first (1000 unless limit says)
 *   GET  /v1/jobs/{id}               one job: state, times, attempts, exit code, error
 *   POST /v1/jobs/{id}/cancel        -> {"id", "state"}
 *   GET  /v1/jobs/{id}/logs          its stderr (text)
 *   GET  /v1/jobs/{id}/metrics       a train job's progress (epoch, batch, loss) and, once done, its epochs' results
 *   GET  /v1/jobs/{id}/artifacts     the names of its artifacts: a train job's model.onnx (ONNX models), a sim
 *                                    job's trace.json
 *   GET  /v1/jobs/{id}/artifacts/{name}  one of them (a plain file name: no path reaches outside)
 *   GET  /v1/jobs/{id}/result        its --json output, once it has succeeded
 *   GET  /v1/jobs/{id}/placement     a succeeded sim job's plan on its simulated Dojo's tiles (tile_view.h)
 *   GET  /v1/events                  server-sent events: a `job` event whenever one of the tenant's jobs changes
 *   GET  /v1/cluster                 the host's slots and who holds them, utilization over the last minutes
 *   GET  /openapi.json               the OpenAPI 3 document of all this (no token needed)
 *   GET  /                           the dashboard (dashboard.h; no token needed for the page itself)
 * A thread ticks the engine every 100 ms: finished jobs are recorded and queued ones started (or handed to Slurm).
 */
#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace dojo::service {

struct ServeOptions {
    std::string state_dir;
    std::string host = "127.0.0.1";
    int port = 8470;
    int slots = 0;               ///< 0: one per core of this host (local)
    std::string scheduler = "local";  ///< "local": this host's cores (runner.h); "slurm": a Slurm cluster (slurm.h)
    std::string slurm_priorities = "qos";  ///< slurm: priorities as "qos" or "partitions" (slurm.h)
    double fair_share_half_life_s = 24 * 3600.0;  ///< of the tenants' recent use (local; scheduler.h)
    std::string dojo;            ///< the executable jobs run (the server's own)
};

/// Serves until `stop` becomes true (checked every 100 ms); `ready` (may be empty) is called with the bound port
/// once the server listens. IoError if the address cannot be bound.
void serve(const ServeOptions& options, const std::atomic<bool>& stop, const std::function<void(int)>& ready);

}  // namespace dojo::service
