// All-reduce bandwidth of data-parallel training's gradient path, run under mpirun (bench/mpi_scaling.py starts it on
// loopback and across two network namespaces). Side by side, per message size:
//   mpi      MPI's own all-reduce (MPI_Iallreduce, the library's algorithm), the peer
//   sync     GradientSync as training uses it (copy into the bucket, MPI all-reduce, mean back out)
//   fixed    GradientSync with the fixed rank order (all-to-all + all-gather)
//   bf16     ... with BF16 on the wire;   cfp8   ... with cfp8_152 on the wire
// Reports the median time of a reduction and the bus bandwidth (nccl-tests' convention: FP32 bytes / time *
// 2 (N - 1) / N, the traffic per rank of a ring), as JSON lines on rank 0's stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "dojo/runtime/gradient_sync.h"
#include "dojo/runtime/process_group.h"

using namespace dojo::runtime;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main() {
    auto group = ProcessGroup::from_environment(120);
    if (!group->distributed()) {
        std::fprintf(stderr, "run under mpirun with at least 2 ranks\n");
        return 1;
    }
    const int ranks = group->size();
    for (std::size_t bytes = 4096; bytes <= (std::size_t{64} << 20); bytes *= 4) {
        const std::size_t n = bytes / sizeof(float);
        std::vector<float> values(n, 1.0f + static_cast<float>(group->rank()));
        const int repeats = bytes <= (1 << 20) ? 40 : bytes <= (16 << 20) ? 12 : 5;
        for (const std::string mode : {"mpi", "sync", "fixed", "bf16", "cfp8"}) {
            std::unique_ptr<GradientSync> sync;
            if (mode != "mpi") {
                GradientSyncOptions options;
                options.bucket_bytes = bytes;
                options.order = mode == "sync" ? ReduceOrder::Any : ReduceOrder::Fixed;
                options.wire = mode == "bf16" ? WireFormat::Bf16 : mode == "cfp8" ? WireFormat::Cfp8 : WireFormat::Fp32;
                const std::vector<std::size_t> sizes{n};
                const std::vector<std::size_t> order{0};
                sync = std::make_unique<GradientSync>(*group, sizes, order, options);
            }
            std::vector<double> seconds;
            for (int r = 0; r < repeats + 2; ++r) {  // two warm-up rounds
                group->barrier("a benchmark barrier");
                const auto start = std::chrono::steady_clock::now();
                if (sync) {
                    sync->begin_step(r + 1);
                    sync->ready(0, values);
                    sync->wait(0, values);
                } else {
                    group->submit("an all-reduce", [&](ProcessGroup::Mpi& mpi) {
                        mpi.wait(mpi.iallreduce_sum(std::span(values)));
                    }).get();
                }
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                std::vector<double> slowest{s};  // a reduction takes as long as its slowest rank
                group->allreduce_sum(slowest);   // (sum / ranks: the mean over ranks, close to the max here)
                if (r >= 2) {
                    seconds.push_back(slowest[0] / ranks);
                }
                std::fill(values.begin(), values.end(), 1.0f + static_cast<float>(group->rank()));
            }
            const double t = median(seconds);
            const double bus = static_cast<double>(bytes) / t * 2.0 * (ranks - 1) / ranks;
            if (group->rank() == 0) {
                std::printf("{\"ranks\": %d, \"bytes\": %zu, \"mode\": \"%s\", \"seconds\": %.9f, \"bus_gb_s\": %.4f}\n",
                            ranks, bytes, mode.c_str(), t, bus / 1e9);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
