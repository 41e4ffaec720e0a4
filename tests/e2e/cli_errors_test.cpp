// Bad input to `dojo` gives a one-line message saying what was wrong and how to fix it, exit code 2 for usage
// errors, and never a crash, an abort or a partial result on stdout.
#include <gtest/gtest.h>

#include "cli_runner.h"

namespace dojo::test {
namespace {

struct ErrorCase {
    std::vector<std::string> args;
    std::string input;
    std::string message;  // a substring the error must contain
};

void expect_usage_error(const ErrorCase& c) {
    const CliResult r = run_dojo(c.args, c.input);
    std::string command;
    for (const std::string& arg : c.args) {
        command += arg + " ";
    }
    EXPECT_EQ(r.exit_code, 2) << command << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find("dojo: error: "), std::string::npos) << command << "\nstderr: " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << command << "\nstderr: " << r.err;
    EXPECT_EQ(r.out, "") << command << ": nothing is printed on stdout when the input is rejected";
}

TEST(CliErrors, UnknownFormatListsTheValidOnes) {
    expect_usage_error({{"numerics", "info", "--format", "fp8"}, "", "unknown format 'fp8'; expected one of "
                                                                     "cfp8_143, cfp8_152, shp, uhp, bf16, fp32"});
}

TEST(CliErrors, BiasOutOfRange) {
    expect_usage_error({{"numerics", "info", "-f", "cfp8_143", "--bias", "64"}, "", "bias 64 is out of range"});
    expect_usage_error({{"numerics", "table", "-f", "bf16", "--bias", "7"}, "", "fixed exponent bias of 127"});
    expect_usage_error({{"numerics", "info", "-f", "shp", "--bias", "abc"}, "", "--bias"});
}

TEST(CliErrors, UnparsableInputLineIsNamed) {
    expect_usage_error({{"numerics", "encode", "-f", "cfp8_143"}, "1.0\n2.0\nbanana\n", "input line 3 'banana'"});
    expect_usage_error({{"numerics", "encode", "-f", "cfp8_143"}, "0x3f80000000\n", "input line 1"});
    expect_usage_error({{"numerics", "encode", "-f", "cfp8_143"}, "1.0 2.0\n", "input line 1 '1.0 2.0'"});
    expect_usage_error({{"numerics", "decode", "-f", "cfp8_143"}, "0x38\n0x100\n", "input line 2 '0x100'"});
    expect_usage_error({{"numerics", "decode", "-f", "shp"}, "zz\n", "expected a hex code"});
}

TEST(CliErrors, BadOptionValuesAndMissingOptions) {
    expect_usage_error({{"numerics", "encode", "-f", "cfp8_143", "-r", "up"}, "1\n", "unknown rounding 'up'"});
    expect_usage_error({{"numerics", "encode", "-f", "cfp8_143", "--denormals", "ftz"}, "1\n", "denormal scale"});
    expect_usage_error({{"numerics", "table"}, "", "--format"});
    expect_usage_error({{"numerics", "table", "-f", "fp32"}, "", "fp32 has 2^32"});
    expect_usage_error({{"numerics", "bias", "-f", "cfp8_143", "--max-abs", "nan"}, "", "max-abs"});
    expect_usage_error({{"numerics", "bias", "-f", "bf16", "--max-abs", "1"}, "", "fixed bias"});
    expect_usage_error({{"numerics", "frobnicate"}, "", "frobnicate"});
    expect_usage_error({{}, "", "subcommand"});
}

TEST(CliErrors, MachineSpecsNameWhatIsAccepted) {
    expect_usage_error({{"machine", "show", "exapodd"}, "", "unknown machine 'exapodd'; presets: cabinet, d1"});
    expect_usage_error({{"machine", "show", "superpod-h100:gpus=8"}, "", "its parameters: nodes (default 128)"});
    expect_usage_error({{"machine", "show", "superpod-a100:nodes=many"}, "", "expected a whole number"});
    expect_usage_error({{"machine", "show"}, "", "machine"});
}

TEST(CliErrors, UsageErrorsPointToHelp) {
    const CliResult r = run_dojo({"numerics", "encode", "--seed", "x", "-f", "shp"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;
}

TEST(CliErrors, OutOfRangeDecimalsBecomeInfOrZeroLikeFp32) {
    // Not an error: 1e50 is beyond FP32 and becomes +Inf (then max with overflow), 1e-50 becomes +0.
    const CliResult r = run_dojo({"numerics", "encode", "-f", "cfp8_143"}, "1e50\n-1e-50\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "0x7f\t480\n0x80\t-0\n");
}

}  // namespace
}  // namespace dojo::test
