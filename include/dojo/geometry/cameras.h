/** \file
 * The eight cameras of a production car, placed and aimed like Tesla's Autopilot rig (three forward behind the
 * windshield: main, narrow, wide; two B-pillar cameras looking side-forward; two fender "repeater" cameras looking
 * side-rear; one rear camera), as ideal pinhole cameras.
 *
 * Frames: the ego frame has its origin on the ground at the car's centre, x forward, y left, z up (metres). A
 * camera's optical frame is x right, y down, z forward. Placements and fields of view follow Tesla's published
 * camera descriptions (main 50°, narrow 35°, wide 120°, side 90°); the positions on the body are assumed, and the
 * wide and rear fisheye lenses are modelled as pinholes of 120° (docs/data.md lists every number).
 *
 * The rig is geometry, below every layer that uses it: the fleet's renderer draws what the cameras see (data/fleet),
 * and the catalog's occupancy network lifts image features into voxels by the same projection (frontend).
 */
#pragma once

#include <array>
#include <string>
#include <vector>

namespace dojo::geometry {

struct Vec3 {
    double x = 0, y = 0, z = 0;
};

struct Camera {
    std::string name;
    // Intrinsics, in pixels of the rendered resolution.
    int width = 0, height = 0;
    double fx = 0, fy = 0, cx = 0, cy = 0;
    // Extrinsics: position in the ego frame (m), yaw about z (rad, left positive), pitch (rad, down positive).
    Vec3 position;
    double yaw_rad = 0, pitch_rad = 0;

    /// Direction (ego frame, not normalised) of the ray through pixel centre (u + 0.5, v + 0.5).
    Vec3 ray(double u, double v) const;
    /// The pixel (u, v) that the ego-frame point `p` projects to; false when `p` is behind the camera (z <= 0.05 m).
    bool project(const Vec3& p, double& u, double& v) const;
};

inline constexpr int kRigCameras = 8;

/// The rig's camera names, in the order clips store them: main, narrow, wide, left_pillar, right_pillar,
/// left_repeater, right_repeater, rear.
const std::array<const char*, kRigCameras>& rig_camera_names();

/// The production rig at `width` x `height` pixels per camera (horizontal field of view fixed; square pixels).
std::vector<Camera> production_rig(int width, int height);

/// The index of `name` in rig_camera_names(); throws UsageError listing the names when it is not one.
int rig_camera_index(const std::string& name);

}  // namespace dojo::geometry
