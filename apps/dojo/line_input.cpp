#include "line_input.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "dojo/util/error.h"

namespace dojo::cli {
namespace {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

// A line as an error message may echo it: control and non-ASCII bytes as \xNN (a NUL would end the message), and
// at most kEchoed characters of it.
std::string echoed(std::string_view text) {
    constexpr std::size_t kEchoed = 200;
    std::string out;
    for (const char c : text.substr(0, kEchoed)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7f) {
            constexpr const char* kHex = "0123456789abcdef";
            out += std::string("\\x") + kHex[byte >> 4] + kHex[byte & 15];
        } else {
            out += c;
        }
    }
    if (text.size() > kEchoed) {
        out += "... (" + std::to_string(text.size()) + " characters)";
    }
    return out;
}

[[noreturn]] void bad_line(const InputLine& line, const std::string& expected) {
    throw UsageError("input line " + std::to_string(line.number) + " '" + echoed(line.text) + "': " + expected);
}

bool has_hex_prefix(std::string_view text) {
    return text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
}

// Parses 1-8 hex digits; false if anything else is there.
bool parse_hex(std::string_view digits, std::uint32_t& value) {
    if (digits.empty() || digits.size() > 8) {
        return false;
    }
    const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
    return result.ec == std::errc() && result.ptr == digits.data() + digits.size();
}

// floor(log10(|x|)) of a well-formed decimal "[-]digits[.digits][e[+-]digits]" that is not zero: the position of its
// first non-zero digit relative to the decimal point, plus the exponent. Saturates far outside float's range.
std::int64_t decimal_exponent(std::string_view text) {
    std::size_t i = text.front() == '-' ? 1 : 0;
    std::int64_t integer_digits = 0;  // digits before the point, leading zeros excluded
    std::int64_t leading_fraction_zeros = 0;
    bool nonzero = false, point = false;
    for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
        if (text[i] == '.') {
            point = true;
        } else if (!nonzero && text[i] == '0') {
            leading_fraction_zeros += point ? 1 : 0;
        } else {
            nonzero = true;
            integer_digits += point ? 0 : 1;
        }
    }
    std::int64_t exponent = 0;
    if (i < text.size()) {
        std::string_view digits = text.substr(i + 1);
        const bool negative = !digits.empty() && digits.front() == '-';
        if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
            digits.remove_prefix(1);
        }
        for (const char c : digits) {
            exponent = std::min<std::int64_t>(exponent * 10 + (c - '0'), std::int64_t{1} << 40);
        }
        exponent = negative ? -exponent : exponent;
    }
    const std::int64_t position = integer_digits > 0 ? integer_digits - 1 : -(leading_fraction_zeros + 1);
    return position + exponent;
}

}  // namespace

std::vector<InputLine> read_input_lines(std::istream& in) {
    std::vector<InputLine> lines;
    std::string raw;
    int number = 0;
    while (std::getline(in, raw)) {
        ++number;
        const std::string_view text = trim(raw);
        if (text.empty() || text.front() == '#') {
            continue;
        }
        lines.push_back(InputLine{number, std::string(text)});
    }
    return lines;
}

ParsedFp32 parse_fp32(const InputLine& line) {
    const std::string_view text = line.text;
    if (has_hex_prefix(text)) {
        std::uint32_t bits = 0;
        if (!parse_hex(text.substr(2), bits)) {
            bad_line(line, "expected an FP32 bit pattern of 1-8 hex digits after 0x, e.g. 0x3f800000");
        }
        return {std::bit_cast<float>(bits), {}};
    }
    // from_chars accepts a leading '-' but not '+'; allow both, as users write them.
    const std::string_view body = !text.empty() && text.front() == '+' ? text.substr(1) : text;
    float value = 0.0f;
    const auto result = std::from_chars(body.data(), body.data() + body.size(), value);
    if (result.ptr != body.data() + body.size() || body.empty() || body.front() == '+') {
        bad_line(line, "expected a decimal number (e.g. 0.3, -1.5e-7, inf, nan) or an FP32 bit pattern (0x3f800000)");
    }
    if (result.ec == std::errc::result_out_of_range) {
        // Beyond FP32 (and perhaps beyond double too: 1e999, a million-digit integer): the decimal's magnitude
        // decides between overflow and underflow.
        const bool overflow = decimal_exponent(body) >= 0;
        value = overflow ? std::numeric_limits<float>::infinity() : 0.0f;
        value = body.front() == '-' ? -value : value;
        return {value, numerics::ConversionFlags(
                           static_cast<std::uint8_t>(overflow ? numerics::Flag::Overflow : numerics::Flag::Underflow))};
    }
    if (result.ec != std::errc()) {
        bad_line(line, "expected a decimal number or an FP32 bit pattern");
    }
    return {value, {}};
}

std::uint32_t parse_code(const InputLine& line, int width_bits) {
    const std::string_view text = line.text;
    const std::string_view digits = has_hex_prefix(text) ? text.substr(2) : text;
    std::uint32_t code = 0;
    if (!parse_hex(digits, code)) {
        bad_line(line, "expected a hex code such as 0x38");
    }
    if (width_bits < 32 && code >= (1u << width_bits)) {
        bad_line(line, "code does not fit a " + std::to_string(width_bits) + "-bit format (largest 0x" +
                           std::string(width_bits == 8 ? "ff" : "ffff") + ")");
    }
    return code;
}

}  // namespace dojo::cli
