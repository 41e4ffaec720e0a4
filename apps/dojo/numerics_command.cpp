// `dojo numerics`: look at and exercise Dojo's number formats from the shell. Parse, call the library, print.
#include "numerics_command.h"

#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dojo/numerics/bias.h"
#include "dojo/numerics/convert.h"
#include "dojo/numerics/format.h"
#include "dojo/util/error.h"
#include "dojo/util/text.h"
#include "line_input.h"

namespace dojo::cli {
namespace {

using json = nlohmann::json;
using namespace dojo::numerics;

constexpr const char* kDecisions = R"(Semantics: docs/numerics.md (normative: cfloat.md Part 1). Where Tesla's white paper
is silent or its text is lost, these are OpenDojo's own decisions:
  - denormals: IEEE scale M/2^m * 2^(1-bias) by default; --denormals paper gives the paper's literal 2^-bias
    (with a gap below the smallest normal).
  - no Inf/NaN in CFloat formats: the top exponent is an ordinary binade; overflow and +-Inf clamp to +-max
    (flag overflow); NaN gives +max (flag invalid). 0x80 is -0.
  - nearest rounding breaks ties to the even code; overflow is judged with an unbounded exponent.
  - stochastic rounding: round the magnitude up iff r < D*2^(32-k), r a 32-bit Philox4x32-10 word keyed by
    --seed, counter from (--stream, element index); the n-th input line (0-based) is element n.
  - uhp is provisional: bias 31 by default, denormals kept, negative inputs give +0 (flag invalid).
  - flags: invalid, denormal (an input was denormal), overflow, underflow (tiny after rounding with an
    unbounded exponent, and inexact).)";

struct FormatOptions {
    std::string format;
    std::optional<int> bias;  // unset: the format's default
    std::string denormals = "ieee";
    bool json_output = false;

