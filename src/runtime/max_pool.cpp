#include "dojo/runtime/max_pool.h"

#include "dojo/ir/pooling.h"
#include "dojo/runtime/channel_blocked.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

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

void interior_row(const float* plane, std::int64_t first_index, std::int64_t w, std::int64_t kh, std::int64_t kw,
                  std::int64_t sw, std::int64_t count, float* best, std::int32_t* at) {
    if (sw == 1) {
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

// Each lane's first maximum of a window with at least one position inside: value into best, pixel into at (the same
// select as interior_row_body, a lane per channel). The lane loops are `omp simd` so that each clone vectorises them
// for its own target (one AVX-512 register holds the 16 lanes); GCC's vector types would not do: they are lowered
// before target_clones makes the clones, to scalar code.
inline __attribute__((always_inline)) void scan_blocked_window(const float* __restrict plane, const ClippedWindow& c,
                                                               std::int64_t w, float* __restrict best,
                                                               std::int32_t* __restrict at) {
    const float* first = plane + c.first * kChannelBlock;
#pragma omp simd
    for (std::int64_t l = 0; l < kChannelBlock; ++l) {
        best[l] = first[l];
        at[l] = static_cast<std::int32_t>(c.first);
    }
    for (std::int64_t r = 0; r < c.rows; ++r) {
        for (std::int64_t s = r == 0 ? 1 : 0; s < c.columns; ++s) {
            const std::int64_t pixel = c.first + r * w + s;
            const float* v = plane + pixel * kChannelBlock;
#pragma omp simd
            for (std::int64_t l = 0; l < kChannelBlock; ++l) {
                const bool take = v[l] > best[l] || (v[l] != v[l] && best[l] == best[l]);
                best[l] = take ? v[l] : best[l];
                at[l] = take ? static_cast<std::int32_t>(pixel) : at[l];
            }
        }
    }
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
        alignas(64) float best[kChannelBlock];
        alignas(64) std::int32_t at[kChannelBlock];
        scan_blocked_window(plane, c, g.w, best, at);
        std::copy(best, best + kChannelBlock, y);
    }
}

// One output row's gradients dy_row [OW, 16] added into the block plane's dx at each lane's first maximum, window
// after window (the reference's order); a lane adds where its maximum lies and keeps its value elsewhere (a select,
// not an add of zero, so the bits are the reference's).
DOJO_POOL_CLONES void blocked_backward_row(const float* plane, const Geometry& g, std::int64_t oh, const float* dy_row,
                                           float* dx_plane) {
    for (std::int64_t ow = 0; ow < g.ow; ++ow) {
        const ClippedWindow c = clip(g, oh, ow);
        if (c.rows == 0 || c.columns == 0) {
            continue;  // all padding: no gradient
        }
        alignas(64) float best[kChannelBlock];
        alignas(64) std::int32_t at[kChannelBlock];
        scan_blocked_window(plane, c, g.w, best, at);
        const float* dy = dy_row + ow * kChannelBlock;
        for (std::int64_t r = 0; r < c.rows; ++r) {
            for (std::int64_t s = 0; s < c.columns; ++s) {
                const std::int64_t pixel = c.first + r * g.w + s;
                float* dx = dx_plane + pixel * kChannelBlock;
#pragma omp simd
                for (std::int64_t l = 0; l < kChannelBlock; ++l) {
                    dx[l] = at[l] == static_cast<std::int32_t>(pixel) ? dx[l] + dy[l] : dx[l];
                }
            }
        }
    }
}

}  // namespace

void max_pool(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape, const float* x,
              float* y) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
    const std::int64_t plane_size = g.h * g.w;
    for_each_window(attrs, x_shape, g, x, [&](std::int64_t p, std::int64_t oh, std::int64_t ow, std::int64_t at) {
        y[(p * g.oh + oh) * g.ow + ow] = at < 0 ? -std::numeric_limits<float>::infinity() : x[p * plane_size + at];
    });
}

void max_pool_backward(const ir::PoolAttrs& attrs, const ir::Shape& x_shape, const ir::Shape& y_shape,
                       const float* x, const float* dy, float* dx) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
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
                                       const ir::Shape& y_shape, const float* x, const float* dy, float* dx) {
    const Geometry g = geometry(attrs, x_shape, y_shape);
    const std::int64_t block_planes = g.planes / kChannelBlock;
    const std::int64_t x_plane = g.h * g.w * kChannelBlock;
    const std::int64_t y_row = g.ow * kChannelBlock;
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < block_planes; ++p) {  // windows overlap within a plane: one thread per plane
        float* dx_plane = dx + p * x_plane;
        std::fill(dx_plane, dx_plane + x_plane, 0.0f);
        for (std::int64_t oh = 0; oh < g.oh; ++oh) {
            blocked_backward_row(x + p * x_plane, g, oh, dy + (p * g.oh + oh) * y_row, dx_plane);
        }
    }
}

}  // namespace dojo::runtime
