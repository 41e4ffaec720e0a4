/** \file
 * Physical quantities with units, as machine descriptions write them: "2 GHz", "1.25 MiB", "512 GB/s",
 * "100 Gb/s", "400 W", "100 ns", "362 TFLOP/s". A Quantity holds the value in SI base units (Hz, bytes, bytes/s,
 * W, s, FLOP/s) and its dimension, so arithmetic never mixes a bandwidth with a capacity.
 *
 * Prefixes: k M G T P E are powers of 1000; Ki Mi Gi Ti Pi are powers of 1024 (bytes only). Bit rates ("Gb/s",
 * "Gbit/s") are converted to bytes/s (÷ 8). Plain numbers without a unit are Dimension::Count.
 */
#pragma once

#include <string>
#include <string_view>

namespace dojo::machine {

enum class Dimension { Count, Frequency, Bytes, Bandwidth, Power, Time, FlopRate };

std::string_view to_string(Dimension d);

struct Quantity {
    double value = 0;  ///< in SI base units of its dimension (bandwidth in bytes/s)
    Dimension dimension = Dimension::Count;
};

/// Parses "<number> <unit>" (the space is optional). Throws UsageError naming `where` (e.g. "machines/dojo-v1.toml:
/// node.clock") and the accepted units when the text is not a quantity.
Quantity parse_quantity(std::string_view text, const std::string& where);

/// Formats for people, with 3 significant digits: decimal prefixes for rates, binary ones for bytes
/// ("1.25 MiB", "442 MiB"), e.g. "362 TFLOP/s", "9 TB/s", "400 W", "100 ns".
std::string format_quantity(const Quantity& q);

}  // namespace dojo::machine
