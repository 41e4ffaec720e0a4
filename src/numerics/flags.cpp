#include "dojo/numerics/flags.h"

namespace dojo::numerics {

std::string ConversionFlags::to_string() const {
    static constexpr struct {
        Flag flag;
        const char* name;
    } kNames[] = {{Flag::Invalid, "invalid"}, {Flag::Denormal, "denormal"}, {Flag::Overflow, "overflow"},
                  {Flag::Underflow, "underflow"}};
    std::string text;
    for (const auto& entry : kNames) {
        if (has(entry.flag)) {
            text += text.empty() ? "" : ",";
            text += entry.name;
        }
    }
    return text.empty() ? "none" : text;
}

}  // namespace dojo::numerics
