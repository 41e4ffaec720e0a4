// `dojo machine`: list the presets, show one machine with its derived totals (text or JSON).
#include "machine_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "dojo/machine/machine.h"
#include "dojo/machine/software.h"

namespace dojo::cli {
namespace {

using json = nlohmann::json;
using machine::Dimension;
using machine::Quantity;

struct MachineOptions {
    std::string spec;
    std::string dir = machine::default_machines_dir();
    bool json_output = false;
};

std::string with_commas(std::int64_t n) {
    std::string digits = std::to_string(n);
    for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) {
        digits.insert(static_cast<std::size_t>(at), ",");
    }
    return digits;
}

bool is_assumed(const machine::ZoneKind& kind, const std::string& key) {
    return std::find(kind.assumed.begin(), kind.assumed.end(), key) != kind.assumed.end();
}

std::string describe_properties(const machine::ZoneKind& kind) {
    std::string out;
    auto add = [&](const std::string& item) { out += (out.empty() ? "" : ", ") + item; };
    for (const auto& [precision, per_cycle] : kind.flop_per_cycle) {
        add(fmt::format("{} {} FLOP/cycle", precision, per_cycle));
    }
    for (const auto& [precision, rate] : kind.peak_flops) {
        add(precision + " " + machine::format_quantity({rate, Dimension::FlopRate}));
    }
    for (const auto& [key, q] : kind.properties) {
        add(key + " " + machine::format_quantity(q) + (is_assumed(kind, key) ? " (assumed)" : ""));
    }
    for (const auto& [key, text] : kind.labels) {
        add(key + " " + text);
    }
    return out;
}

json zone_json(const machine::Machine& m, const machine::Zone& zone) {
    const machine::ZoneKind& kind = m.kind(zone.kind);
    json properties = json::object();
    for (const auto& [key, q] : kind.properties) {
        properties[key] = {{"value", q.value},
                           {"dimension", machine::to_string(q.dimension)},
                           {"text", machine::format_quantity(q)},
                           {"assumed", is_assumed(kind, key)}};
    }
    for (const auto& [key, text] : kind.labels) {
        properties[key] = {{"text", text}, {"assumed", is_assumed(kind, key)}};
    }
    json children = json::array();
    for (const machine::Zone& child : zone.children) {
        children.push_back(zone_json(m, child));
    }
    return {{"kind", zone.kind},
            {"count", zone.count},
            {"description", kind.description},
            {"flop_per_cycle", kind.flop_per_cycle},
            {"peak_flops", kind.peak_flops},
            {"properties", properties},
            {"children", children}};
}

void print_zone(const machine::Machine& m, const machine::Zone& zone, int depth, std::vector<std::string>& shown) {
    const std::string label = fmt::format("{:{}}{} x{}", "", 2 * depth + 2, zone.kind, with_commas(zone.count));
    const bool first = std::find(shown.begin(), shown.end(), zone.kind) == shown.end();
    std::string details = first ? describe_properties(m.kind(zone.kind)) : "(as above)";
    shown.push_back(zone.kind);
    std::cout << fmt::format("{:<24} {}\n", label, details);
    for (const machine::Zone& child : zone.children) {
        print_zone(m, child, depth + 1, shown);
    }
}

void show(const MachineOptions& o) {
    const machine::Machine m = machine::load_machine(o.spec, o.dir);
    const machine::Totals t = machine::totals(m);
    if (o.json_output) {
        json bandwidths = json::array();
        for (const machine::Bandwidth& b : t.bandwidths) {
            bandwidths.push_back({{"zone", b.zone}, {"what", b.what}, {"bytes_per_second", b.bytes_per_second}});
        }
        std::cout << json{{"name", m.name},
                          {"description", m.description},
                          {"file", m.file},
                          {"parameters", m.parameters},
                          {"zones", zone_json(m, m.root)},
                          {"totals",
                           {{"units", t.units},
                            {"peak_flops", t.peak_flops},
                            {"sram_bytes", t.sram_bytes},
                            {"device_memory_bytes", t.device_memory_bytes},
                            {"host_memory_bytes", t.host_memory_bytes},
                            {"power_watts", t.power_watts},
                            {"bandwidths", bandwidths}}}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::cout << m.name << ": " << m.description << "\n  from " << m.file << "\n";
    if (!m.parameters.empty()) {
        std::string list;
        for (const auto& [k, v] : m.parameters) {
            list += (list.empty() ? "" : ", ") + k + "=" + std::to_string(v);
        }
        std::cout << "  parameters: " << list << "\n";
    }
    std::cout << "\nzones (count per parent; properties per instance):\n";
    std::vector<std::string> shown;
    print_zone(m, m.root, 0, shown);

    std::cout << "\ntotals:\n";
    std::vector<std::pair<std::string, std::int64_t>> units(t.units.begin(), t.units.end());
    std::stable_sort(units.begin(), units.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string list;
    for (const auto& [kind, n] : units) {
        list += (list.empty() ? "" : ", ") + with_commas(n) + " " + kind;
    }
    std::cout << fmt::format("  {:<14} {}\n", "units", list);
    list.clear();
    for (const auto& [precision, rate] : t.peak_flops) {
        list += (list.empty() ? "" : ", ") + precision + " " + machine::format_quantity({rate, Dimension::FlopRate});
    }
    std::cout << fmt::format("  {:<14} {}\n", "peak", list.empty() ? "none" : list);
    auto bytes = [](double b) { return b > 0 ? machine::format_quantity({b, Dimension::Bytes}) : std::string("none"); };
    std::cout << fmt::format("  {:<14} {}\n", "SRAM", bytes(t.sram_bytes));
    std::cout << fmt::format("  {:<14} {}\n", "device memory", bytes(t.device_memory_bytes));
    std::cout << fmt::format("  {:<14} {}\n", "host memory", bytes(t.host_memory_bytes));
    std::cout << fmt::format("  {:<14} {}\n", "power",
                             t.power_watts > 0 ? machine::format_quantity({t.power_watts, Dimension::Power}) : "unknown");
    for (const machine::Bandwidth& b : t.bandwidths) {
        std::cout << fmt::format("  {:<14} {} per {}\n", b.what,
                                 machine::format_quantity({b.bytes_per_second, Dimension::Bandwidth}), b.zone);
    }
    bool any_assumed = false;
    for (const auto& [name, kind] : m.kinds) {
        any_assumed = any_assumed || (!kind.assumed.empty() && t.units.contains(name));
    }
    if (any_assumed) {
        std::cout << "\n(assumed): not published by the vendor; the default is explained in the library file.\n";
    }
}

void list(const MachineOptions& o) {
    const std::vector<machine::PresetInfo> presets = machine::list_presets(o.dir);
    if (o.json_output) {
        json out = json::array();
        for (const machine::PresetInfo& p : presets) {
            out.push_back({{"name", p.name}, {"description", p.description}, {"parameters", p.parameters}});
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    for (const machine::PresetInfo& p : presets) {
        std::string parameters;
        for (const auto& [k, v] : p.parameters) {
            parameters += fmt::format(":{}={}", k, v);
        }
        std::cout << fmt::format("{:<28} {}\n", p.name + parameters, p.description);
    }
    const std::vector<machine::Software> stacks = machine::list_software(o.dir);
    if (!stacks.empty()) {
        std::cout << "\nsoftware stacks the GPUs can run (dojo sim --software NAME; machines/software):\n";
        for (const machine::Software& s : stacks) {
            std::cout << fmt::format("{:<28} {}\n", s.name, s.description);
        }
    }
}

}  // namespace

void add_machine_command(CLI::App& app) {
    auto options = std::make_shared<MachineOptions>();
    CLI::App* machine = app.add_subcommand("machine", "Machine descriptions: Dojo from one D1 to many ExaPODs, GPU clusters");
    machine->require_subcommand(1);
    CLI::App* list_command = machine->add_subcommand("list", "List the machine presets and their parameters (defaults), and the software stacks GPUs can run");
    list_command->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    list_command->add_flag("--json", options->json_output, "print JSON");
    list_command->callback([options] { list(*options); });
    CLI::App* show_command = machine->add_subcommand(
        "show", "Show a machine's zones and what it adds up to: peak FLOP/s per precision, SRAM, memory, "
                "bandwidths, power");
    show_command
        ->add_option("machine", options->spec,
                     "a preset (see `dojo machine list`), with parameters as NAME:param=value[,param=value] "
                     "(e.g. superpod-h100:nodes=64), or the path of a machine file (.toml)")
        ->required();
    show_command->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    show_command->add_flag("--json", options->json_output, "print JSON (quantities in SI units: B, B/s, FLOP/s, W)");
    show_command->footer("Unpublished quantities are marked (assumed); docs/machines.md describes the file format.");
    show_command->callback([options] { show(*options); });
}

}  // namespace dojo::cli
