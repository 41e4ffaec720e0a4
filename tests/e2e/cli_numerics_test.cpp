// `dojo numerics ...` as a user runs it: output format, values, flags on stderr, JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace dojo::test {
namespace {

using nlohmann::json;

TEST(CliNumerics, VersionAndHelp) {
    const CliResult version = run_dojo({"--version"});
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_NE(version.out.find("dojo 0."), std::string::npos);
    const CliResult help = run_dojo({"numerics", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    for (const char* word : {"table", "encode", "decode", "info", "bias", "formats", "denormals", "Philox"}) {
        EXPECT_NE(help.out.find(word), std::string::npos) << word;
    }
    EXPECT_EQ(run_dojo({"numerics", "encode", "--help"}).exit_code, 0);
}

TEST(CliNumerics, EncodePrintsCodeTabValuePerLineAndFlagsOnStderr) {
    const CliResult r = run_dojo({"numerics", "encode", "--format", "cfp8_143", "--bias", "7"},
                                 "1.0\n0.3\n# a comment\n\n0x40490FDB\n496\n-0\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"0x38\t1", "0x2a\t0.3125", "0x45\t3.25", "0x7f\t480",
                                                          "0x80\t-0"}));
    EXPECT_EQ(lines_of(r.err).back(), "flags: overflow");
}

TEST(CliNumerics, EncodeSixteenBitFormatsPrintFourHexDigits) {
    const CliResult r = run_dojo({"numerics", "encode", "-f", "shp"}, "65520\n1e6\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"0x7c00\t65536", "0x7fff\t131008"}));
}

TEST(CliNumerics, StochasticEncodeIsReproducibleAndSeedDependent) {
    std::string input;
    for (int i = 0; i < 64; ++i) {
        input += "1.0625\n";
    }
    const std::vector<std::string> args = {"numerics", "encode", "-f", "cfp8_143", "-r", "stochastic", "--seed", "5"};
    const CliResult a = run_dojo(args, input);
    const CliResult b = run_dojo(args, input);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_NE(a.out.find("0x38\t1\n"), std::string::npos);  // some rounded down...
    EXPECT_NE(a.out.find("0x39\t1.125\n"), std::string::npos);  // ...and some up
    std::vector<std::string> other = args;
    other.back() = "6";
    EXPECT_NE(run_dojo(other, input).out, a.out);
}

TEST(CliNumerics, PaperDenormalsOption) {
    const CliResult r = run_dojo({"numerics", "encode", "-f", "cfp8_143", "--denormals", "paper"}, "0x3C000000\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "0x07\t0.0068359375\n");
    EXPECT_EQ(lines_of(r.err).back(), "flags: underflow");
}

TEST(CliNumerics, DecodePrintsExactValues) {
    const CliResult r = run_dojo({"numerics", "decode", "-f", "cfp8_152", "-b", "15"}, "0x7c\n7f\n0x01\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"65536", "114688", "1.52587890625e-05"}));  // below 1e-4: scientific, every digit kept
    EXPECT_EQ(lines_of(r.err).back(), "flags: denormal");
}

TEST(CliNumerics, TableListsEveryCode) {
    const CliResult r = run_dojo({"numerics", "table", "--format", "cfp8_143", "--bias", "7"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<std::string> lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 2u + 256u);  // a comment, a header, 256 codes
    EXPECT_EQ(lines[1], "code\tvalue\tclass");
    EXPECT_EQ(lines[2], "0x00\t0\tzero");
    EXPECT_EQ(lines[3], "0x01\t0.001953125\tdenormal");
    EXPECT_EQ(lines[2 + 0x38], "0x38\t1\tnormal");
    EXPECT_EQ(lines[2 + 0x7f], "0x7f\t480\tnormal");
    EXPECT_EQ(lines[2 + 0x80], "0x80\t-0\tzero");
}

TEST(CliNumerics, TableJsonIsMachineReadable) {
    const CliResult r = run_dojo({"numerics", "table", "-f", "cfp8_152", "-b", "15", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json doc = json::parse(r.out);
    EXPECT_EQ(doc["format"], "cfp8_152");
    EXPECT_EQ(doc["bias"], 15);
    ASSERT_EQ(doc["codes"].size(), 256u);
    EXPECT_EQ(doc["codes"][0x7c]["value"], 65536.0);
    EXPECT_EQ(doc["codes"][0x7c]["class"], "normal");
}

TEST(CliNumerics, InfoShowsTheRange) {
    const CliResult r = run_dojo({"numerics", "info", "-f", "cfp8_143", "-b", "7"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("max             480  (code 0x7f)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("min normal      0.015625"), std::string::npos);
    EXPECT_NE(r.out.find("min denormal    0.001953125"), std::string::npos);
    EXPECT_NE(r.out.find("epsilon         0.125"), std::string::npos);
    EXPECT_NE(r.out.find("17.91 binades"), std::string::npos);
    const json doc = json::parse(run_dojo({"numerics", "info", "-f", "shp", "-b", "63", "--json"}).out);
    EXPECT_EQ(doc["min_denormal"], std::ldexp(1.0, -72));
}

TEST(CliNumerics, EncodeJsonCarriesPerValueFlags) {
    const CliResult r = run_dojo({"numerics", "encode", "-f", "cfp8_143", "--json"}, "1\n1e9\nnan\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json doc = json::parse(r.out);
    ASSERT_EQ(doc["results"].size(), 3u);
    EXPECT_EQ(doc["results"][0]["code"], "0x38");
    EXPECT_EQ(doc["results"][1]["flags"], json::array({"overflow"}));
    EXPECT_EQ(doc["results"][2]["flags"], json::array({"invalid"}));
    EXPECT_EQ(doc["flags"], json::array({"invalid", "overflow"}));
}

TEST(CliNumerics, BiasChoosesTheFittingBias) {
    const CliResult r = run_dojo({"numerics", "bias", "-f", "cfp8_143", "--max-abs", "240", "--headroom", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(lines_of(r.out).front(), "bias 7");
    const json doc = json::parse(run_dojo({"numerics", "bias", "-f", "cfp8_152", "--max-abs", "1e-3", "--json"}).out);
    // cfp8_152's max is 1.75 * 2^(31 - bias): 0.00171 at bias 41 covers 1e-3, 0.00085 at bias 42 does not.
    EXPECT_EQ(doc["bias"], 41);
    EXPECT_EQ(doc["fits"], true);
}

TEST(CliNumerics, FormatsListsAllSix) {
    const CliResult r = run_dojo({"numerics", "formats"});
    ASSERT_EQ(r.exit_code, 0);
    for (const char* name : {"cfp8_143", "cfp8_152", "shp", "uhp", "bf16", "fp32"}) {
        EXPECT_NE(r.out.find(name), std::string::npos) << name;
    }
    EXPECT_EQ(json::parse(run_dojo({"numerics", "formats", "--json"}).out).size(), 6u);
}

}  // namespace
}  // namespace dojo::test
