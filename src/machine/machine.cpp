#include "dojo/machine/machine.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "dojo/util/error.h"

namespace dojo::machine {
namespace {

namespace fs = std::filesystem;

// Keys whose dimension the model relies on; any other key may hold any quantity.
const std::map<std::string, Dimension>& known_keys() {
    static const std::map<std::string, Dimension> keys = {
        {"clock", Dimension::Frequency},        {"sram", Dimension::Bytes},
        {"hbm", Dimension::Bytes},              {"host_memory", Dimension::Bytes},
        {"power", Dimension::Power},            {"edges", Dimension::Count},
        {"edge_bandwidth", Dimension::Bandwidth}, {"bisection_bandwidth", Dimension::Bandwidth},
        {"injection_bandwidth", Dimension::Bandwidth}, {"injection_latency", Dimension::Time},
        {"memory", Dimension::Bytes},           {"memory_bandwidth", Dimension::Bandwidth},
        {"link_bandwidth", Dimension::Bandwidth}, {"link_latency", Dimension::Time},
        {"reduce_bandwidth", Dimension::Bandwidth}, {"cache", Dimension::Bytes},
        // The input pipeline of camera-fed models (sim/data_path.h)
        {"pcie_bandwidth", Dimension::Bandwidth}, {"storage_bandwidth", Dimension::Bandwidth},
        {"storage_system_bandwidth", Dimension::Bandwidth},
        {"link_bandwidth_beyond_cache", Dimension::Bandwidth}, {"reduce_bandwidth_beyond_cache", Dimension::Bandwidth},
        // A CPU host's kernel rates (runtime = "opendojo": sim/topology.h CpuKernelRates)
        {"fused_map_time", Dimension::Time},    {"fused_divide_time", Dimension::Time},
        {"fused_exp_time", Dimension::Time},    {"fused_log_time", Dimension::Time},
        {"fused_tanh_time", Dimension::Time},   {"fused_erf_time", Dimension::Time},
        {"fused_sigmoid_time", Dimension::Time}, {"fused_sum_time", Dimension::Time},
        {"fused_memory_bandwidth", Dimension::Bandwidth}, {"copy_bandwidth", Dimension::Bandwidth},
        {"matmul_small_fp32_efficiency", Dimension::Count}, {"matmul_small_bf16_efficiency", Dimension::Count},
        {"conv_forward_fp32_32px_efficiency", Dimension::Count},
        {"conv_forward_fp32_128px_efficiency", Dimension::Count},
        {"conv_forward_fp32_512px_efficiency", Dimension::Count},
        {"conv_forward_bf16_32px_efficiency", Dimension::Count},
        {"conv_forward_bf16_128px_efficiency", Dimension::Count},
        {"conv_forward_bf16_512px_efficiency", Dimension::Count},
        {"conv_backward_data_fp32_32px_efficiency", Dimension::Count},
        {"conv_backward_data_fp32_128px_efficiency", Dimension::Count},
        {"conv_backward_data_fp32_512px_efficiency", Dimension::Count},
        {"conv_backward_data_bf16_32px_efficiency", Dimension::Count},
        {"conv_backward_data_bf16_128px_efficiency", Dimension::Count},
        {"conv_backward_data_bf16_512px_efficiency", Dimension::Count},
        {"conv_backward_filter_fp32_32px_efficiency", Dimension::Count},
        {"conv_backward_filter_fp32_128px_efficiency", Dimension::Count},
        {"conv_backward_filter_fp32_512px_efficiency", Dimension::Count},
        {"conv_backward_filter_bf16_32px_efficiency", Dimension::Count},
        {"conv_backward_filter_bf16_128px_efficiency", Dimension::Count},
        {"conv_backward_filter_bf16_512px_efficiency", Dimension::Count},
        {"pool_tiled_forward_time", Dimension::Time}, {"pool_tiled_backward_time", Dimension::Time},
        {"pool_window_forward_time", Dimension::Time}, {"pool_window_backward_time", Dimension::Time},
        {"pool_window_plain_forward_time", Dimension::Time}, {"pool_window_plain_backward_time", Dimension::Time},
        {"round_bf16_time", Dimension::Time},   {"round_cfp8_time", Dimension::Time},
        {"round_cfp8_stochastic_time", Dimension::Time}, {"round_bf16_small_time", Dimension::Time},
        {"round_cfp8_small_time", Dimension::Time}, {"round_cfp8_stochastic_small_time", Dimension::Time},
        {"transpose_tiles_time", Dimension::Time}, {"transpose_tiles_small_time", Dimension::Time},
        {"kernel_overhead", Dimension::Time},   {"matrix_call_overhead", Dimension::Time},
        {"node_overhead", Dimension::Time},     {"reference_bandwidth", Dimension::Bandwidth},
        {"reference_reduce_sum_bandwidth", Dimension::Bandwidth}, {"reference_log_softmax_bandwidth", Dimension::Bandwidth},
        {"reference_slice_bandwidth", Dimension::Bandwidth}, {"reference_reshape_bandwidth", Dimension::Bandwidth},
        {"reference_map_bandwidth", Dimension::Bandwidth},
    };
    return keys;
}

std::string where(const std::string& file, const toml::node& node, const std::string& key) {
    return file + ":" + std::to_string(node.source().begin.line) + ": " + key;
}

toml::table parse(const std::string& path, const std::string& referenced_by = "") {
    if (!fs::is_regular_file(path)) {
        throw IoError("machine description " + path + " does not exist or is not a file" +
                      (referenced_by.empty() ? "" : " (the library named by " + referenced_by + ")"));
    }
    try {
        return toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw UsageError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column) + ": not valid TOML: " +
                         std::string(e.description()));
    }
}

