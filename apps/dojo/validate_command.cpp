// `dojo validate`: every row of the validation table, predicted and compared (validate_command.h).
#include "validate_command.h"

#include <fmt/format.h>

#include <algorithm>
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

// Mean, median and largest |error| of some rows.
struct ErrorSummary {
    std::size_t rows = 0;
    double mean = 0, median = 0, largest = 0;
};

ErrorSummary summarise(const std::vector<sim::ValidationResult>& results, sim::RowRole role) {
    std::vector<double> errors;
    for (const sim::ValidationResult& r : results) {
        if (sim::role(r.row) == role) {
            errors.push_back(std::abs(r.error));
        }
    }
    ErrorSummary s;
    s.rows = errors.size();
    if (errors.empty()) {
        return s;
    }
    std::sort(errors.begin(), errors.end());
    double sum = 0;
    for (const double e : errors) {
        sum += e;
    }
    s.mean = sum / static_cast<double>(errors.size());
    const std::size_t mid = errors.size() / 2;
    s.median = errors.size() % 2 ? errors[mid] : (errors[mid - 1] + errors[mid]) / 2;
    s.largest = errors.back();
    return s;
}

nlohmann::json to_json(const ErrorSummary& s) {
    return {{"rows", s.rows}, {"mean_abs_error", s.mean}, {"median_abs_error", s.median}, {"max_abs_error", s.largest}};
}

void print_section(const char* title, const std::vector<sim::ValidationResult>& results, sim::RowRole role,
                   double tolerance_percent) {
    const ErrorSummary s = summarise(results, role);
    if (s.rows == 0) {
        return;
    }
    std::size_t name_width = 48, machine_width = 23;  // columns as wide as the longest row's
    for (const sim::ValidationResult& r : results) {
        name_width = std::max(name_width, r.row.name.size());
        machine_width = std::max(machine_width, r.row.machine.size());
    }
    std::cout << "\n" << title << "\n"
              << fmt::format("{:<{}} {:<{}} {:<24} {:>13} {:>13} {:>8}\n", "row", name_width, "machine",
                             machine_width, "metric", "published", "predicted", "error");
    for (const sim::ValidationResult& r : results) {
        if (sim::role(r.row) != role) {
            continue;
        }
        const machine::Dimension d = r.row.published.dimension;
        std::cout << fmt::format("{:<{}} {:<{}} {:<24} {:>13} {:>13} {:>+7.1f}%{}{}\n", r.row.name, name_width,
                                 r.row.machine, machine_width, r.row.metric, shown(r.row.published.value, d),
                                 shown(r.predicted, d), 100 * r.error,
                                 std::abs(r.error) * 100 > tolerance_percent ? "  !" : "",
                                 r.fits == false ? "  (plan does not fit)" : "");
    }
    std::cout << fmt::format("{} rows: mean |error| {:.1f}%, median {:.1f}%, largest {:.1f}%\n", s.rows, 100 * s.mean,
                             100 * s.median, 100 * s.largest);
    const auto unfit = std::count_if(results.begin(), results.end(), [&](const sim::ValidationResult& r) {
        return sim::role(r.row) == role && r.fits == false;
    });
    if (unfit > 0) {
        std::cout << fmt::format("{} of them: the simulated plan does not fit the memory of the devices that ran it, "
                                 "so the memory model is wrong there (timed as if it fitted; dojo sim with the row's "
                                 "settings shows the stages)\n", unfit);
    }
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
    std::size_t outside = 0;
    for (const sim::ValidationRow& row : rows) {
        if (!o.json_output) {
            std::cerr << fmt::format("dojo validate: {} ({}/{})\n", row.name, results.size() + 1, rows.size());
        }
        results.push_back(sim::predict(row, o.dir));
        outside += std::abs(results.back().error) * 100 > o.tolerance_percent ? 1 : 0;
    }
    const ErrorSummary predictions = summarise(results, sim::RowRole::Prediction);
    if (o.json_output) {
        nlohmann::json out = nlohmann::json::array();
        for (const sim::ValidationResult& r : results) {
            out.push_back({{"name", r.row.name}, {"kind", r.row.kind}, {"role", sim::to_string(sim::role(r.row))},
                           {"machine", r.row.machine}, {"software", r.row.software}, {"metric", r.row.metric},
                           {"measured", r.row.measured},
                           {"unit", machine::to_string(r.row.published.dimension)}, {"published", r.row.published.value},
                           {"predicted", r.predicted}, {"error", r.error},
                           {"fits", r.fits ? nlohmann::json(*r.fits) : nlohmann::json(nullptr)},
                           {"source", r.row.source}, {"note", r.row.note}});
        }
        std::cout << nlohmann::json{{"table", o.table},
                                    {"rows", out},
                                    {"predictions", to_json(predictions)},
                                    {"predictions_of_expected_figures",
                                     to_json(summarise(results, sim::RowRole::PredictionOfExpected))},
                                    {"consistency_checks", to_json(summarise(results, sim::RowRole::Consistency))},
                                    {"tolerance", o.tolerance_percent / 100},
                                    {"rows_outside_tolerance", outside}}
                         .dump(2)
                  << "\n";
    } else {
        print_section("Predictions (the simulator computes the figure; published figures that were measured):",
                      results, sim::RowRole::Prediction, o.tolerance_percent);
        print_section("Predictions of expected figures (published, but not measurements; not in the headline):",
                      results, sim::RowRole::PredictionOfExpected, o.tolerance_percent);
        print_section("Consistency checks (published totals that are sums of the preset's own inputs):", results,
                      sim::RowRole::Consistency, o.tolerance_percent);
        std::cout << "\n"
                  << (predictions.rows ? fmt::format("headline, {} predictions: mean |error| {:.1f}%, median {:.1f}%, "
                                                     "largest {:.1f}%",
                                                     predictions.rows, 100 * predictions.mean, 100 * predictions.median,
                                                     100 * predictions.largest)
                                       : std::string("no predictions among these rows"))
                  << fmt::format("; {} of {} rows outside {:g}% (marked !)\n", outside, results.size(),
                                 o.tolerance_percent);
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
        "validate", "Predict published figures (Megatron-LM and MLPerf steps, NCCL bus bandwidths, Tesla's totals) "
                    "with OpenDojo's machine presets and print the error of each: predictions (the headline: mean, "
                    "median, largest) apart from consistency checks (totals of the presets' own inputs) and from "
                    "figures that were expected rather than measured; exit 1 if any row is outside the tolerance");
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
