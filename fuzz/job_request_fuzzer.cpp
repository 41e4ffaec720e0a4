// libFuzzer target: the service's job requests (`POST /v1/jobs` bodies, service/job_spec.h) must parse into a job
// whose command line can be built and whose stored form reads back the same, or a dojo::UsageError, for any bytes:
// never crash, overflow, hang or exhaust memory. Built by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address); run
// briefly by `make test`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dojo/service/job_spec.h"
#include "dojo/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    try {
        const dojo::service::JobSpec spec = dojo::service::parse_job_request(body, 4);
        const auto argv = dojo::service::job_argv(spec, "/bin/dojo", "/state/jobs/1", true);
        if (argv.size() < 4 || dojo::service::job_spec_from_json(dojo::service::to_json(spec)).args != spec.args) {
            std::abort();  // an accepted job must have a command line and survive the store
        }
    } catch (const dojo::UsageError&) {
        // The expected outcome for most inputs: a 400 naming the field.
    }
    return 0;
}