std::string text_of(const toml::table& table, const std::string& key, const std::string& file, bool required) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
        if (required) {
            throw UsageError(file + ": needs the key '" + key + "'");
        }
        return {};
    }
    if (!node->is_string()) {
        throw UsageError(where(file, *node, key) + " must be a string");
    }
    return *node->value<std::string>();
}

// Counts in a description have the same bound as a preset's parameters on the command line: a zone of more than a
// million children is a typo, and the tree, the topology and the strategy search all grow with it.
constexpr std::int64_t kMaxCount = 1'000'000;

std::int64_t positive_count(const toml::node& node, const std::string& what) {
    if (!node.is_integer() || *node.value<std::int64_t>() < 1 || *node.value<std::int64_t>() > kMaxCount) {
        throw UsageError(what + " must be a whole number from 1 to " + std::to_string(kMaxCount));
    }
    return *node.value<std::int64_t>();
}

// A rate or a clock of zero would make every time built from it infinite: these dimensions must be positive.
bool must_be_positive(Dimension dimension) {
    return dimension == Dimension::Frequency || dimension == Dimension::Bandwidth ||
           dimension == Dimension::FlopRate;
}

// A property's text is a quantity when it starts like a number (a sign too: "-2 TB/s" is a bad quantity, not a
// label).
bool looks_numeric(const std::string& text) {
    const auto first = text.find_first_not_of(" \t");
    return first != std::string::npos &&
           (std::isdigit(static_cast<unsigned char>(text[first])) != 0 || text[first] == '-' || text[first] == '+' ||
            text[first] == '.');
}

