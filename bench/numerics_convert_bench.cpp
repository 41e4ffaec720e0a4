// Bulk FP32 -> CFloat8 conversion throughput (issue: >= 1 G elements/s per core nearest, >= 0.5 G/s stochastic).
//
// Every configuration runs side by side in one process on the same 16 Mi-element input, so the ratios between
// rows are meaningful: each instruction-set path against the portable path, 1 thread against all threads, and
// every conversion against a plain 4-byte -> 1-byte narrowing copy (the memory-bound floor of any FP32 -> 8-bit
// conversion). Run: `make bench` (it unsets OPENBLAS_CORETYPE and pins nothing).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <random>
#include <vector>

#include "dojo/numerics/bias.h"
#include "dojo/numerics/convert.h"

namespace {

using namespace dojo::numerics;

constexpr std::size_t kElements = std::size_t{1} << 24;

// Realistic activations/gradients: normal around 0 with a spread of magnitudes, some in the denormal range.
const std::vector<float>& input() {
    static const std::vector<float> values = [] {
        std::vector<float> v(kElements);
        std::mt19937 rng(42);
        std::normal_distribution<float> normal(0.0f, 4.0f);
        for (float& x : v) {
            x = normal(rng);
        }
        return v;
    }();
    return values;
}

std::vector<std::uint8_t>& output() {
    static std::vector<std::uint8_t> codes(kElements, 1);  // touched once here, reused by every run
    return codes;
}

int threads_arg(const benchmark::State& state) {
    return state.range(1) == 0 ? omp_get_max_threads() : static_cast<int>(state.range(1));
}

void BM_EncodeCfp8(benchmark::State& state, FormatKind kind, Rounding rounding) {
    const auto isa = static_cast<Isa>(state.range(0));
    if (!isa_available(isa)) {
        state.SkipWithError("instruction set not available on this CPU");
        return;
    }
    ConvertOptions options;
    options.rounding = rounding;
    options.seed = 7;
    options.isa = isa;
    options.threads = threads_arg(state);
    const FormatSpec spec = make_format(kind);
    const std::vector<float>& in = input();
    std::vector<std::uint8_t>& out = output();
    for (auto _ : state) {
        benchmark::DoNotOptimize(encode(in, out, spec, options));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kElements));
    state.SetLabel(std::string(to_string(isa)) + ", " + std::to_string(options.threads) + " thread(s)");
}

// Peer: the cheapest possible FP32 -> 8-bit pass (truncating the bit pattern), same threads, same memory traffic.
void BM_NarrowingCopy(benchmark::State& state) {
    const int threads = threads_arg(state);
    const std::vector<float>& in = input();
    std::vector<std::uint8_t>& out = output();
    const auto n = static_cast<std::int64_t>(kElements);
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
            out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(__builtin_bit_cast(std::uint32_t,
                                                                          in[static_cast<std::size_t>(i)]) >> 24);
        }
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kElements));
    state.SetLabel(std::to_string(threads) + " thread(s)");
}

std::vector<float>& rounded() {
    static std::vector<float> values(kElements, 1.0f);  // touched once here, reused by every run
    return values;
}

// What the training step's RoundTo does to a tensor (ir/rounding.h): max-abs, bias from it, FP32 -> FP32 rounded onto
// the format's grid. Peer: the FP32 copy, the memory-bound floor of any FP32 -> FP32 pass.
void BM_RoundCfp8(benchmark::State& state, FormatKind kind, Rounding rounding) {
    ConvertOptions options;
    options.rounding = rounding;
    options.seed = 7;
    options.threads = threads_arg(state);
    const std::vector<float>& in = input();
    std::vector<float>& out = rounded();
    for (auto _ : state) {
        const float largest = max_abs(in, options.threads);
        const FormatSpec spec = make_format(kind, choose_bias(kind, largest).bias);
        benchmark::DoNotOptimize(round_to_format(in, out, spec, options));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kElements));
    state.SetLabel(std::to_string(options.threads) + " thread(s)");
}

void BM_Copy(benchmark::State& state) {
    const int threads = threads_arg(state);
    const std::vector<float>& in = input();
    std::vector<float>& out = rounded();
    const auto n = static_cast<std::int64_t>(kElements);
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
            out[static_cast<std::size_t>(i)] = in[static_cast<std::size_t>(i)];
        }
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kElements));
    state.SetLabel(std::to_string(threads) + " thread(s)");
}

void isa_and_threads(benchmark::internal::Benchmark* b) {
    for (const Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
        for (const int threads : {1, 0}) {
            b->Args({static_cast<std::int64_t>(isa), threads});
        }
    }
    b->ArgNames({"isa", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_EncodeCfp8, cfp8_143_nearest, FormatKind::Cfp8_143, Rounding::NearestEven)
    ->Apply(isa_and_threads);
BENCHMARK_CAPTURE(BM_EncodeCfp8, cfp8_143_stochastic, FormatKind::Cfp8_143, Rounding::Stochastic)
    ->Apply(isa_and_threads);
BENCHMARK_CAPTURE(BM_EncodeCfp8, cfp8_152_nearest, FormatKind::Cfp8_152, Rounding::NearestEven)
    ->Apply(isa_and_threads);
BENCHMARK_CAPTURE(BM_EncodeCfp8, cfp8_152_stochastic, FormatKind::Cfp8_152, Rounding::Stochastic)
    ->Apply(isa_and_threads);
BENCHMARK_CAPTURE(BM_RoundCfp8, cfp8_143_nearest, FormatKind::Cfp8_143, Rounding::NearestEven)
    ->ArgNames({"unused", "threads"})->Args({0, 1})->Args({0, 0})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_RoundCfp8, cfp8_152_stochastic, FormatKind::Cfp8_152, Rounding::Stochastic)
    ->ArgNames({"unused", "threads"})->Args({0, 1})->Args({0, 0})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Copy)->ArgNames({"unused", "threads"})->Args({0, 1})->Args({0, 0})->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NarrowingCopy)->ArgNames({"unused", "threads"})->Args({0, 1})->Args({0, 0})->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
