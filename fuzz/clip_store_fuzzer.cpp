// libFuzzer target: the readers of a clip store (data/fleet/) must take any bytes to a result or a dojo::Error:
// never crash, overflow, hang or exhaust memory. The first byte picks the reader: a labels file (decode_labels), a
// shard (list_tar and read_range on what it lists), or a manifest (the bytes as manifest.sqlite, opened and queried).
// Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run briefly by `make test`.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/util/error.h"

namespace {

// A directory of this process's own for the file-based readers.
std::filesystem::path scratch() {
    static const std::filesystem::path dir = [] {
        const auto d = std::filesystem::temp_directory_path() / ("dojo-clip-store-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    using namespace dojo::data::fleet;
    try {
        switch (data[0] % 3) {
            case 0:
                (void)decode_labels(bytes, "fuzz.labels");
                break;
            case 1: {
                const std::string shard = (scratch() / "shard.tar").string();
                write_file(shard, bytes);
                for (const TarMember& m : list_tar(shard)) {
                    (void)read_range(shard, m.offset, m.size);
                }
                break;
            }
            default: {
                write_file(scratch() / kManifestName, bytes);
                const Manifest manifest(scratch().string(), false);
                (void)manifest.settings();
                (void)manifest.query({});
                break;
            }
        }
    } catch (const dojo::Error&) {
        // The expected outcome for most inputs: an error naming the file and the problem.
    }
    return 0;
}