    FormatSpec spec() const {
        if (bias && *bias < 0) {
            throw UsageError("bias " + std::to_string(*bias) + " is out of range: a CFloat bias is 0..63 (leave out "
                             "--bias for the format's default)");
        }
        return make_format(parse_format_kind(format), bias.value_or(-1), parse_denormals(denormals));
    }
};

void add_format_options(CLI::App& command, FormatOptions& options, bool needs_format = true) {
    auto* format = command.add_option("--format,-f", options.format,
                                      "cfp8_143 | cfp8_152 | shp | uhp (provisional) | bf16 | fp32");
    if (needs_format) {
        format->required();
    }
    command.add_option("--bias,-b", options.bias,
                       "exponent bias 0..63 for CFloat formats (default: cfp8_143 7, cfp8_152 15, shp 15, uhp 31)");
    command.add_option("--denormals", options.denormals, "denormal scale: ieee (default) or paper");
    command.add_flag("--json", options.json_output, "machine-readable JSON on stdout");
}

std::string hex_code(std::uint32_t code, const FormatSpec& spec) {
    return fmt::format("0x{:0{}x}", code, spec.info().width_bits / 4);
}

std::string code_class(std::uint32_t code, const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    const std::uint32_t exponent = (code >> t.mantissa_bits) & ((1u << t.exponent_bits) - 1u);
    const std::uint32_t mantissa = code & ((1u << t.mantissa_bits) - 1u);
    if (t.has_inf_nan && exponent == (1u << t.exponent_bits) - 1u) {
        return mantissa == 0 ? "inf" : "nan";
    }
    if (exponent == 0) {
        return mantissa == 0 ? "zero" : "denormal";
    }
    return "normal";
}

json flags_json(ConversionFlags flags) {
    json list = json::array();
    if (flags.any()) {
        std::string text = flags.to_string();
        for (std::size_t start = 0; start <= text.size();) {
            const std::size_t comma = std::min(text.find(',', start), text.size());
            list.push_back(text.substr(start, comma - start));
            start = comma + 1;
        }
    }
    return list;
}

json format_json(const FormatSpec& spec) {
    const FormatTraits& t = spec.info();
    return json{{"format", std::string(t.name)},     {"bias", spec.bias},
                {"denormals", std::string(to_string(spec.denormals))},
                {"sign_bits", t.sign_bits},          {"exponent_bits", t.exponent_bits},
                {"mantissa_bits", t.mantissa_bits},  {"width_bits", t.width_bits},
                {"provisional", t.provisional}};
}

// Encodes all values at once through the bulk API (so the CLI exercises the same path as the runtime).
std::pair<std::vector<std::uint32_t>, ConversionFlags> encode_all(const std::vector<float>& values,
                                                                  const FormatSpec& spec,
                                                                  const ConvertOptions& options) {
    std::vector<std::uint32_t> codes(values.size());
    ConversionFlags flags;
    switch (spec.info().width_bits) {
        case 8: {
            std::vector<std::uint8_t> narrow(values.size());
            flags = encode(values, narrow, spec, options);
            std::copy(narrow.begin(), narrow.end(), codes.begin());
            break;
        }
        case 16: {
            std::vector<std::uint16_t> narrow(values.size());
            flags = encode(values, narrow, spec, options);
            std::copy(narrow.begin(), narrow.end(), codes.begin());
            break;
        }
        default:
            for (std::size_t i = 0; i < values.size(); ++i) {
                codes[i] = std::bit_cast<std::uint32_t>(values[i]);
            }
    }
    return {codes, flags};
}

// ---- subcommands -----------------------------------------------------------------------------------------------

void run_formats(bool json_output) {
    json list = json::array();
    for (const FormatKind kind : kAllFormatKinds) {
        list.push_back(format_json(make_format(kind)));
        list.back()["configurable_bias"] = traits(kind).configurable_bias;
    }
    if (json_output) {
        std::cout << list.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("{:<10} {:>4} {:>4} {:>4} {:>5} {:>12}  {}\n", "format", "sign", "exp", "man", "width",
                             "default bias", "notes");
    for (const FormatKind kind : kAllFormatKinds) {
        const FormatTraits& t = traits(kind);
        const std::string notes = t.has_inf_nan      ? "IEEE: Inf/NaN, fixed bias"
                                  : t.provisional    ? "configurable bias 0..63, saturating; provisional"
                                                     : "configurable bias 0..63, saturating";
        std::cout << fmt::format("{:<10} {:>4} {:>4} {:>4} {:>5} {:>12}  {}\n", t.name, t.sign_bits,
                                 t.exponent_bits, t.mantissa_bits, t.width_bits, t.default_bias, notes);
    }
}

void run_table(const FormatOptions& options) {
    const FormatSpec spec = options.spec();
    if (spec.info().width_bits > 16) {
        throw UsageError("table lists every code, and fp32 has 2^32 of them; use 'dojo numerics info --format fp32', "
                         "or encode/decode single values");
    }
    const std::uint32_t count = 1u << spec.info().width_bits;
    json rows = json::array();
    if (!options.json_output) {
        std::cout << "# " << to_string(spec) << "\ncode\tvalue\tclass\n";
    }
    for (std::uint32_t code = 0; code < count; ++code) {
        const float value = decode_one(code, spec);
        if (options.json_output) {
            rows.push_back(json{{"code", hex_code(code, spec)}, {"value_exact", exact_decimal(value)},
                                {"class", code_class(code, spec)}});
            if (std::isfinite(value)) {
                rows.back()["value"] = value;
            }
        } else {
            std::cout << hex_code(code, spec) << '\t' << exact_decimal(value) << '\t' << code_class(code, spec)
                      << '\n';
        }
    }
    if (options.json_output) {
        json document = format_json(spec);
        document["codes"] = std::move(rows);
        std::cout << document.dump(2) << "\n";
    }
}

struct EncodeCommandOptions {
    FormatOptions format;
    std::string rounding = "nearest";
    std::uint64_t seed = 0;
    std::uint64_t stream = 0;
};

void run_encode(const EncodeCommandOptions& options) {
    const FormatSpec spec = options.format.spec();
    ConvertOptions convert;
    convert.rounding = parse_rounding(options.rounding);
    convert.seed = options.seed;
    convert.stream = options.stream;
    const std::vector<InputLine> lines = read_input_lines(std::cin);
    std::vector<float> values;
    std::vector<ConversionFlags> read_flags;  // per line: reading a decimal beyond FP32's range
    values.reserve(lines.size());
    for (const InputLine& line : lines) {
        const ParsedFp32 parsed = parse_fp32(line);  // every line is checked before anything is printed
        values.push_back(parsed.value);
        read_flags.push_back(parsed.flags);
    }
    auto [codes, flags] = encode_all(values, spec, convert);
    for (const ConversionFlags f : read_flags) {
        flags |= f;
    }
    if (options.format.json_output) {
        json results = json::array();
        for (std::size_t i = 0; i < values.size(); ++i) {
            ConvertOptions one = convert;
            one.first_index = i;
            const float decoded = decode_one(codes[i], spec);
            json row{{"line", lines[i].number},
                     {"input", lines[i].text},
                     {"input_bits", fmt::format("0x{:08x}", std::bit_cast<std::uint32_t>(values[i]))},
                     {"code", hex_code(codes[i], spec)},
                     {"value_exact", exact_decimal(decoded)},
                     {"flags", flags_json(encode_one(values[i], spec, one).flags | read_flags[i])}};
            if (std::isfinite(decoded)) {
                row["value"] = decoded;
            }
            results.push_back(std::move(row));
        }
        json document = format_json(spec);
        document["rounding"] = options.rounding;
        document["seed"] = options.seed;
        document["stream"] = options.stream;
        document["results"] = std::move(results);
        document["flags"] = flags_json(flags);
        std::cout << document.dump(2) << "\n";
    } else {
        for (std::size_t i = 0; i < values.size(); ++i) {
            std::cout << hex_code(codes[i], spec) << '\t' << exact_decimal(decode_one(codes[i], spec)) << '\n';
        }
    }
    std::cerr << "flags: " << flags.to_string() << "\n";
}

void run_decode(const FormatOptions& options) {
    const FormatSpec spec = options.spec();
    const std::vector<InputLine> lines = read_input_lines(std::cin);
    std::vector<std::uint32_t> codes;
    codes.reserve(lines.size());
    for (const InputLine& line : lines) {
        codes.push_back(parse_code(line, spec.info().width_bits));
    }
    ConversionFlags flags;
    json results = json::array();
    for (std::size_t i = 0; i < codes.size(); ++i) {
        const float value = decode_one(codes[i], spec);
        if (is_denormal_code(codes[i], spec)) {
            flags.raise(Flag::Denormal);
        }
        if (options.json_output) {
            json row{{"line", lines[i].number}, {"code", hex_code(codes[i], spec)},
                     {"value_exact", exact_decimal(value)}, {"class", code_class(codes[i], spec)}};
            if (std::isfinite(value)) {
                row["value"] = value;
            }
            results.push_back(std::move(row));
        } else {
            std::cout << exact_decimal(value) << '\n';
        }
    }
    if (options.json_output) {
        json document = format_json(spec);
        document["results"] = std::move(results);
        document["flags"] = flags_json(flags);
        std::cout << document.dump(2) << "\n";
    }
    std::cerr << "flags: " << flags.to_string() << "\n";
}

void run_info(const FormatOptions& options) {
    const FormatSpec spec = options.spec();
    const FormatRange r = range_of(spec);
    const FormatTraits& t = spec.info();
    if (options.json_output) {
        json document = format_json(spec);
        document["max"] = r.max;
        document["min_normal"] = r.min_normal;
        document["min_denormal"] = r.min_denormal;
        document["max_denormal"] = r.max_denormal;
        document["epsilon"] = r.epsilon;
        document["binades"] = r.binades;
        document["normal_binades"] = r.normal_binades;
        document["max_code"] = hex_code(r.max_code, spec);
        std::cout << document.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("format          {} ({} sign, {} exponent, {} mantissa bits{})\n", t.name, t.sign_bits,
                             t.exponent_bits, t.mantissa_bits, t.provisional ? "; provisional" : "")
              << fmt::format("bias            {}{}\n", spec.bias, t.configurable_bias ? "" : " (fixed)")
              << fmt::format("denormals       {}\n", to_string(spec.denormals))
              << fmt::format("max             {}  (code {})\n", exact_decimal(r.max), hex_code(r.max_code, spec))
              << fmt::format("min normal      {}\n", exact_decimal(r.min_normal))
              << fmt::format("min denormal    {}\n", exact_decimal(r.min_denormal))
              << fmt::format("max denormal    {}\n", exact_decimal(r.max_denormal))
              << fmt::format("epsilon         {}  (2^-{}: spacing of normals relative to their binade)\n",
                             exact_decimal(r.epsilon), t.mantissa_bits)
              << fmt::format("dynamic range   {:.2f} binades with denormals, {:.2f} normal\n", r.binades,
                             r.normal_binades);
}

struct BiasCommandOptions {
    FormatOptions format;
    double max_abs = -1.0;
    double headroom = 0.0;
};

void run_bias(const BiasCommandOptions& options) {
    const FormatKind kind = parse_format_kind(options.format.format);
    const Denormals denormals = parse_denormals(options.format.denormals);
    const BiasChoice choice = choose_bias(kind, options.max_abs, options.headroom, denormals);
    const FormatRange range = range_of(make_format(kind, choice.bias, denormals));
    if (options.format.json_output) {
        std::cout << json{{"format", std::string(traits(kind).name)}, {"max_abs", options.max_abs},
                          {"headroom_binades", options.headroom}, {"bias", choice.bias}, {"fits", choice.fits},
                          {"max", range.max}, {"min_normal", range.min_normal}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::cout << fmt::format("bias {}\n", choice.bias)
              << fmt::format("max at this bias {}; needed {} x 2^{} = {}\n", exact_decimal(range.max),
                             options.max_abs, options.headroom, options.max_abs * std::exp2(options.headroom));
    if (!choice.fits) {
        std::cout << "warning: does not fit even at bias 0; values above the max will saturate\n";
    }
}

}  // namespace

void add_numerics_command(CLI::App& app) {
    CLI::App* numerics = app.add_subcommand("numerics", "Dojo's number formats: tables, encode, decode, ranges");
    numerics->require_subcommand(1);
    numerics->footer(kDecisions);

    auto formats_json = std::make_shared<bool>(false);
    CLI::App* formats = numerics->add_subcommand("formats", "List the formats and their bit layouts");
    formats->add_flag("--json", *formats_json, "machine-readable JSON on stdout");
    formats->callback([formats_json] { run_formats(*formats_json); });

    auto table_options = std::make_shared<FormatOptions>();
    CLI::App* table = numerics->add_subcommand("table", "Print every code of a format: hex code, exact value, class");
    add_format_options(*table, *table_options);
    table->callback([table_options] { run_table(*table_options); });

    auto encode_options = std::make_shared<EncodeCommandOptions>();
    CLI::App* encode_command = numerics->add_subcommand(
        "encode", "Round numbers from stdin (one per line: decimal, or an FP32 bit pattern like 0x3f800000) into a "
                  "format; prints 'code<TAB>value' per line and the raised flags on stderr");
    add_format_options(*encode_command, encode_options->format);
    encode_command->add_option("--rounding,-r", encode_options->rounding, "nearest (ties to even) or stochastic");
    encode_command->add_option("--seed", encode_options->seed, "stochastic rounding: Philox key (default 0)");
    encode_command->add_option("--stream", encode_options->stream,
                               "stochastic rounding: stream id, e.g. one per tensor (default 0)");
    encode_command->footer("Decimal inputs are first rounded to the nearest FP32 (the formats convert from FP32 and "
                           "BF16); give a bit pattern for exact control. Blank lines and lines starting with # are "
                           "skipped and do not count as elements.");
    encode_command->callback([encode_options] { run_encode(*encode_options); });

    auto decode_options = std::make_shared<FormatOptions>();
    CLI::App* decode_command = numerics->add_subcommand(
        "decode", "Decode hex codes from stdin (one per line, e.g. 0x38) to their exact values");
    add_format_options(*decode_command, *decode_options);
    decode_command->callback([decode_options] { run_decode(*decode_options); });

    auto info_options = std::make_shared<FormatOptions>();
    CLI::App* info = numerics->add_subcommand(
        "info", "Max, min normal, min denormal, epsilon and dynamic range of a format at a bias");
    add_format_options(*info, *info_options);
    info->callback([info_options] { run_info(*info_options); });

    auto bias_options = std::make_shared<BiasCommandOptions>();
    CLI::App* bias = numerics->add_subcommand(
        "bias", "The largest bias whose range covers a tensor's max-abs (times 2^headroom): per-tensor scaling");
    add_format_options(*bias, bias_options->format);
    bias->add_option("--max-abs", bias_options->max_abs, "largest |value| of the tensor")->required();
    bias->add_option("--headroom", bias_options->headroom, "binades of growth to allow before saturating (>= 0)");
    bias->callback([bias_options] { run_bias(*bias_options); });
}

}  // namespace dojo::cli
