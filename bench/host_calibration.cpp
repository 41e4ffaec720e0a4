// Calibration of a machine description of hosts (machines/lib/hosts.toml): what one core adds at, and what the link
// between two MPI ranks carries. Nothing the simulator is later checked against: the all-reduce it predicts from
// these figures is measured separately (allreduce_bench, dojo train; bench/sim_vs_measured.py).
//
//   mpirun -np 2 host_calibration        (any extra ranks wait at the final barrier)
//
// 1. Reduction (rank 0, one thread, as MPI's MPI_SUM runs): y[i] += x[i] over FP32 buffers of each size; its rate
//    counts 3 bytes of memory traffic per operand byte (two reads, one write), as reduce_bandwidth does.
// 2. Link, one way (as OSU's osu_latency): the one-way time of a message of each size, from a ping-pong between
//    ranks 0 and 1.
// 3. Link, both ways (as OSU's osu_bibw): ranks 0 and 1 send each other a message of each size at once
//    (MPI_Sendrecv), as every step of a ring collective does. Where both directions share something (the memory and
//    the cores that copy for shared memory, a TCP stack's CPU time), this is slower than one way, and it is what a
//    machine description's link figures should be.
// Rank 0 prints a JSON line per measurement and, last, the fits: {"fit": {"reduce_bandwidth_gb_s",
// "one_way_latency_us", "one_way_bandwidth_gb_s", "exchange_latency_us", "exchange_bandwidth_gb_s"}}. A time is fitted as latency + bytes / bandwidth: the latency is the
// smallest message's time, the bandwidth the least-squares slope over the sizes from 1 MiB to 8 MiB (what gradient
// buckets are).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Seconds per byte: the least-squares slope of (bytes, seconds) over the points from 1 MiB to 8 MiB, the sizes of
// gradient buckets (8 MiB by default). Larger buffers leave the cache and run slower; they print all the same.
double bucket_range_slope(const std::vector<std::pair<double, double>>& points) {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& [x, y] : points) {
        if (x >= double(1 << 20) && x <= double(8 << 20)) {
            n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
        }
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// y += x, kept out of line so that the compiler cannot drop repeats.
[[gnu::noinline]] void add_into(float* y, const float* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        y[i] += x[i];
    }
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        std::fprintf(stderr, "run under mpirun with at least 2 ranks\n");
        MPI_Finalize();
        return 1;
    }
    std::vector<std::pair<double, double>> reduce_points;  // operand bytes, seconds
    if (rank == 0) {
        std::vector<float> x(std::size_t{16} << 20, 1.0f), y(x.size(), 0.0f);  // 64 MiB each, touched once here
        for (std::size_t bytes = 4096; bytes <= x.size() * sizeof(float); bytes *= 4) {
            const std::size_t n = bytes / sizeof(float);
            std::vector<double> seconds;
            for (int r = 0; r < 25; ++r) {
                const double start = MPI_Wtime();
                add_into(y.data(), x.data(), n);
                seconds.push_back(MPI_Wtime() - start);
            }
            const double t = median(seconds);
            reduce_points.emplace_back(static_cast<double>(bytes), t);
            std::printf("{\"reduce_bytes\": %zu, \"seconds\": %.9f, \"y0\": %.0f}\n", bytes, t, double(y[0]));
        }
    }
    std::vector<char> buffer(std::size_t{64} << 20, 1), incoming(buffer.size(), 0);
    std::vector<std::pair<double, double>> one_way_points, exchange_points;  // bytes, seconds
    for (const bool exchange : {false, true}) {
        for (std::size_t bytes = 8; bytes <= buffer.size(); bytes *= 4) {
            const int repeats = bytes <= (1 << 16) ? 200 : bytes <= (4 << 20) ? 40 : 10;
            const int count = static_cast<int>(bytes);
            std::vector<double> seconds;
            for (int r = 0; r < repeats + 5; ++r) {  // five warm-up rounds
                MPI_Barrier(MPI_COMM_WORLD);
                const double start = MPI_Wtime();
                if (rank < 2 && exchange) {
                    MPI_Sendrecv(buffer.data(), count, MPI_BYTE, 1 - rank, 0, incoming.data(), count, MPI_BYTE,
                                 1 - rank, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                } else if (rank == 0) {
                    MPI_Send(buffer.data(), count, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
                    MPI_Recv(buffer.data(), count, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                } else if (rank == 1) {
                    MPI_Recv(buffer.data(), count, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    MPI_Send(buffer.data(), count, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
                }
                if (r >= 5) {
                    seconds.push_back((MPI_Wtime() - start) / (exchange ? 1 : 2));
                }
            }
            const double t = median(seconds);
            (exchange ? exchange_points : one_way_points).emplace_back(static_cast<double>(bytes), t);
            if (rank == 0) {
                std::printf("{\"%s_bytes\": %zu, \"seconds\": %.9f}\n", exchange ? "exchange" : "one_way", bytes, t);
                std::fflush(stdout);
            }
        }
    }
    if (rank == 0) {
        std::printf("{\"fit\": {\"reduce_bandwidth_gb_s\": %.4f, \"one_way_latency_us\": %.3f, "
                    "\"one_way_bandwidth_gb_s\": %.4f, \"exchange_latency_us\": %.3f, "
                    "\"exchange_bandwidth_gb_s\": %.4f}}\n",
                    3e-9 / bucket_range_slope(reduce_points), one_way_points.front().second * 1e6,
                    1e-9 / bucket_range_slope(one_way_points), exchange_points.front().second * 1e6,
                    1e-9 / bucket_range_slope(exchange_points));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
