/** \file
 * Cluster job traces for replay (replay.h), in the layouts of the public GPU-cluster traces:
 *
 *   Helios (SenseTime's clusters, Hu et al., SC'21; `cluster_log.csv`): a CSV whose header names the columns, of which
 *     replay reads `job_id`, `user`, `gpu_num`, `submit_time` and `duration` (seconds), and `priority` (high, normal
 *     or low) where the file has it (Helios has none: every job is then normal).
 *   Philly (Microsoft's clusters, Jeon et al., ATC'19; `cluster_job_log`): a JSON array of jobs, each with `jobid`,
 *     `user`, `submitted_time` and `attempts` (each with `start_time`, `end_time` and `detail`, the machines it ran
 *     on with their `gpus`). A job's devices are its first attempt's GPUs, its duration the sum of its attempts' run
 *     times; a `priority` field, where present, is read as in Helios (Philly has none).
 * Times are Unix seconds or "YYYY-MM-DD HH:MM:SS" (UTC). A file whose first character is `[` is Philly's. Jobs with
 * no GPUs or no run time (cancelled before they ran) are left out, as the replay cannot place them.
 *
 * Either layout may also say what a job trains, for a replay whose durations come from `dojo sim` (sim_durations.h):
 * `model` (a catalog spec), `samples` (how many it trains on) and `batch_per_device` (default 32): columns in CSV,
 * fields in JSON. The public traces have none of them.
 *
 * generate_trace writes such a file: a synthetic mix like a busy training cluster's (many 1-8 device jobs, a tail of
 * large ones; run times log-normal around an hour; arrivals at the rate that offers `load` times the machine), with
 * `high_fraction` high-priority jobs (Tesla reported 84%) and the rest normal and low. With `models`, each job also
 * trains one of them (chosen at random) on as many samples as its duration would take at `samples_per_device_s`
 * per device: the work a job asks for, which a replay with sim durations turns into time on the machine.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dojo/service/job_spec.h"

namespace dojo::service {

struct TraceJob {
    std::string id;
    std::string user;
    int devices = 1;
    double submit_s = 0;    ///< from the trace's first submission
    double duration_s = 0;
    Priority priority = Priority::Normal;
    std::string model{};        ///< what it trains (empty: the trace does not say)
    double samples = 0;         ///< how many samples it trains on
    int batch_per_device = 32;
};

/// Reads a trace (see above), in submission order. IoError if unreadable; UsageError naming the line and column of a
/// malformed row, or a header without the columns above.
std::vector<TraceJob> read_trace(const std::string& path);

struct TraceMix {
    int jobs = 1000;
    int machine_devices = 3000;  ///< the machine it is meant for: sizes and arrival rate scale with it
    double load = 1.2;           ///< offered device-seconds per device-second of the machine
    double high_fraction = 0.84;
    std::uint64_t seed = 0;
    std::vector<std::string> models{};    ///< catalog specs the jobs train (empty: no model columns)
    double samples_per_device_s = 100;    ///< the rate that turns a job's duration into its samples
};

enum class TraceLayout : std::uint8_t { Helios, Philly };
TraceLayout parse_trace_layout(const std::string& text);  ///< "helios" or "philly"; UsageError otherwise

/// A synthetic trace (see above) in `layout`, with a priority column (Helios) or field (Philly), as text.
std::string generate_trace(const TraceMix& mix, TraceLayout layout = TraceLayout::Helios);

}  // namespace dojo::service
