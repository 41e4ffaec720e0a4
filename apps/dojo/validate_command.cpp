// `dojo validate`: every row of the validation table, predicted and compared (validate_command.h).
#include "validate_command.h"

#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"
#include "dojo/sim/validation.h"
#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

struct ValidateOptions {
    std::string table = sim::default_validation_table();
    std::string dir = machine::default_machines_dir();
    std::string only;
    double tolerance_percent = 10;
    bool json_output = false;
};

std::string shown(double value, machine::Dimension dimension) {
    return machine::format_quantity(machine::Quantity{value, dimension});
}

void run(const ValidateOptions& o) {
    if (!(o.tolerance_percent > 0)) {
        throw UsageError("--tolerance must be a positive percentage, got " + fmt::format("{}", o.tolerance_percent));
    }
    std::vector<sim::ValidationRow> rows = sim::load_validation_table(o.table);
    std::erase_if(rows, [&](const sim::ValidationRow& r) { return r.name.find(o.only) == std::string::npos; });
    if (rows.empty()) {
        throw UsageError("no row of " + o.table + " has '" + o.only + "' in its name");
    }
    std::vector<sim::ValidationResult> results;
    double sum = 0, largest = 0;
    std::size_t outside = 0;
    for (const sim::ValidationRow& row : rows) {
        if (!o.json_output) {
            std::cerr << fmt::format("dojo validate: {} ({}/{})\n", row.name, results.size() + 1, rows.size());
        }
        results.push_back(sim::predict(row, o.dir));
        const double e = std::abs(results.back().error);
        sum += e;
        largest = std::max(largest, e);
        outside += e * 100 > o.tolerance_percent ? 1 : 0;
    }
    const double mean = sum / static_cast<double>(results.size());
    if (o.json_output) {
        nlohmann::json out = nlohmann::json::array();
        for (const sim::ValidationResult& r : results) {
            out.push_back({{"name", r.row.name}, {"kind", r.row.kind}, {"machine", r.row.machine},
                           {"metric", r.row.metric}, {"unit", machine::to_string(r.row.published.dimension)},
                           {"published", r.row.published.value}, {"predicted", r.predicted}, {"error", r.error},
                           {"source", r.row.source}, {"note", r.row.note}});
        }
        std::cout << nlohmann::json{{"table", o.table},
                                    {"rows", out},
                                    {"mean_abs_error", mean},
                                    {"max_abs_error", largest},
                                    {"tolerance", o.tolerance_percent / 100},
                                    {"rows_outside_tolerance", outside}}
                         .dump(2)
                  << "\n";
    } else {
        std::cout << fmt::format("{:<48} {:<10} {:<24} {:>13} {:>13} {:>8}\n", "row", "machine", "metric",
                                 "published", "predicted", "error");
        for (const sim::ValidationResult& r : results) {
            const machine::Dimension d = r.row.published.dimension;
            std::cout << fmt::format("{:<48} {:<10} {:<24} {:>13} {:>13} {:>+7.1f}%{}\n", r.row.name, r.row.machine,
                                     r.row.metric,
                                     shown(r.row.published.value, d), shown(r.predicted, d), 100 * r.error,
                                     std::abs(r.error) * 100 > o.tolerance_percent ? "  !" : "");
        }
        std::cout << fmt::format("{} rows: mean |error| {:.1f}%, largest {:.1f}%; {} outside {:g}% (marked !)\n",
                                 results.size(), 100 * mean, 100 * largest, outside, o.tolerance_percent);
    }
    if (outside > 0) {
        throw Error(fmt::format("{} of {} rows are outside {:g}% of their published figures", outside,
                                results.size(), o.tolerance_percent));
    }
}

}  // namespace

void add_validate_command(CLI::App& app) {
    auto options = std::make_shared<ValidateOptions>();
    CLI::App* validate = app.add_subcommand(
        "validate", "Predict published figures (MLPerf steps, NCCL bus bandwidths, Tesla's totals) with OpenDojo's "
                    "machine presets and print the error of each; exit 1 if any row is outside the tolerance");
    validate->add_option("--table", options->table,
                         "validation table (TOML rows, docs/validation.md; default: OpenDojo's "
                         "validation/published.toml)");
    validate->add_option("--only", options->only, "only the rows whose name contains this text");
    validate->add_option("--tolerance", options->tolerance_percent,
                         "largest acceptable |error| of a row, in percent (default 10)");
    validate->add_option("--machines-dir", options->dir, "directory of machine presets (default: OpenDojo's)");
    validate->add_flag("--json", options->json_output, "print JSON (values in SI units: bytes/s, FLOP/s, s)");
    validate->callback([options] { run(*options); });
}

}  // namespace dojo::cli
