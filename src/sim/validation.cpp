// The validation table (validation.h): reading rows, and predicting each with the simulator or the machine totals.
#include "dojo/sim/validation.h"

#include <toml++/toml.h>

#include <filesystem>
#include <numeric>

#include "dojo/compiler/plan.h"
#include "dojo/runtime/gradient_sync.h"
#include "dojo/machine/machine.h"
#include "dojo/machine/software.h"
#include "dojo/sim/network.h"
#include "dojo/sim/op_time.h"
#include "dojo/sim/simulate.h"
#include "dojo/sim/topology.h"
#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

using machine::Dimension;

// The dimension `metric` of a `kind` row is in; UsageError naming `where` for a metric the kind does not have.
Dimension metric_dimension(const std::string& kind, const std::string& metric, const std::string& where) {
    auto starts = [&](const char* prefix) { return metric.rfind(prefix, 0) == 0; };
    if (kind == "step") {
        if (metric == "samples_per_s") {
            return Dimension::Count;
        }
        if (metric == "step_time") {
            return Dimension::Time;
        }
        if (metric == "flops_per_device") {
            return Dimension::FlopRate;
        }
        throw UsageError(where + ": metric '" + metric + "' is not one of a step row's: samples_per_s, step_time, "
                                                         "flops_per_device");
    }
    if (kind == "allreduce") {
        if (metric == "bus_bandwidth") {
            return Dimension::Bandwidth;
        }
        throw UsageError(where + ": metric '" + metric + "' is not an allreduce row's: bus_bandwidth");
    }
    if (starts("peak_flops.")) {
        return Dimension::FlopRate;
    }
    if (metric == "sram" || metric == "device_memory") {
        return Dimension::Bytes;
    }
    if (metric == "power") {
        return Dimension::Power;
    }
    if (starts("units.")) {
        return Dimension::Count;
    }
    if (starts("bandwidth.")) {
        return Dimension::Bandwidth;
    }
    throw UsageError(where + ": metric '" + metric + "' is not a machine row's: peak_flops.<precision>, sram, "
                                                     "device_memory, power, units.<kind>, bandwidth.<zone>.<what>");
}

class RowReader {
public:
    RowReader(const toml::table& table, std::string where) : table_(table), where_(std::move(where)) {}

    std::string text(const std::string& key, bool required, std::string fallback = "") const {
        const toml::node* node = table_.get(key);
        if (node == nullptr) {
            if (required) {
                throw UsageError(where_ + ": the row needs the key '" + key + "'");
            }
            return fallback;
        }
        if (!node->is_string()) {
            throw UsageError(where_ + ": '" + key + "' must be a string");
        }
        return std::string(*node->value<std::string>());
    }

    bool flag(const std::string& key, bool fallback) const {
        const toml::node* node = table_.get(key);
        if (node == nullptr) {
            return fallback;
        }
        if (!node->is_boolean()) {
            throw UsageError(where_ + ": '" + key + "' must be true or false");
        }
        return *node->value<bool>();
    }

    std::int64_t integer(const std::string& key) const {
        const toml::node* node = table_.get(key);
        if (node == nullptr || !node->is_integer() || *node->value<std::int64_t>() < 1) {
            throw UsageError(where_ + ": the row needs '" + key + "', a positive integer");
        }
        return *node->value<std::int64_t>();
    }

    machine::Quantity quantity(const std::string& key, Dimension dimension) const {
        const toml::node* node = table_.get(key);
        if (node == nullptr) {
            throw UsageError(where_ + ": the row needs the key '" + key + "'");
        }
        machine::Quantity q;
        if (node->is_string()) {
            q = machine::parse_quantity(*node->value<std::string>(), where_ + ": " + key);
        } else if (node->is_number()) {
            q = machine::Quantity{*node->value<double>(), Dimension::Count};
        } else {
            throw UsageError(where_ + ": '" + key + "' must be a quantity, e.g. \"230 GB/s\" or 27176");
        }
        if (q.dimension != dimension) {
            throw UsageError(where_ + ": '" + key + "' has the dimension " +
                             std::string(machine::to_string(q.dimension)) + "; this row's metric is in " +
                             std::string(machine::to_string(dimension)));
        }
        if (!(q.value > 0)) {
            throw UsageError(where_ + ": '" + key + "' must be positive");
        }
        return q;
    }

private:
    const toml::table& table_;
    std::string where_;
};

double machine_metric(const ValidationRow& row, const machine::Machine& m) {
    const machine::Totals t = machine::totals(m);
    const std::string& metric = row.metric;
    auto lookup = [&](const auto& map, const std::string& key, const char* what) {
        const auto it = map.find(key);
        if (it == map.end()) {
            throw UsageError(row.where + ": machine '" + row.machine + "' has no " + what + " '" + key + "'");
        }
        return static_cast<double>(it->second);
    };
    if (metric.rfind("peak_flops.", 0) == 0) {
        return lookup(t.peak_flops, metric.substr(11), "precision");
    }
    if (metric.rfind("units.", 0) == 0) {
        return lookup(t.units, metric.substr(6), "zone kind");
    }
    if (metric == "sram") {
        return t.sram_bytes;
    }
    if (metric == "device_memory") {
        return t.device_memory_bytes;
    }
    if (metric == "power") {
        return t.power_watts;
    }
    const std::string rest = metric.substr(10);  // bandwidth.<zone>.<what>
    const std::size_t dot = rest.find('.');
    for (const machine::Bandwidth& b : t.bandwidths) {
        if (dot != std::string::npos && b.zone == rest.substr(0, dot) && b.what == rest.substr(dot + 1)) {
            return b.bytes_per_second;
        }
    }
    throw UsageError(row.where + ": machine '" + row.machine + "' has no bandwidth '" + rest +
                     "' (dojo machine show " + row.machine + " lists them as zone and what)");
}

}  // namespace

