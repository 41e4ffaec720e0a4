// How the simulator's reports write bytes and shares for people. Private to src/sim.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace dojo::sim {

// "1.23 GB".
inline std::string bytes_text(double bytes) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3g GB", bytes / 1e9);
    return buffer;
}

// "12.3%".
inline std::string fmt_percent(double fraction) {
    const long tenths = std::lround(fraction * 1000);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "%";
}

}  // namespace dojo::sim
