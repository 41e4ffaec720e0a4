#include "dojo/runtime/round_channel_blocked.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <optional>
#include <span>

#include "dojo/ir/rounding.h"
#include "dojo/runtime/channel_blocked.h"

namespace dojo::runtime {
namespace {

constexpr std::int64_t kTile = kChannelBlock;  // a 16 x 16 tile: 16 pixels of 16 channels

// out[c * out_stride + r] = in[r * in_stride + c] for a 16 x 16 tile, one element at a time.
void transpose_tile_portable(const float* in, std::int64_t in_stride, float* out, std::int64_t out_stride) {
    for (std::int64_t r = 0; r < kTile; ++r) {
        for (std::int64_t c = 0; c < kTile; ++c) {
            out[c * out_stride + r] = in[r * in_stride + c];
        }
    }
}

#if defined(__x86_64__)
// GCC 12's unpack intrinsics pass an undefined vector as their (unused) merge source, which -Wuninitialized flags
// (GCC bug 105593); nothing here is read uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
// The same in AVX-512 registers: 16 row loads, four rounds of shuffles, 16 column stores. After the first two rounds
// u[4 q + j] holds, in 128-bit lane k, rows 4q..4q+3 of column 4k + j; the last two gather the four lanes of a column.
__attribute__((target("avx512f"))) void transpose_tile_avx512(const float* in, std::int64_t in_stride, float* out,
                                                               std::int64_t out_stride) {
    __m512 r[kTile];
    for (std::int64_t i = 0; i < kTile; ++i) {
        r[i] = _mm512_loadu_ps(in + i * in_stride);
    }
    __m512 u[kTile];
    for (int q = 0; q < 4; ++q) {
        const __m512 t0 = _mm512_unpacklo_ps(r[4 * q], r[4 * q + 1]);
        const __m512 t1 = _mm512_unpackhi_ps(r[4 * q], r[4 * q + 1]);
        const __m512 t2 = _mm512_unpacklo_ps(r[4 * q + 2], r[4 * q + 3]);
        const __m512 t3 = _mm512_unpackhi_ps(r[4 * q + 2], r[4 * q + 3]);
        u[4 * q] = _mm512_shuffle_ps(t0, t2, 0x44);
        u[4 * q + 1] = _mm512_shuffle_ps(t0, t2, 0xEE);
        u[4 * q + 2] = _mm512_shuffle_ps(t1, t3, 0x44);
        u[4 * q + 3] = _mm512_shuffle_ps(t1, t3, 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);       // columns j, 8+j: rows 0-7
        const __m512 v4 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);       // columns 4+j, 12+j: rows 0-7
        const __m512 v8 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);  // columns j, 8+j: rows 8-15
        const __m512 v12 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD); // columns 4+j, 12+j: rows 8-15
        _mm512_storeu_ps(out + j * out_stride, _mm512_shuffle_f32x4(v0, v8, 0x88));
        _mm512_storeu_ps(out + (8 + j) * out_stride, _mm512_shuffle_f32x4(v0, v8, 0xDD));
        _mm512_storeu_ps(out + (4 + j) * out_stride, _mm512_shuffle_f32x4(v4, v12, 0x88));
        _mm512_storeu_ps(out + (12 + j) * out_stride, _mm512_shuffle_f32x4(v4, v12, 0xDD));
    }
}
#pragma GCC diagnostic pop
#endif

using TransposeTile = void (*)(const float*, std::int64_t, float*, std::int64_t);

TransposeTile pick_transpose_tile() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        return transpose_tile_avx512;
    }
#endif
    return transpose_tile_portable;
}

// plain[c * plain_stride + p] = blocked[16 p + c] for `pixels` pixels of a block's 16 channels.
void to_plain_order(TransposeTile tile, const float* blocked, std::int64_t pixels, float* plain,
                    std::int64_t plain_stride) {
    const std::int64_t whole = pixels - pixels % kTile;
    for (std::int64_t p = 0; p < whole; p += kTile) {
        tile(blocked + p * kChannelBlock, kChannelBlock, plain + p, plain_stride);
    }
    for (std::int64_t p = whole; p < pixels; ++p) {
        for (std::int64_t c = 0; c < kChannelBlock; ++c) {
            plain[c * plain_stride + p] = blocked[p * kChannelBlock + c];
        }
    }
}

// The way back: blocked[16 p + c] = plain[c * plain_stride + p].
void to_blocked_order(TransposeTile tile, const float* plain, std::int64_t plain_stride, std::int64_t pixels,
                      float* blocked) {
    const std::int64_t whole = pixels - pixels % kTile;
    for (std::int64_t p = 0; p < whole; p += kTile) {
        tile(plain + p, plain_stride, blocked + p * kChannelBlock, kChannelBlock);
    }
    for (std::int64_t p = whole; p < pixels; ++p) {
        for (std::int64_t c = 0; c < kChannelBlock; ++c) {
            blocked[p * kChannelBlock + c] = plain[c * plain_stride + p];
        }
    }
}

// Pixels of a block rounded at a time: 16 channels of them (16 KiB) stay in the L1 cache through the transpose, the
// rounding and the transpose back.
constexpr std::int64_t kPiecePixels = 256;

}  // namespace

void round_channel_blocked(const ir::RoundAttrs& attrs, double step, const ir::Shape& shape, const float* x, float* y,
                           float whole_max_abs) {
    const auto n = static_cast<std::size_t>(shape.numel());
    const std::span<const float> in(x, n);
    const float max_abs = whole_max_abs;
    if (attrs.rounding != numerics::Rounding::Stochastic) {
        ir::round_piece(attrs, step, in, std::span<float>(y, n), max_abs, 0);  // element by element: any order
        return;
    }
    const std::optional<ir::RoundingSetup> setup = ir::rounding_setup(attrs, step, max_abs);
    if (!setup) {  // an overflowed tensor: passed on unchanged (round_piece)
        std::copy(x, x + n, y);
        return;
    }
    const numerics::PieceRounder rounder(setup->spec, setup->options);
    static const TransposeTile tile = pick_transpose_tile();
    const std::int64_t plane = shape[2] * shape[3];
    const std::int64_t row = kChannelBlock * plane;  // one sample's block of 16 channels
    const std::int64_t rows = shape.numel() / row;
    // Block b of sample s starts at plain element (s C + 16 b) H W = r * row (rows are in that order), and its
    // channel c's pixel p is plain element r * row + c * plane + p.
#pragma omp parallel for schedule(static) collapse(2)
    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t p0 = 0; p0 < plane; p0 += kPiecePixels) {
            const std::int64_t pixels = std::min(kPiecePixels, plane - p0);
            alignas(64) float piece[kChannelBlock * kPiecePixels];  // [16, pixels]
            to_plain_order(tile, x + r * row + p0 * kChannelBlock, pixels, piece, pixels);
            for (std::int64_t c = 0; c < kChannelBlock; ++c) {
                float* run = piece + c * pixels;
                rounder.round(run, run, static_cast<std::size_t>(pixels),
                              static_cast<std::uint64_t>(r * row + c * plane + p0));
            }
            to_blocked_order(tile, piece, pixels, pixels, y + r * row + p0 * kChannelBlock);
        }
    }
}

}  // namespace dojo::runtime