std::string default_validation_table() {
    return (std::filesystem::path(machine::default_machines_dir()).parent_path() / "validation" / "published.toml")
        .string();
}

std::vector<ValidationRow> load_validation_table(const std::string& path) {
    if (!std::filesystem::is_regular_file(path)) {
        throw IoError("validation table " + path + " does not exist or is not a file");
    }
    toml::table doc;
    try {
        doc = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw UsageError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column) + ": not valid TOML: " +
                         std::string(e.description()));
    }
    const toml::array* rows = doc["row"].as_array();
    if (rows == nullptr || rows->empty()) {
        throw UsageError(path + ": no rows; each row is a [[row]] table (docs/validation.md)");
    }
    std::vector<ValidationRow> out;
    for (const toml::node& node : *rows) {
        const toml::table* table = node.as_table();
        const std::string where = path + ":" + std::to_string(node.source().begin.line);
        if (table == nullptr) {
            throw UsageError(where + ": a row must be a [[row]] table");
        }
        const RowReader read(*table, where);
        ValidationRow row;
        row.where = where;
        row.name = read.text("name", true);
        row.kind = read.text("kind", true);
        if (row.kind != "step" && row.kind != "allreduce" && row.kind != "machine") {
            throw UsageError(where + ": kind '" + row.kind + "' is not one of step, allreduce, machine");
        }
        row.machine = read.text("machine", true);
        row.metric = read.text("metric", true);
        row.published = read.quantity("value", metric_dimension(row.kind, row.metric, where));
        row.source = read.text("source", true);
        row.note = read.text("note", false);
        row.measured = read.flag("measured", true);
        row.software = read.text("software", false);
        if (!row.measured && row.note.empty()) {
            throw UsageError(where + ": a row with measured = false needs a note saying what its figure is");
        }
        if (row.kind == "step") {
            row.model = read.text("model", true);
            row.batch = read.integer("batch");
            row.precision = read.text("precision", false, "bf16");
            row.strategy = read.text("strategy", true);
            row.optimizer = read.text("optimizer", false, "adamw");
            if (row.optimizer != "sgd" && row.optimizer != "adamw") {
                throw UsageError(where + ": optimizer '" + row.optimizer + "' is not sgd or adamw");
            }
            row.grad_compression = read.text("grad_compression", false, "none");
            try {
                runtime::parse_wire_format(row.grad_compression);
            } catch (const UsageError& e) {
                throw UsageError(where + ": grad_compression: " + e.what());
            }
        } else if (row.kind == "allreduce") {
            row.devices = read.integer("devices");
            row.bytes = read.quantity("bytes", Dimension::Bytes).value;
        }
        out.push_back(std::move(row));
    }
    return out;
}

RowRole role(const ValidationRow& row) {
    if (row.kind == "machine") {
        return RowRole::Consistency;
    }
    return row.measured ? RowRole::Prediction : RowRole::PredictionOfExpected;
}

const char* to_string(RowRole r) {
    switch (r) {
        case RowRole::Consistency: return "consistency";
        case RowRole::Prediction: return "prediction";
        case RowRole::PredictionOfExpected: return "prediction of an expected figure";
    }
    return "";
}

ValidationResult predict(const ValidationRow& row, const std::string& machines_dir) {
    ValidationResult r;
    r.row = row;
    machine::Machine m = machine::load_machine(row.machine, machines_dir);
    if (!row.software.empty()) {
        try {
            machine::apply_software(m, machine::load_software(row.software, machines_dir));
        } catch (const UsageError& e) {
            throw UsageError(row.where + ": software: " + e.what());
        }
    }
    if (row.kind == "machine") {
        r.predicted = machine_metric(row, m);
    } else if (row.kind == "allreduce") {
        const Topology topology = derive_topology(m);
        if (row.devices < 2 || row.devices > topology.device.count) {
            throw UsageError(row.where + ": devices must be 2 to " + std::to_string(topology.device.count) +
                             " on " + row.machine);
        }
        std::vector<std::int64_t> members(static_cast<std::size_t>(row.devices));
        std::iota(members.begin(), members.end(), 0);
        Network network(topology);
        const std::size_t handle = network.all_reduce(members, row.bytes);
        const double seconds = network.evaluate()[handle].seconds;
        const auto n = static_cast<double>(row.devices);
        r.predicted = row.bytes / seconds * 2 * (n - 1) / n;
    } else {
        const autodiff::OptimizerConfig optimizer = autodiff::optimizer_named(row.optimizer);
        const Topology topology = derive_topology(m);
        const compiler::Precision precision = compiler::parse_precision(row.precision);
        compiler::Plan plan = compiler::make_plan(row.model, row.batch, compiler::parse_strategy(row.strategy),
                                                  optimizer, stage_cost(topology.device, precision), precision);
        plan.gradient_wire_bytes =
            static_cast<double>(runtime::wire_bytes_per_element(runtime::parse_wire_format(row.grad_compression)));
        const SimResult s = simulate(plan, topology);
        r.fits = s.fits;
        if (row.metric == "samples_per_s") {
            r.predicted = s.samples_per_s;
        } else if (row.metric == "step_time") {
            r.predicted = s.step_s;
        } else {
            r.predicted = s.achieved_flops / static_cast<double>(s.devices_used);
        }
    }
    r.error = (r.predicted - row.published.value) / row.published.value;
    return r;
}

}  // namespace dojo::sim
