#include "dojo/runtime/max_pool.h"

#include "dojo/ir/pooling.h"
#include "dojo/runtime/channel_blocked.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

struct Geometry {
    std::int64_t planes, h, w, oh, ow, kh, kw, sh, sw, pt, pl;
    std::int64_t ow_first, ow_last;  // outputs [ow_first, ow_last) of a row have their columns wholly inside
};

Geometry geometry(const ir::PoolAttrs& a, const ir::Shape& x, const ir::Shape& y) {
    Geometry g{};
    g.planes = x[0] * x[1];
    g.h = x[2], g.w = x[3];
    g.kh = a.kernel[0], g.kw = a.kernel[1], g.sh = a.strides[0], g.sw = a.strides[1];
    g.pt = a.pads[0], g.pl = a.pads[1];
    g.oh = y[2], g.ow = y[3];
    g.ow_first = std::min(g.ow, (g.pl + g.sw - 1) / g.sw);  // first ow with ow * sw - pl >= 0
    g.ow_last = g.ow_first;
    while (g.ow_last < g.ow && g.ow_last * g.sw - g.pl + g.kw <= g.w) {
        ++g.ow_last;
    }
    return g;
}

// Whether 2x2 windows at stride 2 tile the plane: none reaches padding (an odd last row or column lies in none), and
// the CPU has AVX-512 for the kernels below that read them 32 values at a time.
bool use_tiled_2x2_avx512(const Geometry& g) {
    return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.pt == 0 && g.pl == 0 && 2 * g.oh <= g.h &&
           2 * g.ow <= g.w && numerics::best_isa() == numerics::Isa::Avx512;
}

