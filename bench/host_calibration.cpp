// Calibration of a machine description of hosts (machines/lib/hosts.toml): what one core adds at, and what the link
// between two MPI ranks carries. Nothing the simulator is later checked against: the all-reduce it predicts from
// these figures is measured separately (allreduce_bench, dojo train; bench/sim_vs_measured.py).
//
//   mpirun -np 2 host_calibration        (any extra ranks wait at the final barrier)
//
// 1. The steps of the binomial all-reduce that OpenMPI runs for the gradients (machines/lib/hosts.toml), done by hand
//    with MPI_Send/MPI_Recv and a plain loop, each step timed: rank 1 sends its buffer to rank 0, rank 0 adds it into
//    its own (y[i] += x[i], one thread, as MPI's MPI_SUM runs), rank 0 sends the sum back. The addition's operands
//    arrive fresh from the transfer, outside this core's private caches, so it runs at about a third of the rate of
//    a loop over hot buffers; its rate counts 3 bytes of memory traffic per operand byte (two reads, one write), as
//    reduce_bandwidth does. The transfers carry buffers just written, as the all-reduce's do.
// 2. Link, one way (as OSU's osu_latency): the one-way time of a message of each size, from a ping-pong between
//    ranks 0 and 1 (hot buffers: the latency, and the link's best rate).
// 3. Link, both ways (as OSU's osu_bibw): ranks 0 and 1 send each other a message of each size at once
//    (MPI_Sendrecv), as every step of a ring collective does. Where both directions share something (the memory and
//    the cores that copy for shared memory, a TCP stack's CPU time), this is slower than one way: the figure for
//    libraries that run rings.
// Rank 0 prints a JSON line per measurement and, last, the fits: {"fit": {"reduce_bandwidth_gb_s",
// "transfer_bandwidth_gb_s", "one_way_latency_us", "one_way_bandwidth_gb_s", "exchange_latency_us",
// "exchange_bandwidth_gb_s"}}. A time is fitted as latency + bytes / bandwidth: the latency is the smallest message's
// time, the bandwidth the least-squares slope over 1-4 MiB for the all-reduce's steps (gradient buckets whose buffer
// and received copy stay in the cache; the ping-pong and the exchange: 1-8 MiB), and over 16-32 MiB for the
// "beyond_cache" rates (buffers that do not).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Seconds per byte: the least-squares slope of (bytes, seconds) over the points from `low` to `high` bytes.
double slope(const std::vector<std::pair<double, double>>& points, double low, double high) {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const auto& [x, y] : points) {
        if (x >= low && x <= high) {
            n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
        }
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// Over 1-4 MiB, the sizes of gradient buckets (8 MiB by default) whose buffer and received copy stay in cache.
double bucket_range_slope(const std::vector<std::pair<double, double>>& points) {
    return slope(points, double(1 << 20), double(4 << 20));
}

// Over 16-32 MiB: a buffer and its received copy of 32-64 MiB, beyond the VM's 32 MiB L3 (cache = "16 MiB" per
// rank in machines/lib/hosts.toml).
double beyond_cache_slope(const std::vector<std::pair<double, double>>& points) {
    return slope(points, double(16 << 20), double(32 << 20));
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
    // 1. The binomial all-reduce's own steps, each timed: rank 1 sends its buffer to rank 0, rank 0 adds it into its
    //    own, rank 0 sends the sum back. The operands of the addition arrive fresh from the transfer (not in this
    //    core's private caches), and the buffers go out right after being written, as in MPI_Iallreduce.
    std::vector<std::pair<double, double>> reduce_points, transfer_points;  // operand bytes, seconds
    {
        // Zeros: the sums stay zero however often they go round (the rate of adding does not depend on the values).
        std::vector<float> mine(std::size_t{8} << 20, 0.0f), received(mine.size(), 0.0f);  // 32 MiB each
        for (std::size_t bytes = 4096; bytes <= mine.size() * sizeof(float); bytes *= bytes < (1 << 20) ? 4 : 2) {
            const std::size_t n = bytes / sizeof(float);
            const int count = static_cast<int>(n);
            std::vector<double> reduce_s, transfer_s;
            // Rank `from`'s `out` into rank `to`'s `in`.
            const auto send_buffer = [&](int from, int to, const float* out, float* in) {
                if (rank == from) {
                    MPI_Send(out, count, MPI_FLOAT, to, 0, MPI_COMM_WORLD);
                } else if (rank == to) {
                    MPI_Recv(in, count, MPI_FLOAT, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                }
            };
            for (int r = 0; r < 15; ++r) {  // the first three warm up
                MPI_Barrier(MPI_COMM_WORLD);
                const double start = MPI_Wtime();
                send_buffer(1, 0, mine.data(), received.data());
                const double received_at = MPI_Wtime();
                if (rank == 0) {
                    add_into(mine.data(), received.data(), n);
                }
                const double added_at = MPI_Wtime();
                send_buffer(0, 1, mine.data(), mine.data());
                const double back_at = MPI_Wtime();
                if (r >= 3) {
                    reduce_s.push_back(added_at - received_at);
                    transfer_s.push_back((received_at - start + back_at - added_at) / 2);
                }
            }
            const double reduce = median(reduce_s);
            const double transfer = median(transfer_s);
            reduce_points.emplace_back(static_cast<double>(bytes), reduce);
            transfer_points.emplace_back(static_cast<double>(bytes), transfer);
            if (rank == 0) {
                std::printf("{\"allreduce_step_bytes\": %zu, \"transfer_seconds\": %.9f, \"reduce_seconds\": %.9f}\n",
                            bytes, transfer, reduce);
                std::fflush(stdout);
            }
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
        std::printf("{\"fit\": {\"reduce_bandwidth_gb_s\": %.4f, \"transfer_bandwidth_gb_s\": %.4f, "
                    "\"reduce_bandwidth_beyond_cache_gb_s\": %.4f, \"transfer_bandwidth_beyond_cache_gb_s\": %.4f, "
                    "\"one_way_latency_us\": %.3f, \"one_way_bandwidth_gb_s\": %.4f, \"exchange_latency_us\": %.3f, "
                    "\"exchange_bandwidth_gb_s\": %.4f}}\n",
                    3e-9 / bucket_range_slope(reduce_points), 1e-9 / bucket_range_slope(transfer_points),
                    3e-9 / beyond_cache_slope(reduce_points), 1e-9 / beyond_cache_slope(transfer_points),
                    one_way_points.front().second * 1e6,
                    1e-9 / slope(one_way_points, double(1 << 20), double(8 << 20)),
                    exchange_points.front().second * 1e6,
                    1e-9 / slope(exchange_points, double(1 << 20), double(8 << 20)));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
