// libFuzzer target: `dojo numerics encode/decode` read standard input line by line (apps/dojo/line_input.h); any
// bytes must give values, codes or a dojo::Error, and a value read must encode with the bulk conversion. Never a
// crash or a hang. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run briefly by `make test`.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "dojo/numerics/convert.h"
#include "dojo/numerics/format.h"
#include "dojo/util/error.h"
#include "line_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    std::vector<dojo::cli::InputLine> lines = dojo::cli::read_input_lines(in);
    std::vector<float> values;
    for (const dojo::cli::InputLine& line : lines) {
        try {
            values.push_back(dojo::cli::parse_fp32(line).value);
        } catch (const dojo::Error&) {
        }
        try {
            (void)dojo::cli::parse_code(line, 8);
        } catch (const dojo::Error&) {
        }
    }
    std::vector<std::uint8_t> codes(values.size());
    const dojo::numerics::FormatSpec spec = dojo::numerics::make_format(dojo::numerics::FormatKind::Cfp8_143);
    (void)dojo::numerics::encode(values, codes, spec, dojo::numerics::ConvertOptions{});
    return 0;
}
