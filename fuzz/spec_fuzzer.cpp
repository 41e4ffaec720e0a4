// libFuzzer target: catalog model specs ("gpt:layers=2,seq=64") and strategy specs ("dp=4,tp=8,pp=2,mb=16") must
// parse into a model or a strategy, or a dojo::Error, for any text: never crash, overflow, hang or exhaust memory.
// The first byte picks which; a catalog model is built from its shapes only (nothing is computed), as `dojo sim`
// builds it. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run briefly by `make test`.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dojo/compiler/plan.h"
#include "dojo/frontend/catalog.h"
#include "dojo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        if (data[0] % 2 == 0) {
            const dojo::compiler::Strategy s = dojo::compiler::parse_strategy(text);
            (void)s.to_string();
        } else {
            (void)dojo::frontend::catalog_sample(text);
        }
    } catch (const dojo::Error&) {
        // The expected outcome for most inputs: an error naming the bad option.
    }
    return 0;
}
