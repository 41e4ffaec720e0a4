// Options and standard input: empty values, negative counts and out-of-range numbers are named, never taken as a
// default or wrapped around; echoed input is printable and short.
#include <gtest/gtest.h>

#include "error_case.h"

namespace dojo::test {
namespace {

TEST(OptionErrors, EmptyValuesAreRefused) {
    for (const std::string option : {"--lr", "--out", "--checkpoint"}) {
        expect_rejected({{"train", "mlp", option, ""}, "the value of " + option});
    }
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--trace", ""}, "the value of --trace"});
    expect_rejected({{"plan", "mlp", "--machine", "d1", "--batch", "64", "--dump-pass", ""},
                     "the value of --dump-pass"});
    expect_rejected({{"numerics", "info", "-f", "cfp8_143", "-b", ""}, "the value of -b"});
    expect_rejected({{"train", "mlp", "--out="}, "the value of --out"});
}

TEST(OptionErrors, NegativeCountsAreNamed) {
    expect_rejected({{"train", "mlp", "--batch", "-5"}, "--batch must be at least 1, got -5"});
    expect_rejected({{"train", "mlp", "--train-limit", "-1"}, "--train-limit must be at least 0, got -1"});
    expect_rejected({{"train", "mlp", "--checkpoint", "/tmp/x", "--checkpoint-every", "0"},
                     "--checkpoint-every must be at least 1, got 0"});
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--top", "-1"}, "--top must be 0 or more"});
    expect_rejected({{"train", "mlp", "--threads", "100000"}, "--threads must be from 0 (one per core) to 1024"});
    for (const std::string bias : {"-1", "-5"}) {
        expect_rejected({{"numerics", "encode", "-f", "cfp8_143", "-b", bias}, "bias " + bias + " is out of range",
                         kExitUsage, "1\n"});
    }
}

TEST(OptionErrors, NonPrintableInputIsQuotedAndLongInputCapped) {
    const CliResult r = expect_rejected({{"numerics", "encode", "-f", "cfp8_143"}, "input line 1 '1\\x002'",
                                         kExitUsage, std::string("1\0" "2\n", 4)});
    const CliResult binary = expect_rejected({{"numerics", "encode", "-f", "cfp8_143"}, "\\xff",
                                              kExitUsage, "\xff\xfe\n"});
    const CliResult long_line = expect_rejected({{"numerics", "encode", "-f", "cfp8_143"}, "(5000 characters)",
                                                 kExitUsage, std::string(5000, 'x') + "\n"});
    EXPECT_LT(long_line.err.size(), 600u) << "an echoed line is capped";
}

TEST(OptionErrors, LayoutIsRefusedWhereThereIsNoCoreMesh) {
    expect_rejected({{"plan", "mlp", "--machine", "dgx-a100", "--batch", "64", "--strategy", "dp=1", "--layout",
                      "spatial"},
                     "has none; leave out --layout"});
    const CliResult meshed = run_dojo({"plan", "mlp", "--machine", "d1", "--batch", "64", "--strategy", "dp=1",
                                       "--layout", "spatial"});
    EXPECT_EQ(meshed.exit_code, 0) << meshed.err;
}

}  // namespace
}  // namespace dojo::test