// Interior windows of one output row, outputs [0, count) here being ow_first + i: `best` and `at` (index into the
// plane) receive each window's first maximum. Positions are visited in the window's (row, column) order; a position
// takes over when it is greater, or a NaN while the best is not (so the first NaN stays): the reference's rule.
// kStride > 0 fixes the column stride at compile time (the compiler then loads strided columns with shuffles, not
// lane by lane); 0 reads it from `sw`.
template <int kStride>
inline __attribute__((always_inline)) void interior_row_body(const float* __restrict plane, std::int64_t first_index,
                                                             std::int64_t w, std::int64_t kh, std::int64_t kw,
                                                             std::int64_t sw, std::int64_t count,
                                                             float* __restrict best, std::int32_t* __restrict at) {
    const std::int64_t stride = kStride > 0 ? kStride : sw;
    for (std::int64_t i = 0; i < count; ++i) {
        best[i] = plane[first_index + i * stride];
        at[i] = static_cast<std::int32_t>(first_index + i * stride);
    }
    for (std::int64_t r = 0; r < kh; ++r) {
        for (std::int64_t s = 0; s < kw; ++s) {
            if (r == 0 && s == 0) {
                continue;
            }
            const std::int64_t offset = first_index + r * w + s;
            for (std::int64_t i = 0; i < count; ++i) {
                const float v = plane[offset + i * stride];
                const bool take = v > best[i] || (v != v && best[i] == best[i]);
                best[i] = take ? v : best[i];
                at[i] = take ? static_cast<std::int32_t>(offset + i * stride) : at[i];
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DOJO_POOL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DOJO_POOL_CLONES
#endif

DOJO_POOL_CLONES void interior_row_stride1(const float* plane, std::int64_t first_index, std::int64_t w,
                                           std::int64_t kh, std::int64_t kw, std::int64_t count, float* best,
                                           std::int32_t* at) {
    interior_row_body<1>(plane, first_index, w, kh, kw, 1, count, best, at);
}

DOJO_POOL_CLONES void interior_row_stride2(const float* plane, std::int64_t first_index, std::int64_t w,
                                           std::int64_t kh, std::int64_t kw, std::int64_t count, float* best,
                                           std::int32_t* at) {
    interior_row_body<2>(plane, first_index, w, kh, kw, 2, count, best, at);
}

DOJO_POOL_CLONES void interior_row_any(const float* plane, std::int64_t first_index, std::int64_t w, std::int64_t kh,
                                       std::int64_t kw, std::int64_t sw, std::int64_t count, float* best,
                                       std::int32_t* at) {
    interior_row_body<0>(plane, first_index, w, kh, kw, sw, count, best, at);
}

// The 2x2 window at stride 2 (the commonest pooling) in one pass over the outputs, its four positions in
// interior_row_body's order with its select, the running maximum kept in registers rather than in `best` between
// positions.
DOJO_POOL_CLONES void interior_row_2x2_stride2(const float* plane, std::int64_t first_index, std::int64_t w,
                                               std::int64_t count, float* __restrict best,
                                               std::int32_t* __restrict at) {
    const float* __restrict top = plane + first_index;
    const float* __restrict bottom = top + w;
    const auto first = static_cast<std::int32_t>(first_index);
    const auto below = static_cast<std::int32_t>(w);
    for (std::int64_t i = 0; i < count; ++i) {
        const auto left = static_cast<std::int32_t>(2 * i);
        float b = top[2 * i];
        std::int32_t a = first + left;
        const float candidates[3] = {top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]};
        const std::int32_t positions[3] = {first + left + 1, first + below + left, first + below + left + 1};
        for (int k = 0; k < 3; ++k) {
            const float v = candidates[k];
            const bool take = v > b || (v != v && b == b);
            b = take ? v : b;
            a = take ? positions[k] : a;
        }
        best[i] = b;
        at[i] = a;
    }
}

void interior_row(const float* plane, std::int64_t first_index, std::int64_t w, std::int64_t kh, std::int64_t kw,
                  std::int64_t sw, std::int64_t count, float* best, std::int32_t* at) {
    if (kh == 2 && kw == 2 && sw == 2) {
        interior_row_2x2_stride2(plane, first_index, w, count, best, at);
    } else if (sw == 1) {
        interior_row_stride1(plane, first_index, w, kh, kw, count, best, at);
    } else if (sw == 2) {
        interior_row_stride2(plane, first_index, w, kh, kw, count, best, at);
    } else {
        interior_row_any(plane, first_index, w, kh, kw, sw, count, best, at);
    }
}

// Calls f(plane, oh, ow, at) for every output, at = index into the plane of its first maximum (-1: all padding), one
// output row after another within a plane; planes are split over the threads (windows never cross planes). Edge
// windows take the reference's own scan (ir/pooling.h).
template <typename F>
void for_each_window(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const Geometry& g, const float* x, F&& f) {
    const auto planes = g.planes;
    const std::int64_t plane_size = g.h * g.w;
    const std::int64_t interior = g.ow_last - g.ow_first;
#pragma omp parallel
    {
        std::vector<float> best(static_cast<std::size_t>(std::max<std::int64_t>(interior, 1)));
        std::vector<std::int32_t> at(best.size());
#pragma omp for schedule(static)
        for (std::int64_t p = 0; p < planes; ++p) {
            const float* plane = x + p * plane_size;
            for (std::int64_t oh = 0; oh < g.oh; ++oh) {
                const std::int64_t top = oh * g.sh - g.pt;
                const bool rows_inside = top >= 0 && top + g.kh <= g.h;
                std::int64_t ow = 0;
                if (rows_inside && interior > 0) {
                    for (; ow < g.ow_first; ++ow) {
                        f(p, oh, ow, ir::max_pool_first_maximum(attrs, x_shape, plane, oh, ow));
                    }
                    interior_row(plane, top * g.w + g.ow_first * g.sw - g.pl, g.w, g.kh, g.kw, g.sw, interior,
                                 best.data(), at.data());
                    for (std::int64_t i = 0; i < interior; ++i, ++ow) {
                        f(p, oh, ow, static_cast<std::int64_t>(at[static_cast<std::size_t>(i)]));
                    }
                }
                for (; ow < g.ow; ++ow) {
                    f(p, oh, ow, ir::max_pool_first_maximum(attrs, x_shape, plane, oh, ow));
                }
            }
        }
    }
}

// The channel-blocked kernels: a block plane is one sample's 16 channels, [H, W, 16]; every pixel holds the 16
// channels side by side, so one window is scanned for all 16 at once, a lane per channel, with the same select as
// interior_row_body. The window is clipped to the plane as the reference clips it (edge windows alike).
struct ClippedWindow {
    std::int64_t first;           // pixel of the window's first position inside the plane
    std::int64_t rows, columns;   // positions inside the plane
};

inline ClippedWindow clip(const Geometry& g, std::int64_t oh, std::int64_t ow) {
    const std::int64_t top = oh * g.sh - g.pt;
    const std::int64_t left = ow * g.sw - g.pl;
    const std::int64_t r0 = std::max<std::int64_t>(0, -top);
    const std::int64_t r1 = std::min<std::int64_t>(g.kh, g.h - top);
    const std::int64_t s0 = std::max<std::int64_t>(0, -left);
    const std::int64_t s1 = std::min<std::int64_t>(g.kw, g.w - left);
    return {(top + r0) * g.w + left + s0, std::max<std::int64_t>(r1 - r0, 0), std::max<std::int64_t>(s1 - s0, 0)};
}

// Each lane's first maximum of a window with at least one position inside: value into best, and with kIndex its pixel
// into at, a lane per channel. With kFullRule the reference's rule (interior_row_body's select: a NaN wins at once);
// without it "take what is greater" alone, which gives the same result for a lane with no NaN in the window, and each
// lane's NaN test ORed into `nan`. The lane loops are `omp simd` so that each clone vectorises them for its own target
// (one AVX-512 register holds the 16 lanes); GCC's vector types would not do: they are lowered before target_clones
// makes the clones, to scalar code.
template <bool kIndex, bool kFullRule>
inline __attribute__((always_inline)) void scan_lanes(const float* __restrict plane, const ClippedWindow& c,
                                                       std::int64_t w, float* __restrict best,
                                                       std::int32_t* __restrict at, std::int32_t* __restrict nan) {
    const float* first = plane + c.first * kChannelBlock;
#pragma omp simd
    for (std::int64_t l = 0; l < kChannelBlock; ++l) {
        best[l] = first[l];
        if constexpr (!kFullRule) {
            nan[l] = first[l] != first[l];
        }
        if constexpr (kIndex) {
            at[l] = static_cast<std::int32_t>(c.first);
        }
    }
    for (std::int64_t r = 0; r < c.rows; ++r) {
        for (std::int64_t s = r == 0 ? 1 : 0; s < c.columns; ++s) {
            const std::int64_t pixel = c.first + r * w + s;
            const float* v = plane + pixel * kChannelBlock;
#pragma omp simd
            for (std::int64_t l = 0; l < kChannelBlock; ++l) {
                bool take = v[l] > best[l];
                if constexpr (kFullRule) {
                    take = take || (v[l] != v[l] && best[l] == best[l]);
                } else {
                    nan[l] |= v[l] != v[l];
                }
                best[l] = take ? v[l] : best[l];
                if constexpr (kIndex) {
                    at[l] = take ? static_cast<std::int32_t>(pixel) : at[l];
                }
            }
        }
    }
}

// The window's first maxima: the fast scan, and the full rule again where some lane held a NaN (no window of a
// trained network's activations does).
template <bool kIndex>
inline __attribute__((always_inline)) void scan_window(const float* __restrict plane, const ClippedWindow& c,
                                                        std::int64_t w, float* __restrict best,
                                                        std::int32_t* __restrict at) {
    alignas(64) std::int32_t nan[kChannelBlock];
    scan_lanes<kIndex, false>(plane, c, w, best, at, nan);
    std::int32_t any_nan = 0;
    for (std::int64_t l = 0; l < kChannelBlock; ++l) {
        any_nan |= nan[l];
    }
    if (any_nan != 0) {
        scan_lanes<kIndex, true>(plane, c, w, best, at, nullptr);
    }
}

// The windows covering row (or column) i of the input: window o covers [o s - pad, o s - pad + k), so those from
// ceil((i + pad - k + 1) / s) through floor((i + pad) / s), clamped to the output's [0, count).
struct Covering {
    std::int64_t first, end;
};

inline Covering covering(std::int64_t i, std::int64_t pad, std::int64_t k, std::int64_t s, std::int64_t count) {
    const std::int64_t at_least = i + pad - k + 1;
    return {at_least <= 0 ? 0 : (at_least + s - 1) / s, std::min(count, (i + pad) / s + 1)};
}

// One output row of a block plane: y_row [OW, 16].
DOJO_POOL_CLONES void blocked_forward_row(const float* plane, const Geometry& g, std::int64_t oh, float* y_row) {
    for (std::int64_t ow = 0; ow < g.ow; ++ow) {
        const ClippedWindow c = clip(g, oh, ow);
        float* y = y_row + ow * kChannelBlock;
        if (c.rows == 0 || c.columns == 0) {
            std::fill(y, y + kChannelBlock, -std::numeric_limits<float>::infinity());
            continue;
        }
        scan_window<false>(plane, c, g.w, y, nullptr);
    }
}

// The gradients of one block plane: dy_plane [OH, OW, 16] into dx_plane [H, W, 16]. Each window's first maximum per
// lane goes into at_plane [OH, OW, 16] (-1: all padding); then every pixel gathers, per lane, the gradients of the
// windows covering it whose maximum it is, in window order from +0 (the reference's adds into a cleared dx, in the
// same order, so the same bits), and is written once: no clearing pass, no read-modify-write per window position.
DOJO_POOL_CLONES void blocked_backward_plane(const float* plane, const Geometry& g, const float* dy_plane,
                                             float* dx_plane, std::int32_t* at_plane) {
    for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        for (std::int64_t ow = 0; ow < g.ow; ++ow) {
            const ClippedWindow c = clip(g, oh, ow);
            std::int32_t* at = at_plane + (oh * g.ow + ow) * kChannelBlock;
            if (c.rows == 0 || c.columns == 0) {
                std::fill(at, at + kChannelBlock, -1);
                continue;
            }
            alignas(64) float best[kChannelBlock];
            alignas(64) std::int32_t first_at[kChannelBlock];
            scan_window<true>(plane, c, g.w, best, first_at);
            std::copy(first_at, first_at + kChannelBlock, at);
        }
    }
    for (std::int64_t h = 0; h < g.h; ++h) {
        const Covering rows = covering(h, g.pt, g.kh, g.sh, g.oh);
        for (std::int64_t x = 0; x < g.w; ++x) {
            const Covering columns = covering(x, g.pl, g.kw, g.sw, g.ow);
            const auto pixel = static_cast<std::int32_t>(h * g.w + x);
            float* __restrict dx = dx_plane + static_cast<std::int64_t>(pixel) * kChannelBlock;
#pragma omp simd
            for (std::int64_t l = 0; l < kChannelBlock; ++l) {
                dx[l] = 0.0f;
            }
            for (std::int64_t oh = rows.first; oh < rows.end; ++oh) {
                for (std::int64_t ow = columns.first; ow < columns.end; ++ow) {
                    const std::int32_t* __restrict at = at_plane + (oh * g.ow + ow) * kChannelBlock;
                    const float* __restrict dy = dy_plane + (oh * g.ow + ow) * kChannelBlock;
#pragma omp simd
                    for (std::int64_t l = 0; l < kChannelBlock; ++l) {
                        dx[l] = at[l] == pixel ? dx[l] + dy[l] : dx[l];
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__)
// blocked_backward_plane in AVX-512 registers, a lane per channel, the same steps and selects: GCC vectorises the
// portable code's index select poorly (the window maxima alone took 16 ms for ResNet-18's stem pooling, against 7 ms
// for the forward scan without indices).
__attribute__((target("avx512f"))) void blocked_backward_plane_avx512(const float* plane, const Geometry& g,
                                                                     const float* dy_plane, float* dx_plane,
                                                                     std::int32_t* at_plane) {
    for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        for (std::int64_t ow = 0; ow < g.ow; ++ow) {
            const ClippedWindow c = clip(g, oh, ow);
            std::int32_t* at = at_plane + (oh * g.ow + ow) * kChannelBlock;
            if (c.rows == 0 || c.columns == 0) {
                _mm512_storeu_si512(at, _mm512_set1_epi32(-1));
                continue;
            }
            __m512 best = _mm512_loadu_ps(plane + c.first * kChannelBlock);
            __m512i first = _mm512_set1_epi32(static_cast<std::int32_t>(c.first));
            __mmask16 nan = _mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
            for (std::int64_t r = 0; r < c.rows; ++r) {
                for (std::int64_t s = r == 0 ? 1 : 0; s < c.columns; ++s) {
                    const std::int64_t pixel = c.first + r * g.w + s;
                    const __m512 v = _mm512_loadu_ps(plane + pixel * kChannelBlock);
                    const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
                    nan = static_cast<__mmask16>(nan | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
                    best = _mm512_mask_mov_ps(best, take, v);
                    first = _mm512_mask_mov_epi32(first, take, _mm512_set1_epi32(static_cast<std::int32_t>(pixel)));
                }
            }
            if (nan != 0) {  // the full rule, as scan_window falls back to
                alignas(64) float values[kChannelBlock];
                scan_lanes<true, true>(plane, c, g.w, values, at, nullptr);
            } else {
                _mm512_storeu_si512(at, first);
            }
        }
    }
    for (std::int64_t h = 0; h < g.h; ++h) {
        const Covering rows = covering(h, g.pt, g.kh, g.sh, g.oh);
        for (std::int64_t x = 0; x < g.w; ++x) {
            const Covering columns = covering(x, g.pl, g.kw, g.sw, g.ow);
            const auto pixel = static_cast<std::int32_t>(h * g.w + x);
            const __m512i here = _mm512_set1_epi32(pixel);
            __m512 dx = _mm512_setzero_ps();
            for (std::int64_t oh = rows.first; oh < rows.end; ++oh) {
                for (std::int64_t ow = columns.first; ow < columns.end; ++ow) {
                    const std::int64_t window = (oh * g.ow + ow) * kChannelBlock;
                    const __mmask16 mine = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(at_plane + window), here);
                    dx = _mm512_mask_add_ps(dx, mine, dx, _mm512_loadu_ps(dy_plane + window));
                }
            }
            _mm512_storeu_ps(dx_plane + static_cast<std::int64_t>(pixel) * kChannelBlock, dx);
        }
    }
}

// Planes tiled exactly by 2x2 windows at stride 2 (no window reaches padding; an odd last row or column lies in
// none): each output row is two input rows read 32 values at a time, split into even and odd columns by a permute,
// and the four positions taken in interior_row_body's order with its select. The backward pass writes dx row pair
// by row pair, each position's window gradient where that position won (0 + dy, as the reference's sum into a
// cleared dx gives: -0 becomes +0) and 0 elsewhere: every dx value written once. On narrow planes (LeNet's 28 and 10
// wide) interior_row's strided selects cost about 3 ns an output; these run near the rate of a copy.

struct Tiled2x2Masks {
    __mmask16 low, high, out;  // the input lanes of each 16-value half, and the output lanes
};

__attribute__((target("avx512f"))) inline Tiled2x2Masks tiled_masks(std::int64_t outputs) {
    const std::int64_t lanes = 2 * outputs;
    auto bits = [](std::int64_t n) {
        return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << static_cast<unsigned>(std::max<std::int64_t>(n, 0))) - 1);
    };
    return {bits(lanes), bits(lanes - 16), bits(outputs)};
}

// The window maxima of `m.out` outputs whose top-left inputs start at top[0] and bottom[0]: their values, and which
// of the four positions won (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
struct Tiled2x2Maxima {
    __m512 best;
    __m512i position;
};

__attribute__((target("avx512f"))) inline Tiled2x2Maxima tiled_maxima(const float* top, const float* bottom,
                                                                       const Tiled2x2Masks& m) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 top_low = _mm512_maskz_loadu_ps(m.low, top), top_high = _mm512_maskz_loadu_ps(m.high, top + 16);
    const __m512 bottom_low = _mm512_maskz_loadu_ps(m.low, bottom);
    const __m512 bottom_high = _mm512_maskz_loadu_ps(m.high, bottom + 16);
    const __m512 candidates[3] = {_mm512_permutex2var_ps(top_low, odd, top_high),
                                  _mm512_permutex2var_ps(bottom_low, even, bottom_high),
                                  _mm512_permutex2var_ps(bottom_low, odd, bottom_high)};
    Tiled2x2Maxima r{_mm512_permutex2var_ps(top_low, even, top_high), _mm512_setzero_si512()};
    for (int k = 0; k < 3; ++k) {
        const __m512 v = candidates[k];
        const __mmask16 nan_over_number = static_cast<__mmask16>(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
                                                                 _mm512_cmp_ps_mask(r.best, r.best, _CMP_ORD_Q));
        const __mmask16 take = static_cast<__mmask16>(_mm512_cmp_ps_mask(v, r.best, _CMP_GT_OQ) | nan_over_number);
        r.best = _mm512_mask_mov_ps(r.best, take, v);
        r.position = _mm512_mask_mov_epi32(r.position, take, _mm512_set1_epi32(k + 1));
    }
    return r;
}

// One plane's outputs (forward) or gradients (backward). The thread loops are in the callers below: an OpenMP
// region's body is a function of its own, which would not carry this one's target.
__attribute__((target("avx512f"))) void tiled_2x2_forward_plane(const Geometry& g, const float* plane, float* y) {
    for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        const float* top = plane + 2 * oh * g.w;
        float* y_row = y + oh * g.ow;
        for (std::int64_t i = 0; i < g.ow; i += 16) {
            const Tiled2x2Masks m = tiled_masks(std::min<std::int64_t>(16, g.ow - i));
            _mm512_mask_storeu_ps(y_row + i, m.out, tiled_maxima(top + 2 * i, top + g.w + 2 * i, m).best);
        }
    }
}

__attribute__((target("avx512f"))) void tiled_2x2_backward_plane(const Geometry& g, const float* plane,
                                                                  const float* dy, float* dx_plane) {
    const __m512i interleave_low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i interleave_high = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (std::int64_t oh = 0; oh < g.oh; ++oh) {
        const std::int64_t top = 2 * oh * g.w;
        const float* dy_row = dy + oh * g.ow;
        for (std::int64_t i = 0; i < g.ow; i += 16) {
            const Tiled2x2Masks m = tiled_masks(std::min<std::int64_t>(16, g.ow - i));
            const Tiled2x2Maxima w = tiled_maxima(plane + top + 2 * i, plane + top + g.w + 2 * i, m);
            const __m512 gradient = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m.out, dy_row + i));
            __m512 at[4];
            for (int k = 0; k < 4; ++k) {
                at[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(w.position, _mm512_set1_epi32(k)), gradient);
            }
            for (int row = 0; row < 2; ++row) {
                float* out = dx_plane + top + row * g.w + 2 * i;
                _mm512_mask_storeu_ps(out, m.low, _mm512_permutex2var_ps(at[2 * row], interleave_low, at[2 * row + 1]));
                _mm512_mask_storeu_ps(out + 16, m.high,
                                      _mm512_permutex2var_ps(at[2 * row], interleave_high, at[2 * row + 1]));
            }
        }
        for (std::int64_t row = 0; row < 2 && 2 * g.ow < g.w; ++row) {  // an odd last column: in no window
            std::fill(dx_plane + top + row * g.w + 2 * g.ow, dx_plane + top + (row + 1) * g.w, 0.0f);
        }
    }
    std::fill(dx_plane + 2 * g.oh * g.w, dx_plane + g.h * g.w, 0.0f);  // an odd last row
}

