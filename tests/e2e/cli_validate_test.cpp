// `dojo validate` run as a user would: the shipped table, JSON, the exit code as a gate, and bad tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

std::string write_table(const std::string& name, const std::string& text) {
    const std::string path = (std::filesystem::temp_directory_path() / name).string();
    std::ofstream(path) << text;
    return path;
}

// Predictions are told apart from consistency checks and from figures that were not measured, and only predictions
// make the headline.
TEST(CliValidate, TheHeadlineIsOverPredictionsOfMeasuredFigures) {
    const CliResult r = run_dojo({"validate", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    std::size_t predictions = 0, unfit = 0;
    std::vector<double> errors;
    for (const auto& row : j["rows"]) {
        const std::string role = row["role"];
        if (row["kind"] == "machine") {
            EXPECT_EQ(role, "consistency") << row.dump();
        } else if (!row["measured"].get<bool>()) {  // the NCCL maintainer's expected bus bandwidths
            EXPECT_EQ(role, "prediction of an expected figure") << row.dump();
            EXPECT_FALSE(row["note"].get<std::string>().empty());
        } else {
            EXPECT_EQ(role, "prediction") << row.dump();
        }
        if (role == "prediction") {
            ++predictions;
            errors.push_back(std::abs(row["error"].get<double>()));
        }
        // Whether the simulated plan fits the devices that ran it: said for step rows, which have a plan, only.
        EXPECT_EQ(row["fits"].is_boolean(), row["kind"] == "step") << row.dump();
        unfit += row["fits"].is_boolean() && !row["fits"].get<bool>() ? 1 : 0;
        if (row["name"] == "MLPerf v3.0 GPT-3 175B, 512x H100, FP8, tp=4 pp=8") {
            EXPECT_TRUE(row["fits"].get<bool>());
        }
    }
    ASSERT_GE(predictions, 14u);
    EXPECT_EQ(j["predictions"]["rows"], predictions);
    double sum = 0;
    for (const double e : errors) {
        sum += e;
    }
    EXPECT_NEAR(j["predictions"]["mean_abs_error"].get<double>(), sum / static_cast<double>(errors.size()), 1e-12);
    EXPECT_DOUBLE_EQ(j["predictions"]["max_abs_error"].get<double>(), *std::max_element(errors.begin(), errors.end()));
    EXPECT_EQ(j["consistency_checks"]["rows"], 12);
    const CliResult text = run_dojo({"validate"});
    EXPECT_NE(text.out.find("headline, " + std::to_string(predictions) + " predictions"), std::string::npos) << text.out;
    std::size_t marked = 0;
    for (std::size_t at = text.out.find("(plan does not fit)"); at != std::string::npos;
         at = text.out.find("(plan does not fit)", at + 1)) {
        ++marked;
    }
    EXPECT_EQ(marked, unfit) << text.out;
}

// Every row of the shipped table is within 10% of what was published (the tolerance is the test); their JSON says
// so row by row.
TEST(CliValidate, EveryShippedRowIsWithinTenPercent) {
    for (const char* only : {"D1", "ExaPOD", "Training tile", "System tray", "NCCL", "MLPerf", "Megatron"}) {
        const CliResult r = run_dojo({"validate", "--only", only, "--json"});
        ASSERT_EQ(r.exit_code, 0) << only << ": " << r.err << r.out;
        const nlohmann::json j = nlohmann::json::parse(r.out);
        ASSERT_FALSE(j["rows"].empty());
        for (const auto& row : j["rows"]) {
            EXPECT_LE(std::abs(row["error"].get<double>()), 0.10) << row.dump();
            EXPECT_NEAR(row["predicted"].get<double>(),
                        row["published"].get<double>() * (1 + row["error"].get<double>()), 1e-6 *
                        row["predicted"].get<double>());
            EXPECT_TRUE(row["source"].get<std::string>().starts_with("https://")) << row.dump();
        }
        EXPECT_EQ(j["rows_outside_tolerance"], 0);
    }
}

// A row outside the tolerance is marked, counted, and makes the exit code 1: the command can gate a script.
TEST(CliValidate, ARowOutsideTheToleranceFailsTheRun) {
    const std::string table = write_table("dojo_validate_off.toml", R"(
[[row]]
name = "a D1 that is said to be twice as fast"
kind = "machine"
machine = "d1"
metric = "peak_flops.bf16"
value = "724 TFLOP/s"
source = "https://example.org/made-up"
)");
    CliResult r = run_dojo({"validate", "--table", table});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("-49.9%  !"), std::string::npos) << r.out;  // 362.4 of 724
    EXPECT_NE(r.err.find("1 of 1 rows are outside 10%"), std::string::npos) << r.err;
    r = run_dojo({"validate", "--table", table, "--tolerance", "60"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliValidate, BadTablesGetTheirFileLineAndKey) {
    CliResult r = run_dojo({"validate", "--table", write_table("dojo_validate_bad.toml", "[[row]]\nname = \n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("dojo_validate_bad.toml:2:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not valid TOML"), std::string::npos) << r.err;
    const std::string head = "[[row]]\nname = \"x\"\nkind = \"machine\"\nmachine = \"d1\"\nsource = \"https://x\"\n";
    r = run_dojo({"validate", "--table", write_table("dojo_validate_metric.toml",
                                                     head + "metric = \"speed\"\nvalue = \"1 GB/s\"\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("metric 'speed' is not a machine row's"), std::string::npos) << r.err;
    r = run_dojo({"validate", "--table", write_table("dojo_validate_unit.toml",
                                                     head + "metric = \"sram\"\nvalue = \"1 GB/s\"\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("'value' has the dimension bandwidth; this row's metric is in bytes"), std::string::npos) << r.err;
    r = run_dojo({"validate", "--table", write_table("dojo_validate_missing.toml",
                                                     "[[row]]\nname = \"x\"\nkind = \"step\"\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("dojo_validate_missing.toml:1: the row needs the key 'machine'"), std::string::npos)
        << r.err;
    r = run_dojo({"validate", "--table", write_table("dojo_validate_unsaid.toml",
        "[[row]]\nname = \"x\"\nkind = \"machine\"\nmachine = \"d1\"\nmetric = \"sram\"\nvalue = \"440 MiB\"\n"
        "source = \"https://example.org\"\nmeasured = false\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("measured = false needs a note"), std::string::npos) << r.err;
    const std::string step = "[[row]]\nname = \"x\"\nkind = \"step\"\nmachine = \"dgx-h100\"\nmodel = \"mlp\"\n"
                             "batch = 8\nstrategy = \"dp=8\"\nmetric = \"samples_per_s\"\nvalue = 1\n"
                             "source = \"https://x\"\n";
    r = run_dojo({"validate", "--table", write_table("dojo_validate_software.toml", step + "software = \"nope\"\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("dojo_validate_software.toml:1: software: unknown software stack 'nope'; the stacks are "
                         "megatron-lm-2021, nemo-te-2023"),
              std::string::npos)
        << r.err;
    r = run_dojo({"validate", "--table", write_table("dojo_validate_wire.toml", step + "grad_compression = \"fp16\"\n")});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("dojo_validate_wire.toml:1: grad_compression:"), std::string::npos) << r.err;
    r = run_dojo({"validate", "--table", "/nonexistent/table.toml"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
    r = run_dojo({"validate", "--only", "no row has this name"});
    EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace dojo::test
