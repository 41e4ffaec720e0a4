/** \file
 * The channel-blocked layout of a 4-D activation [N, C, H, W]: oneDNN's aBcd16b (nChw16c), the layout its direct
 * convolutions run in on AVX-512, stored as the row-major [N, C/16, H, W, 16]: 16 channels side by side at every
 * pixel. The executor keeps an activation in this layout where every kernel that touches it can take it (the
 * convolutions, and fused elementwise groups, which read and write it element by element), so that no reorder
 * between oneDNN's layout and the IR's plain NCHW runs around the convolutions (runtime/executor.h).
 *
 * Only the byte order differs: the same N*C*H*W floats, no padding (C must be a multiple of 16).
 */
#pragma once

#include <cstdint>

#include "dojo/ir/shape.h"

namespace dojo::runtime {

/// Channels side by side in the blocked layout.
inline constexpr std::int64_t kChannelBlock = 16;

/// Whether a tensor of `shape` can be stored channel-blocked: 4-D, with a whole number of channel blocks.
inline bool can_store_channel_blocked(const ir::Shape& shape) {
    return shape.rank() == 4 && shape[1] > 0 && shape[1] % kChannelBlock == 0 && shape.numel() > 0;
}

/// Where the element at row-major (NCHW) offset `plain` lies in the blocked layout of a tensor with `channels`
/// channels of `plane` = H * W pixels. Consecutive pixels of one channel lie kChannelBlock floats apart.
inline std::int64_t channel_blocked_offset(std::int64_t plain, std::int64_t channels, std::int64_t plane) {
    const std::int64_t pixel = plain % plane;
    const std::int64_t channel = plain / plane % channels;
    const std::int64_t sample = plain / plane / channels;
    return ((sample * (channels / kChannelBlock) + channel / kChannelBlock) * plane + pixel) * kChannelBlock +
           channel % kChannelBlock;
}

}  // namespace dojo::runtime