ZoneKind read_kind(const std::string& name, const toml::table& table, const std::string& file) {
    ZoneKind kind;
    kind.name = name;
    for (const auto& [key_node, value] : table) {
        const std::string key(key_node.str());
        const std::string at = where(file, value, "kinds." + name + "." + key);
        if (key == "description") {
            kind.description = text_of(table, key, file, false);
        } else if (key == "assumed") {
            const toml::array* list = value.as_array();
            if (list == nullptr) {
                throw UsageError(at + " must be a list of key names");
            }
            for (const toml::node& item : *list) {
                if (!item.is_string() || !table.contains(*item.value<std::string>())) {
                    throw UsageError(at + " must list keys of this kind");
                }
                kind.assumed.push_back(*item.value<std::string>());
            }
        } else if (key == "contains") {
            const toml::array* list = value.as_array();
            if (list == nullptr) {
                throw UsageError(at + " must be a list of { kind = \"...\", count = N }");
            }
            for (const toml::node& item : *list) {
                const toml::table* child = item.as_table();
                if (child == nullptr || !child->contains("kind") || !(*child)["kind"].is_string()) {
                    throw UsageError(at + ": each entry needs kind = \"...\" and count = N");
                }
                ZoneKind::Child c{*(*child)["kind"].value<std::string>(), 1, {}};
                if (const toml::node* count = child->get("count")) {
                    if (count->is_string()) {
                        c.count_parameter = *count->value<std::string>();
                    } else {
                        c.count = positive_count(*count, at + " count");
                    }
                }
                kind.contains.push_back(c);
            }
        } else if (key == "flop_per_cycle" || key == "peak") {
            const toml::table* per_precision = value.as_table();
            if (per_precision == nullptr) {
                throw UsageError(at + " must be a table by precision, e.g. { fp32 = ..., bf16 = ... }");
            }
            for (const auto& [precision, rate] : *per_precision) {
                const std::string p(precision.str());
                if (key == "flop_per_cycle") {
                    if (!rate.is_number() || *rate.value<double>() <= 0) {
                        throw UsageError(at + "." + p + " must be a positive number of FLOP per cycle");
                    }
                    kind.flop_per_cycle[p] = *rate.value<double>();
                } else {
                    const Quantity q = rate.is_string() ? parse_quantity(*rate.value<std::string>(), at + "." + p)
                                                        : Quantity{};
                    if (q.dimension != Dimension::FlopRate || q.value <= 0) {
                        throw UsageError(at + "." + p + " must be a FLOP rate such as \"312 TFLOP/s\"");
                    }
                    kind.peak_flops[p] = q.value;
                }
            }
        } else if (value.is_number()) {
            const double number = *value.value<double>();
            if (!std::isfinite(number) || number < 0) {
                throw UsageError(at + " must be a non-negative number, got " + std::to_string(number));
            }
            kind.properties[key] = Quantity{number, Dimension::Count};
        } else if (value.is_string()) {
            const std::string text = *value.value<std::string>();
            if (looks_numeric(text) || known_keys().contains(key)) {
                const Quantity q = parse_quantity(text, at);
                if (must_be_positive(q.dimension) && !(q.value > 0)) {
                    throw UsageError(at + " = \"" + text + "\": a " + std::string(to_string(q.dimension)) +
                                     " must be positive");
                }
                kind.properties[key] = q;
            } else {
                kind.labels[key] = text;
            }
        } else {
            throw UsageError(at + " must be a quantity (\"2 GHz\"), a number or a text");
        }
    }
    for (const auto& [key, dimension] : known_keys()) {
        const auto found = kind.properties.find(key);
        if (found != kind.properties.end() && found->second.dimension != dimension) {
            throw UsageError(file + ": kinds." + name + "." + key + " must be a quantity of " +
                             std::string(to_string(dimension)) + ", got one of " +
                             std::string(to_string(found->second.dimension)) + " (" + format_quantity(found->second) + ")");
        }
    }
    if (!kind.flop_per_cycle.empty() && !kind.properties.contains("clock")) {
        throw UsageError(file + ": kinds." + name + " has flop_per_cycle but no clock");
    }
    return kind;
}

Zone build_tree(const Machine& machine, const std::string& name, std::int64_t count,
                std::vector<std::string>& path, const std::string& file) {
    const std::map<std::string, ZoneKind>& kinds = machine.kinds;
    if (std::find(path.begin(), path.end(), name) != path.end()) {
        throw UsageError(file + ": the kind '" + name + "' contains itself");
    }
    const auto found = kinds.find(name);
    if (found == kinds.end()) {
        std::string known;
        for (const auto& [k, unused] : kinds) {
            known += (known.empty() ? "" : ", ") + k;
        }
        throw UsageError(file + ": no kind '" + name + "' (the library has: " + known + ")");
    }
    path.push_back(name);
    Zone zone{name, count, {}};
    for (const ZoneKind::Child& child : found->second.contains) {
        std::int64_t n = child.count;
        if (!child.count_parameter.empty()) {
            const auto parameter = machine.parameters.find(child.count_parameter);
            if (parameter == machine.parameters.end()) {
                throw UsageError(file + ": kinds." + name + " counts its " + child.kind + " zones with the parameter '" +
                                 child.count_parameter + "', which the preset " + machine.file + " does not declare");
            }
            n = parameter->second;
        }
        zone.children.push_back(build_tree(machine, child.kind, n, path, file));
    }
    path.pop_back();
    return zone;
}

