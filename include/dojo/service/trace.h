/** \file
 * Cluster job traces for replay (replay.h), in the layout of the public Helios traces (SenseTime's GPU clusters,
 * Hu et al., SC'21; `cluster_log.csv`): a CSV whose header names the columns, of which replay reads `job_id`, `user`,
 * `gpu_num`, `submit_time` and `duration` (seconds), and `priority` (high, normal or low) where the file has it
 * (Helios has none: every job is then normal). Times are Unix seconds or "YYYY-MM-DD HH:MM:SS" (UTC). Jobs with no
 * GPUs or no duration (cancelled before they ran) are left out, as the replay cannot place them.
 *
 * generate_trace writes such a file: a synthetic mix like a busy training cluster's (many 1-8 device jobs, a tail of
 * large ones; run times log-normal around an hour; arrivals at the rate that offers `load` times the machine), with a
 * priority column holding `high_fraction` high-priority jobs (Tesla reported 84%) and the rest normal and low.
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
};

/// A synthetic trace in the Helios layout with a priority column (see above), as CSV text.
std::string generate_trace(const TraceMix& mix);

}  // namespace dojo::service
