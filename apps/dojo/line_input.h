/** \file
 * Parsing the line-oriented input of `dojo numerics encode/decode` at the CLI edge.
 *
 * Blank lines and lines starting with '#' are skipped; every other line holds one item, surrounded by optional
 * whitespace. A malformed line is a UsageError naming the line number and its text.
 */
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "dojo/numerics/flags.h"

namespace dojo::cli {

/// One non-blank input line: its 1-based line number and its trimmed text.
struct InputLine {
    int number = 0;
    std::string text;
};

/// Every non-blank, non-comment line of `in`.
std::vector<InputLine> read_input_lines(std::istream& in);

/// A number for encode, as FP32, and the flags reading it raised: overflow for a finite decimal beyond FP32 (read as
/// +-Inf), underflow for a non-zero one too small for it (read as +-0); the conversion that follows adds its own.
struct ParsedFp32 {
    float value = 0;
    numerics::ConversionFlags flags;
};

/// A number for encode: a decimal ("0.3", "-1e-30", "inf", "nan"), rounded to the nearest FP32, or an FP32 bit
/// pattern written as 0x followed by 1-8 hex digits ("0x3f800000"). Decimals beyond FP32's range, of any size
/// (1e999, a thousand-digit integer), become +-Inf or +-0 with their flag, as the nearest-FP32 rule gives.
ParsedFp32 parse_fp32(const InputLine& line);

/// A code for decode: 1-8 hex digits with or without a 0x prefix, at most `width_bits` wide.
std::uint32_t parse_code(const InputLine& line, int width_bits);

}  // namespace dojo::cli
