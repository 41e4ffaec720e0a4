/** \file
 * A clip's ground truth (`<clip>.labels` in a shard): the scene, the camera rig's calibration, and per frame the ego
 * pose and speed, every object's class, box and velocity, and the occupancy grid.
 *
 * Format, version 1 (all integers little-endian):
 *   bytes 0..7   "DOJOLBL1"
 *   u32          format version (1)
 *   u64          payload bytes before compression
 *   u64          payload bytes as stored (zlib)
 *   u32          CRC-32 of the stored payload
 *   payload      zlib stream of the fields below, in order
 * Payload: clip name (u16 length + bytes), scene kind (u8), seed (u64), fps (u32), frame width and height (u32 each),
 * grid (range_m, voxel_m: f64; heights: u32), cameras (u32 count; each: name, width, height (u32), fx, fy, cx, cy,
 * x, y, z, yaw_rad, pitch_rad (f64)), frames (u32 count; each: ego x, y, yaw_rad, speed_mps (f64), objects (u32
 * count; each: id (u32), class (u8), x, y, z, length, width, height, yaw_rad, vx, vy (f32)), occupancy run-length
 * coded (u32 run count; each run: value (u8), length (u32)); the runs cover the grid exactly).
 * A reader refuses another magic or version, a checksum mismatch, and any count or length that does not fit.
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/scene.h"

namespace dojo::data::fleet {

inline constexpr std::uint32_t kLabelVersion = 1;

struct FrameLabels {
    EgoState ego;
    std::vector<ObjectState> objects;  ///< ego frame; colours are not stored
    std::vector<std::uint8_t> occupancy;  ///< grid.cells() cells, rasterize_occupancy's layout
};

struct ClipLabels {
    std::string clip;
    SceneKind kind = SceneKind::Urban;
    std::uint64_t seed = 0;
    int fps = 0, width = 0, height = 0;
    OccupancyGrid grid;
    std::vector<geometry::Camera> cameras;
    std::vector<FrameLabels> frames;
};

std::string encode_labels(const ClipLabels& labels);

/// Parses a labels file; `name` identifies it in errors. Throws IoError naming it and the problem. Every frame is
/// checked; with `occupancy_frames`, only the frames it marks get their occupancy expanded (the others' is empty).
ClipLabels decode_labels(std::string_view bytes, const std::string& name,
                         const std::vector<bool>* occupancy_frames = nullptr);

}  // namespace dojo::data::fleet
