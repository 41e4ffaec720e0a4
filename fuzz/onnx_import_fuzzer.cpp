// libFuzzer target: the ONNX importer must turn any bytes into a graph or a dojo::Error, never crash, hang or leak.
// Anything else escaping (std::bad_alloc, std::out_of_range, a sanitizer report) is a bug the fuzzer reports.
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run briefly by `make test`.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dojo/frontend/onnx.h"
#include "dojo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        dojo::frontend::import_onnx_bytes(bytes, "fuzz input", 2);
    } catch (const dojo::Error&) {
        // The expected outcome for nearly every input: a clear error.
    }
    return 0;
}
