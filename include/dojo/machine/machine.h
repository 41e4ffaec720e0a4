/** \file
 * Machine descriptions: a machine is a tree of zones (node in D1 in tile in tray in cabinet in ExaPOD; GPU in DGX in
 * SuperPOD), each zone an instance of a kind whose properties carry units (machine/quantity.h). Kinds live in
 * libraries (the TOML files in machines/lib); a preset (machines/NAME.toml) names a library, the root kind and the values of
 * its parameters (counts that vary, such as a SuperPOD's nodes). docs/machines.md describes the format.
 *
 * A spec names a preset and may override its parameters: "superpod-h100:nodes=64", "exapod-x7:pods=3"; or it is
 * the path of a preset file. Unknown presets, parameters, kinds, keys of the wrong dimension and bad counts are
 * UsageErrors that say what is accepted.
 *
 * totals() derives what the machine adds up to: units of each kind, peak FLOP/s per precision (clock x
 * flop_per_cycle, or peak), SRAM, device memory (HBM) and host memory, off-zone and bisection bandwidths, power
 * (a zone's `power` covers its whole subtree; otherwise its children's powers add up).
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dojo/machine/quantity.h"

namespace dojo::machine {

struct ZoneKind {
    std::string name;
    std::string description;
    std::map<std::string, Quantity> properties;      ///< by key, e.g. "clock", "sram", "edge_bandwidth"
    std::map<std::string, std::string> labels;       ///< text-valued keys, e.g. "topology" = "fat-tree"
    std::map<std::string, double> flop_per_cycle;    ///< by precision
    std::map<std::string, double> peak_flops;        ///< by precision, FLOP/s
    std::vector<std::string> assumed;                ///< keys that are not published (defaults, see the file)
    struct Child {
        std::string kind;
        std::int64_t count = 1;
        std::string count_parameter;  ///< non-empty: the count is this parameter of the preset
    };
    std::vector<Child> contains;
};

/// One zone of the tree: `count` instances of `kind` in each instance of the parent.
struct Zone {
    std::string kind;
    std::int64_t count = 1;
    std::vector<Zone> children;
};

struct Machine {
    std::string name;         ///< the preset's name
    std::string description;
    std::string file;         ///< the preset file it came from
    std::map<std::string, std::int64_t> parameters;  ///< after overrides
    std::string software;     ///< the software stack its GPUs run (machine/software.h apply_software); empty: none
    std::map<std::string, ZoneKind> kinds;            ///< the library's kinds (those the tree uses and the rest)
    Zone root;

    const ZoneKind& kind(const std::string& name) const;
};

/// The directory of the presets shipped with OpenDojo (the source tree's machines/).
std::string default_machines_dir();

struct PresetInfo {
    std::string name;
    std::string description;
    std::map<std::string, std::int64_t> parameters;  ///< defaults
};
/// The presets in `dir` (each NAME.toml there), sorted by name.
std::vector<PresetInfo> list_presets(const std::string& dir);

/// Loads "NAME[:param=value,...]" from `dir`, or a preset file by path (a spec ending in .toml).
Machine load_machine(const std::string& spec, const std::string& dir);

struct Bandwidth {
    std::string zone;   ///< the kind it belongs to
    std::string what;   ///< "off-tile", "bisection", "injection"...
    double bytes_per_second = 0;  ///< per instance of the zone
};

struct Totals {
    std::map<std::string, std::int64_t> units;        ///< instances of each kind in the whole machine
    std::map<std::string, double> peak_flops;         ///< by precision, whole machine, FLOP/s
    double sram_bytes = 0;
    double device_memory_bytes = 0;                   ///< HBM of DIPs and GPUs
    double host_memory_bytes = 0;
    double power_watts = 0;
    std::vector<Bandwidth> bandwidths;                ///< per zone kind, in tree order
};

Totals totals(const Machine& machine);

}  // namespace dojo::machine
