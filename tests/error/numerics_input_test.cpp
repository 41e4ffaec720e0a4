// Decimals beyond FP32's range, of any size, are read as the nearest-FP32 rule says (+-Inf with overflow, +-0 with
// underflow) and then converted as the bulk conversion converts them: never a silent 0.
#include <gtest/gtest.h>

#include "cli_runner.h"

namespace dojo::test {
namespace {

struct Encoded {
    std::string out;
    std::string flags;
};

Encoded encode(const std::string& format, const std::string& input) {
    const CliResult r = run_dojo({"numerics", "encode", "-f", format}, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::size_t at = r.err.find("flags: ");
    return {r.out, at == std::string::npos ? "" : r.err.substr(at + 7, r.err.find('\n', at) - at - 7)};
}

TEST(NumericsInput, DecimalsBeyondDoubleOverflowAndSaturate) {
    EXPECT_EQ(encode("cfp8_143", "1e999\n").out, "0x7f\t480\n");
    EXPECT_EQ(encode("cfp8_143", "1e999\n").flags, "overflow");
    EXPECT_EQ(encode("cfp8_143", "-1e999\n").out, "0xff\t-480\n");
    EXPECT_EQ(encode("cfp8_143", std::string(3'000'000, '7') + "\n").out, "0x7f\t480\n");
    EXPECT_EQ(encode("cfp8_143", "0.000" + std::string(400, '9') + "e400\n").flags, "overflow");
    const Encoded fp32 = encode("fp32", "1e999\n");
    EXPECT_EQ(fp32.out, "0x7f800000\tinf\n");
    EXPECT_EQ(fp32.flags, "overflow");
}

TEST(NumericsInput, DecimalsBelowFp32UnderflowWithTheirFlag) {
    const Encoded tiny = encode("cfp8_143", "1e-999\n");
    EXPECT_EQ(tiny.out, "0x00\t0\n");
    EXPECT_EQ(tiny.flags, "underflow");
    EXPECT_EQ(encode("cfp8_143", "-1e-50\n").out, "0x80\t-0\n");
    EXPECT_EQ(encode("cfp8_143", "-1e-50\n").flags, "underflow");
    EXPECT_EQ(encode("cfp8_143", "0.0000000000000000000000000000000000000000000000001e-5\n").flags, "underflow");
    EXPECT_EQ(encode("cfp8_143", "0e-999\n").flags, "none") << "zero is exact, whatever its exponent";
}

}  // namespace
}  // namespace dojo::test
