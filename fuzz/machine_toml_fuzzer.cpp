// libFuzzer target: the machine-description loader must turn any TOML text into a Machine or a dojo::Error, never
// crash, hang or exhaust memory. The first byte picks what the input is: a preset (beside OpenDojo's own kind
// libraries in machines/lib) or a kind library (under a fixed preset whose root is the D1). Derived totals are
// computed as `dojo machine show` does.
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run briefly by `make test`.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "dojo/machine/machine.h"
#include "dojo/util/error.h"

namespace {

namespace fs = std::filesystem;

// A directory of this process's own: lib/ links to OpenDojo's libraries, fuzzlib/ holds a fuzzed library.
const fs::path& scratch() {
    static const fs::path dir = [] {
        const fs::path d = fs::temp_directory_path() / ("dojo-machine-fuzz-" + std::to_string(::getpid()));
        fs::create_directories(d / "fuzzlib");
        fs::create_symlink(fs::path(DOJO_MACHINES_DIR) / "lib", d / "lib");
        std::ofstream(d / "fixed.toml") << "description = \"fuzzed library\"\nlibrary = \"fuzzlib/kinds.toml\"\n"
                                           "root = \"d1\"\n";
        return d;
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const bool preset = data[0] % 2 == 0;
    const fs::path file = preset ? scratch() / "fuzzed.toml" : scratch() / "fuzzlib" / "kinds.toml";
    std::ofstream(file, std::ios::trunc | std::ios::binary).write(reinterpret_cast<const char*>(data + 1),
                                                                    static_cast<std::streamsize>(size - 1));
    try {
        const dojo::machine::Machine m = dojo::machine::load_machine(preset ? "fuzzed" : "fixed", scratch().string());
        (void)dojo::machine::totals(m);
    } catch (const dojo::Error&) {
        // The expected outcome for most inputs: an error naming the file, line and key.
    }
    return 0;
}
