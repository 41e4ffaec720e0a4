// The production camera rig and pinhole projection (cameras.h).
#include "dojo/geometry/cameras.h"

#include <cmath>
#include <numbers>

#include "dojo/util/error.h"

namespace dojo::geometry {
namespace {

constexpr double kDegree = std::numbers::pi / 180.0;

struct Placement {
    const char* name;
    double fov_deg;  // horizontal field of view
    Vec3 position;   // ego frame, m
    double yaw_deg, pitch_deg;
};

// Fields of view: Tesla's camera descriptions (main 50°, narrow 35°, wide 120° fisheye, pillars and repeaters 90°,
// rear 130° fisheye; the fisheyes modelled as 120° pinholes). Body positions: assumed, for a 4.7 m sedan.
constexpr std::array<Placement, kRigCameras> kRig{{
    {"main", 50, {0.8, 0.0, 1.35}, 0, 2},
    {"narrow", 35, {0.8, 0.05, 1.35}, 0, 1},
    {"wide", 120, {0.8, -0.05, 1.35}, 0, 4},
    {"left_pillar", 90, {0.0, 0.9, 1.2}, 55, 4},
    {"right_pillar", 90, {0.0, -0.9, 1.2}, -55, 4},
    {"left_repeater", 90, {1.5, 0.95, 0.9}, 140, 6},
    {"right_repeater", 90, {1.5, -0.95, 0.9}, -140, 6},
    {"rear", 120, {-2.3, 0.0, 1.0}, 180, 12},
}};

}  // namespace

Vec3 Camera::ray(double u, double v) const {
    const double right = (u + 0.5 - cx) / fx;
    const double down = (v + 0.5 - cy) / fy;
    // Optical (right, down, forward=1) to the unrotated ego frame (forward, left, up), then pitch and yaw.
    const double cp = std::cos(pitch_rad), sp = std::sin(pitch_rad);
    const double fwd = cp * 1.0 + sp * (-down);
    const double up = -sp * 1.0 + cp * (-down);
    const double left = -right;
    const double cy_ = std::cos(yaw_rad), sy = std::sin(yaw_rad);
    return {cy_ * fwd - sy * left, sy * fwd + cy_ * left, up};
}

bool Camera::project(const Vec3& p, double& u, double& v) const {
    const Vec3 d{p.x - position.x, p.y - position.y, p.z - position.z};
    const double cy_ = std::cos(yaw_rad), sy = std::sin(yaw_rad);
    const double fwd0 = cy_ * d.x + sy * d.y;  // inverse yaw
    const double left = -sy * d.x + cy_ * d.y;
    const double cp = std::cos(pitch_rad), sp = std::sin(pitch_rad);
    const double forward = cp * fwd0 - sp * d.z;  // inverse pitch
    const double up = sp * fwd0 + cp * d.z;
    if (forward <= 0.05) {
        return false;
    }
    u = cx + fx * (-left / forward) - 0.5;
    v = cy + fy * (-up / forward) - 0.5;
    return true;
}

const std::array<const char*, kRigCameras>& rig_camera_names() {
    static const std::array<const char*, kRigCameras> names = [] {
        std::array<const char*, kRigCameras> out{};
        for (int i = 0; i < kRigCameras; ++i) {
            out[i] = kRig[i].name;
        }
        return out;
    }();
    return names;
}

std::vector<Camera> production_rig(int width, int height) {
    std::vector<Camera> rig;
    for (const Placement& p : kRig) {
        Camera camera;
        camera.name = p.name;
        camera.width = width;
        camera.height = height;
        camera.fx = width / 2.0 / std::tan(p.fov_deg * kDegree / 2);
        camera.fy = camera.fx;
        camera.cx = width / 2.0;
        camera.cy = height / 2.0;
        camera.position = p.position;
        camera.yaw_rad = p.yaw_deg * kDegree;
        camera.pitch_rad = p.pitch_deg * kDegree;
        rig.push_back(camera);
    }
    return rig;
}

int rig_camera_index(const std::string& name) {
    std::string names;
    for (int i = 0; i < kRigCameras; ++i) {
        if (name == kRig[i].name) {
            return i;
        }
        names += std::string(i ? ", " : "") + kRig[i].name;
    }
    throw UsageError("unknown camera '" + name + "'; the rig's cameras are " + names);
}

}  // namespace dojo::geometry
