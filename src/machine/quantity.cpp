#include "dojo/machine/quantity.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <span>
#include <cmath>
#include <utility>

#include "dojo/util/error.h"

namespace dojo::machine {
namespace {

struct Unit {
    std::string_view symbol;
    Dimension dimension;
    double scale;  // to SI base units
};

// Longest symbols first where one is a suffix-free prefix of another does not matter: matching is exact.
constexpr std::array kUnits = {
    Unit{"Hz", Dimension::Frequency, 1},          Unit{"kHz", Dimension::Frequency, 1e3},
    Unit{"MHz", Dimension::Frequency, 1e6},       Unit{"GHz", Dimension::Frequency, 1e9},
    Unit{"B", Dimension::Bytes, 1},               Unit{"kB", Dimension::Bytes, 1e3},
    Unit{"KB", Dimension::Bytes, 1e3},            Unit{"MB", Dimension::Bytes, 1e6},
    Unit{"GB", Dimension::Bytes, 1e9},            Unit{"TB", Dimension::Bytes, 1e12},
    Unit{"PB", Dimension::Bytes, 1e15},           Unit{"KiB", Dimension::Bytes, 1024.0},
    Unit{"MiB", Dimension::Bytes, 1048576.0},     Unit{"GiB", Dimension::Bytes, 1073741824.0},
    Unit{"TiB", Dimension::Bytes, 1099511627776.0},
    Unit{"B/s", Dimension::Bandwidth, 1},         Unit{"kB/s", Dimension::Bandwidth, 1e3},
    Unit{"MB/s", Dimension::Bandwidth, 1e6},      Unit{"GB/s", Dimension::Bandwidth, 1e9},
    Unit{"TB/s", Dimension::Bandwidth, 1e12},     Unit{"PB/s", Dimension::Bandwidth, 1e15},
    Unit{"b/s", Dimension::Bandwidth, 1.0 / 8},   Unit{"Mb/s", Dimension::Bandwidth, 1e6 / 8},
    Unit{"Gb/s", Dimension::Bandwidth, 1e9 / 8},  Unit{"Tb/s", Dimension::Bandwidth, 1e12 / 8},
    Unit{"Gbit/s", Dimension::Bandwidth, 1e9 / 8},
    Unit{"W", Dimension::Power, 1},               Unit{"kW", Dimension::Power, 1e3},
    Unit{"MW", Dimension::Power, 1e6},
    Unit{"s", Dimension::Time, 1},                Unit{"ms", Dimension::Time, 1e-3},
    Unit{"us", Dimension::Time, 1e-6},            Unit{"ns", Dimension::Time, 1e-9},
    Unit{"FLOP/s", Dimension::FlopRate, 1},       Unit{"GFLOP/s", Dimension::FlopRate, 1e9},
    Unit{"TFLOP/s", Dimension::FlopRate, 1e12},   Unit{"PFLOP/s", Dimension::FlopRate, 1e15},
    Unit{"EFLOP/s", Dimension::FlopRate, 1e18},
};

std::string accepted_units() {
    std::string list;
    for (const Unit& u : kUnits) {
        list += (list.empty() ? "" : ", ") + std::string(u.symbol);
    }
    return list;
}

// 3 significant digits, trailing zeros dropped: 362.496 -> "362", 22.656 -> "22.7", 9.0 -> "9", 1.25 -> "1.25".
std::string significant(double v) {
    const double magnitude = v == 0 ? 0 : std::floor(std::log10(std::fabs(v)));
    const int decimals = std::max(0, 2 - static_cast<int>(magnitude));
    std::string s = fmt::format("{:.{}f}", v, decimals);
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') {
            s.pop_back();
        }
        if (s.back() == '.') {
            s.pop_back();
        }
    }
    return s;
}

std::string with_prefix(double v, std::string_view unit, double base, std::span<const std::string_view> prefixes) {
    std::size_t i = 0;
    while (i + 1 < prefixes.size() && std::fabs(v) >= base * 0.9995) {
        v /= base;
        ++i;
    }
    return significant(v) + " " + std::string(prefixes[i]) + std::string(unit);
}

}  // namespace

std::string_view to_string(Dimension d) {
    switch (d) {
        case Dimension::Count: return "count";
        case Dimension::Frequency: return "frequency";
        case Dimension::Bytes: return "bytes";
        case Dimension::Bandwidth: return "bandwidth";
        case Dimension::Power: return "power";
        case Dimension::Time: return "time";
        case Dimension::FlopRate: return "FLOP rate";
    }
    return "?";
}

Quantity parse_quantity(std::string_view text, const std::string& where) {
    std::size_t begin = 0;
    while (begin < text.size() && std::isspace(static_cast<unsigned char>(text[begin]))) {
        ++begin;
    }
    double number = 0;
    const auto [end, error] = std::from_chars(text.data() + begin, text.data() + text.size(), number);
    if (error != std::errc{} || !std::isfinite(number) || number < 0) {
        throw UsageError(where + ": '" + std::string(text) +
                         "' is not a quantity; write a non-negative number and a unit, e.g. \"2 GHz\" or \"512 GB/s\"");
    }
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) {
        unit.remove_prefix(1);
    }
    while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) {
        unit.remove_suffix(1);
    }
    if (unit.empty()) {
        return Quantity{number, Dimension::Count};
    }
    for (const Unit& u : kUnits) {
        if (u.symbol == unit) {
            return Quantity{number * u.scale, u.dimension};
        }
    }
    throw UsageError(where + ": unknown unit '" + std::string(unit) + "' in '" + std::string(text) +
                     "'; accepted units: " + accepted_units());
}

std::string format_quantity(const Quantity& q) {
    static constexpr std::array<std::string_view, 7> kDecimal = {"", "k", "M", "G", "T", "P", "E"};
    static constexpr std::array<std::string_view, 6> kBinary = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
    switch (q.dimension) {
        case Dimension::Count: return significant(q.value);
        case Dimension::Frequency: return with_prefix(q.value, "Hz", 1000, kDecimal);
        case Dimension::Bytes: return with_prefix(q.value, "B", 1024, kBinary);
        case Dimension::Bandwidth: return with_prefix(q.value, "B/s", 1000, kDecimal);
        case Dimension::Power: return with_prefix(q.value, "W", 1000, kDecimal);
        case Dimension::FlopRate: return with_prefix(q.value, "FLOP/s", 1000, kDecimal);
        case Dimension::Time:
            if (q.value >= 1) return significant(q.value) + " s";
            if (q.value >= 1e-3) return significant(q.value * 1e3) + " ms";
            if (q.value >= 1e-6) return significant(q.value * 1e6) + " us";
            return significant(q.value * 1e9) + " ns";
    }
    return significant(q.value);
}

}  // namespace dojo::machine
