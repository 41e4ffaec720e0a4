/** \file
 * Procedural driving scenes with ground truth: a straight road with lanes, vehicles, pedestrians, cyclists and
 * static obstacles moving with constant-velocity kinematics, and an ego car driving a route (a speed profile and,
 * on highways, a lane change). A scene is a pure function of (kind, seed, duration): the same seed gives the same
 * scene on every machine.
 *
 * World frame: x along the road, y to its left, z up, metres; the road's centre line is y = 0 and traffic keeps
 * right (the ego car drives +x in a lane with y < 0). Ground truth is given in the ego frame (cameras.h) at each
 * frame: the ego pose and speed, every object's class, 3D box and velocity, and an occupancy grid around the car.
 */
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace dojo::data::fleet {

enum class SceneKind : std::uint8_t { Highway, Urban, Rural };
inline constexpr int kSceneKinds = 3;
const char* scene_kind_name(SceneKind kind);
/// Throws UsageError listing the kinds when `name` is not one.
SceneKind parse_scene_kind(const std::string& name);

enum class ObjectClass : std::uint8_t { Car, Truck, Pedestrian, Cyclist, Cone, Barrier, Structure };
inline constexpr int kObjectClasses = 7;
/// "car", "truck", "pedestrian", "cyclist", "cone", "barrier", "structure" (buildings, walls, trees).
const char* object_class_name(ObjectClass c);
ObjectClass parse_object_class(const std::string& name);

/// The voxel grid around the ego car: cells of voxel_m on each side, x and y in [-range_m, range_m) about the car's
/// centre, z in [0, heights * voxel_m) above the ground. A cell holds 0 (free) or 1 + the ObjectClass filling it.
struct OccupancyGrid {
    double range_m = 40.0;
    double voxel_m = 0.4;
    int heights = 8;

    int cells_xy() const;  ///< cells along x (and along y)
    std::int64_t cells() const { return static_cast<std::int64_t>(cells_xy()) * cells_xy() * heights; }
    /// Throws UsageError unless 0.05 <= voxel_m, range_m <= 200, 1 <= heights <= 64 and cells() <= 2^26.
    void validate() const;
};

/// An object in the world: an oriented box that moves with constant velocity (pedestrians crossing the road turn
/// back at its edges).
struct WorldObject {
    std::uint32_t id = 0;
    ObjectClass cls = ObjectClass::Car;
    double x = 0, y = 0, z = 0;       ///< centre of the box's base at t = 0
    double length = 0, width = 0, height = 0;
    double yaw_rad = 0;
    double vx = 0, vy = 0;            ///< m/s
    double y_min = 0, y_max = 0;      ///< bounce limits of a crossing pedestrian (equal: no bounce)
    std::array<std::uint8_t, 3> rgb{};
};

/// An object at one frame, in the ego frame.
struct ObjectState {
    std::uint32_t id = 0;
    ObjectClass cls = ObjectClass::Car;
    double x = 0, y = 0, z = 0;       ///< centre of the box's base
    double length = 0, width = 0, height = 0;
    double yaw_rad = 0;
    double vx = 0, vy = 0;            ///< velocity in the ego frame's axes (world velocity, not relative), m/s
    std::array<std::uint8_t, 3> rgb{};
};

struct EgoState {
    double x = 0, y = 0, yaw_rad = 0;  ///< world pose
    double speed_mps = 0;
};

/// The look of a scene: time of day and weather, drawn per scene so that a network has to generalise.
struct Lighting {
    double sun_brightness = 1.0;  ///< 0.25 (dusk) .. 1.1 (noon)
    double haze_per_m = 0.004;    ///< fog density: contrast halves over ln(2) / haze_per_m metres
    std::array<std::uint8_t, 3> sky_rgb{};
    std::array<std::uint8_t, 3> asphalt_rgb{};
    std::array<std::uint8_t, 3> verge_rgb{};  ///< grass, or pavement in town
};

struct Road {
    int lanes_each_way = 1;
    double lane_width_m = 3.6;
    double sidewalk_m = 0;  ///< pavement beyond the road on each side (towns)
    double half_width_m() const { return lanes_each_way * lane_width_m; }
    /// Centre of lane `lane` (0 = nearest the centre line) of the ego's direction (y < 0).
    double ego_lane_y(int lane) const { return -(lane + 0.5) * lane_width_m; }
};

struct SceneConfig {
    SceneKind kind = SceneKind::Urban;
    std::uint64_t seed = 0;
    double duration_s = 5.0;
};

class Scene {
public:
    /// Builds the scene; throws UsageError if duration_s is not in (0, 600].
    explicit Scene(const SceneConfig& config);

    const SceneConfig& config() const { return config_; }
    const Road& road() const { return road_; }
    const Lighting& lighting() const { return lighting_; }
    const std::vector<WorldObject>& objects() const { return objects_; }
    bool kind_is_town() const { return config_.kind == SceneKind::Urban; }

    EgoState ego_at(double t_s) const;
    /// Objects whose centre is within `radius_m` of the ego car at time t, in the ego frame.
    std::vector<ObjectState> objects_at(double t_s, double radius_m) const;

private:
    void add_traffic(std::uint64_t seed);
    void add_roadside(std::uint64_t seed);

    SceneConfig config_;
    Road road_;
    Lighting lighting_;
    double ego_speed_mps_ = 0, ego_speed_swing_ = 0, ego_period_s_ = 1;
    int ego_lane_ = 0, ego_lane_after_ = 0;
    double lane_change_at_s_ = 0;
    std::vector<WorldObject> objects_;
};

/// Fills `cells` (resized to grid.cells(), index ((z * n) + y) * n + x with n = grid.cells_xy(), x forward and
/// y left from the grid's corner at (-range, -range)) with the occupancy of `objects` (ego frame).
void rasterize_occupancy(const std::vector<ObjectState>& objects, const OccupancyGrid& grid,
                         std::vector<std::uint8_t>& cells);

}  // namespace dojo::data::fleet