void tiled_2x2_forward_avx512(const Geometry& g, const float* x, float* y) {
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < g.planes; ++p) {
        tiled_2x2_forward_plane(g, x + p * g.h * g.w, y + p * g.oh * g.ow);
    }
}

void tiled_2x2_backward_avx512(const Geometry& g, const float* x, const float* dy, float* dx) {
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < g.planes; ++p) {
        tiled_2x2_backward_plane(g, x + p * g.h * g.w, dy + p * g.oh * g.ow, dx + p * g.h * g.w);
    }
}
#endif

}  // namespace

MaxPoolKernel max_pool_kernel(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                              bool channel_blocked) {
    if (channel_blocked) {
        return MaxPoolKernel::BlockedWindows;
    }
    return use_tiled_2x2_avx512(geometry(attrs, x_shape, y_shape)) ? MaxPoolKernel::Tiled2x2 : MaxPoolKernel::Windows;
}

void max_pool(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape, const float* x,
              float* y) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
#if defined(__x86_64__)
    if (use_tiled_2x2_avx512(g)) {
        tiled_2x2_forward_avx512(g, x, y);
        return;
    }
#endif
    const std::int64_t plane_size = g.h * g.w;
    for_each_window(attrs, x_shape, g, x, [&](std::int64_t p, std::int64_t oh, std::int64_t ow, std::int64_t at) {
        y[(p * g.oh + oh) * g.ow + ow] = at < 0 ? -std::numeric_limits<float>::infinity() : x[p * plane_size + at];
    });
}

