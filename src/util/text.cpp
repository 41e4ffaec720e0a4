#include "dojo/util/text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace dojo {

std::string exact_decimal(double value) {
    if (std::isnan(value)) {
        return "nan";
    }
    if (std::isinf(value)) {
        return value < 0 ? "-inf" : "inf";
    }
    // A double has at most 767 significant decimal digits; values this project prints (FP32 and narrower)
    // need fewer than 120, but the buffer is sized for any double so no value is ever truncated.
    char buffer[800];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general, 770);
    return std::string(buffer, result.ptr);
}

double leading_number(const std::string& text, std::size_t& used) {
    const char* begin = text.c_str();
    char* end = nullptr;
    const double value = std::strtod(begin, &end);
    used = static_cast<std::size_t>(end - begin);
    return used == 0 ? 0.0 : value;
}

}  // namespace dojo