std::map<std::string, std::int64_t> declared_parameters(const toml::table& preset, const std::string& file) {
    std::map<std::string, std::int64_t> parameters;
    if (const toml::table* declared = preset["parameters"].as_table()) {
        for (const auto& [key, value] : *declared) {
            parameters[std::string(key.str())] =
                positive_count(value, where(file, value, "parameters." + std::string(key.str())));
        }
    }
    return parameters;
}

}  // namespace

const ZoneKind& Machine::kind(const std::string& kind_name) const { return kinds.at(kind_name); }

std::string default_machines_dir() { return DOJO_MACHINES_DIR; }

std::vector<PresetInfo> list_presets(const std::string& dir) {
    if (!fs::is_directory(dir)) {
        throw IoError("no machine directory " + dir);
    }
    std::vector<PresetInfo> presets;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".toml") {
            const std::string file = entry.path().string();
            const toml::table preset = parse(file);
            presets.push_back({entry.path().stem().string(), text_of(preset, "description", file, false),
                               declared_parameters(preset, file)});
        }
    }
    std::sort(presets.begin(), presets.end(),
              [](const PresetInfo& a, const PresetInfo& b) { return a.name < b.name; });
    return presets;
}

Machine load_machine(const std::string& spec, const std::string& dir) {
    const std::size_t colon = spec.find(':');
    const std::string name = spec.substr(0, colon);
    const bool is_path = name.ends_with(".toml");
    const std::string file = is_path ? name : (fs::path(dir) / (name + ".toml")).string();
    if (!is_path && !fs::is_regular_file(file)) {
        std::string known;
        for (const PresetInfo& p : list_presets(dir)) {
            known += (known.empty() ? "" : ", ") + p.name;
        }
        throw UsageError("unknown machine '" + name + "'; presets: " + known +
                         " (or the path of a machine file ending in .toml)");
    }
    const toml::table preset = parse(file);

    Machine machine;
    machine.name = is_path ? fs::path(file).stem().string() : name;
    machine.file = file;
    machine.description = text_of(preset, "description", file, false);
    machine.parameters = declared_parameters(preset, file);
    if (colon != std::string::npos) {  // overrides: name=value,name=value
        std::string declared;  // for messages
        for (const auto& [k, v] : machine.parameters) {
            declared += (declared.empty() ? "" : ", ") + k + " (default " + std::to_string(v) + ")";
        }
        if (declared.empty()) {
            declared = "none";
        }
        const std::string rest = spec.substr(colon + 1);
        std::set<std::string> given;
        std::size_t at = 0;
        while (at <= rest.size()) {
            const std::size_t comma = std::min(rest.find(',', at), rest.size());
            const std::string item = rest.substr(at, comma - at);
            const std::size_t eq = item.find('=');
            if (eq == std::string::npos) {
                throw UsageError("machine spec '" + spec + "': expected name=value after ':', got '" + item +
                                 "'; parameters of " + machine.name + ": " + declared);
            }
            const std::string key = item.substr(0, eq);
            if (!machine.parameters.contains(key)) {
                throw UsageError("machine " + machine.name + " has no parameter '" + key + "'; its parameters: " +
                                 declared);
            }
            if (!given.insert(key).second) {
                throw UsageError("machine spec '" + spec + "': parameter '" + key + "' is given twice; give each "
                                 "parameter once");
            }
            const std::string value = item.substr(eq + 1);
            std::size_t used = 0;
            long long n = 0;
            try {
                n = std::stoll(value, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != value.size() || n < 1 || n > 1'000'000) {
                throw UsageError("machine parameter " + key + "=" + value + ": expected a whole number from 1 to 1000000");
            }
            machine.parameters[key] = n;
            at = comma + 1;
        }
    }

    const std::string library_name = text_of(preset, "library", file, true);
    const std::string library_file = (fs::path(file).parent_path() / library_name).string();
    const toml::table library = parse(library_file, file);
    const toml::table* kinds = library["kinds"].as_table();
    if (kinds == nullptr) {
        throw UsageError(library_file + ": needs a [kinds.NAME] table for each kind of zone");
    }
    for (const auto& [key, value] : *kinds) {
        const toml::table* table = value.as_table();
        if (table == nullptr) {
            throw UsageError(where(library_file, value, "kinds." + std::string(key.str())) + " must be a table");
        }
        machine.kinds[std::string(key.str())] = read_kind(std::string(key.str()), *table, library_file);
    }
    std::vector<std::string> path;
    machine.root = build_tree(machine, text_of(preset, "root", file, true), 1, path, library_file);
    return machine;
}

Totals totals(const Machine& machine) {
    Totals t;
    std::vector<std::string> order;  // kinds in tree order, each once
    // Per instance of `zone`: its own `key` if it has one (it covers the whole subtree, as a tray's power covers its
    // tiles), else the sum over its children (power; injection bandwidth under a fat tree).
    std::function<double(const Zone&, const char*)> covering = [&](const Zone& zone, const char* key) {
        const ZoneKind& kind = machine.kind(zone.kind);
        const auto own = kind.properties.find(key);
        if (own != kind.properties.end()) {
            return own->second.value;
        }
        double sum = 0;
        for (const Zone& child : zone.children) {
            sum += static_cast<double>(child.count) * covering(child, key);
        }
        return sum;
    };
    // Walks the tree with `instances` = how many of this zone the whole machine holds.
    std::function<void(const Zone&, std::int64_t)> walk = [&](const Zone& zone, std::int64_t instances) {
        const ZoneKind& kind = machine.kind(zone.kind);
        if (std::find(order.begin(), order.end(), zone.kind) == order.end()) {
            order.push_back(zone.kind);
        }
        t.units[zone.kind] += instances;
        const auto n = static_cast<double>(instances);
        auto property = [&](const char* key) {
            const auto found = kind.properties.find(key);
            return found == kind.properties.end() ? 0.0 : found->second.value;
        };
        if (kind.properties.contains("clock")) {
            for (const auto& [precision, per_cycle] : kind.flop_per_cycle) {
                t.peak_flops[precision] += n * per_cycle * property("clock");
            }
        }
        for (const auto& [precision, rate] : kind.peak_flops) {
            t.peak_flops[precision] += n * rate;
        }
        t.sram_bytes += n * property("sram");
        t.device_memory_bytes += n * (property("hbm") + property("memory"));
        t.host_memory_bytes += n * property("host_memory");
        for (const Zone& child : zone.children) {
            walk(child, instances * child.count);
        }
    };
    walk(machine.root, 1);
    t.power_watts = covering(machine.root, "power");

    std::function<const Zone*(const Zone&, const std::string&)> find = [&](const Zone& zone, const std::string& name) -> const Zone* {
        if (zone.kind == name) {
            return &zone;
        }
        for (const Zone& child : zone.children) {
            if (const Zone* z = find(child, name)) {
                return z;
            }
        }
        return nullptr;
    };
    for (const std::string& name : order) {
        const ZoneKind& kind = machine.kind(name);
        const auto& p = kind.properties;
        if (p.contains("edges") && p.contains("edge_bandwidth")) {
            t.bandwidths.push_back({name, "off-" + name, p.at("edges").value * p.at("edge_bandwidth").value});
        }
        if (p.contains("bisection_bandwidth")) {
            t.bandwidths.push_back({name, "bisection", p.at("bisection_bandwidth").value});
        }
        if (p.contains("injection_bandwidth")) {
            t.bandwidths.push_back({name, "injection", p.at("injection_bandwidth").value});
        }
        const auto topology = kind.labels.find("topology");
        if (topology != kind.labels.end() && topology->second == "fat-tree") {
            // A non-blocking fat tree carries half of all injection bandwidth across any bisection.
            t.bandwidths.push_back({name, "bisection (non-blocking fat tree)", covering(*find(machine.root, name), "injection_bandwidth") / 2});
        }
    }
    return t;
}

}  // namespace dojo::machine