void max_pool_backward(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                       const float* x, const float* dy, float* dx) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
#if defined(__x86_64__)
    if (use_tiled_2x2_avx512(g)) {
        tiled_2x2_backward_avx512(g, x, dy, dx);
        return;
    }
#endif
    const std::int64_t plane_size = g.h * g.w;
    std::fill(dx, dx + g.planes * plane_size, 0.0f);
    for_each_window(attrs, x_shape, g, x, [&](std::int64_t p, std::int64_t oh, std::int64_t ow, std::int64_t at) {
        if (at >= 0) {  // the plane belongs to this thread alone; windows add in the reference's order
            dx[p * plane_size + at] += dy[(p * g.oh + oh) * g.ow + ow];
        }
    });
}

void max_pool_channel_blocked(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                              const float* x, float* y) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
    const std::int64_t block_planes = g.planes / kChannelBlock;
    const std::int64_t x_plane = g.h * g.w * kChannelBlock;
    const std::int64_t y_row = g.ow * kChannelBlock;
#pragma omp parallel for schedule(static) collapse(2)
    for (std::int64_t p = 0; p < block_planes; ++p) {
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
            blocked_forward_row(x + p * x_plane, g, oh, y + (p * g.oh + oh) * y_row);
        }
    }
}

void max_pool_backward_channel_blocked(const ir::PoolAttrs& attrs, const ir::Shape& x_shape,
                                       const ir::Shape& y_shape, const float* x, const float* dy, float* dx,
                                       numerics::Isa isa) {
    if (!numerics::isa_available(isa)) {
        throw UsageError("max_pool_backward_channel_blocked: " + std::string(numerics::to_string(isa)) +
                         " is not available on this CPU");
    }
    auto plane_kernel = blocked_backward_plane;
#if defined(__x86_64__)
    if (isa == numerics::Isa::Avx512 || (isa == numerics::Isa::Auto && numerics::best_isa() == numerics::Isa::Avx512)) {
        plane_kernel = blocked_backward_plane_avx512;
    }
#endif
    const Geometry g = geometry(attrs, x_shape, y_shape);
    const std::int64_t block_planes = g.planes / kChannelBlock;
    const std::int64_t x_plane = g.h * g.w * kChannelBlock;
    const std::int64_t y_plane = g.oh * g.ow * kChannelBlock;
#pragma omp parallel
    {
        // Each thread's window maxima for one plane at a time, kept from call to call (allocated once per thread).
        static thread_local std::vector<std::int32_t> at_plane;
        if (at_plane.size() < static_cast<std::size_t>(y_plane)) {
            at_plane.resize(static_cast<std::size_t>(y_plane));
        }
#pragma omp for schedule(static)
        for (std::int64_t p = 0; p < block_planes; ++p) {  // windows overlap within a plane: one thread per plane
            plane_kernel(x + p * x_plane, g, dy + p * y_plane, dx + p * x_plane, at_plane.data());
        }
    }
}

}  // namespace dojo::runtime
