// Procedural driving scenes (scene.h): the road, the traffic and roadside, the ego route, and occupancy.
#include "dojo/data/fleet/scene.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "dojo/util/error.h"
#include "dojo/util/random.h"

namespace dojo::data::fleet {
namespace {

constexpr std::array<const char*, kSceneKinds> kKindNames{"highway", "urban", "rural"};
constexpr std::array<const char*, kObjectClasses> kClassNames{"car",  "truck",   "pedestrian", "cyclist",
                                                              "cone", "barrier", "structure"};

double uniform(SplitMix64& random, double lo, double hi) { return lo + (hi - lo) * random.unit(); }

std::array<std::uint8_t, 3> shade(SplitMix64& random, std::array<int, 3> base, int spread) {
    std::array<std::uint8_t, 3> rgb{};
    const int common = static_cast<int>(random.below(static_cast<std::uint64_t>(2 * spread + 1))) - spread;
    for (int i = 0; i < 3; ++i) {
        rgb[i] = static_cast<std::uint8_t>(std::clamp(base[i] + common, 0, 255));
    }
    return rgb;
}

std::array<std::uint8_t, 3> car_paint(SplitMix64& random) {
    static constexpr std::array<std::array<int, 3>, 8> kPaints{{{200, 200, 205}, {30, 30, 35}, {140, 20, 25},
                                                                 {30, 50, 120}, {120, 125, 130}, {230, 230, 225},
                                                                 {60, 90, 60}, {180, 150, 60}}};
    return shade(random, kPaints[random.below(kPaints.size())], 20);
}

// A box placed in the world with constant velocity.
WorldObject box(std::uint32_t id, ObjectClass cls, double x, double y, double l, double w, double h, double vx,
                std::array<std::uint8_t, 3> rgb) {
    WorldObject o;
    o.id = id;
    o.cls = cls;
    o.x = x;
    o.y = y;
    o.length = l;
    o.width = w;
    o.height = h;
    o.vx = vx;
    o.yaw_rad = vx < 0 ? std::numbers::pi : 0.0;
    o.y_min = o.y_max = y;
    o.rgb = rgb;
    return o;
}

}  // namespace

const char* scene_kind_name(SceneKind kind) { return kKindNames[static_cast<int>(kind)]; }

SceneKind parse_scene_kind(const std::string& name) {
    for (int i = 0; i < kSceneKinds; ++i) {
        if (name == kKindNames[i]) {
            return static_cast<SceneKind>(i);
        }
    }
    throw UsageError("unknown scene kind '" + name + "'; expected highway, urban or rural");
}

const char* object_class_name(ObjectClass c) { return kClassNames[static_cast<int>(c)]; }

ObjectClass parse_object_class(const std::string& name) {
    for (int i = 0; i < kObjectClasses; ++i) {
        if (name == kClassNames[i]) {
            return static_cast<ObjectClass>(i);
        }
    }
    throw UsageError("unknown object class '" + name +
                     "'; expected car, truck, pedestrian, cyclist, cone, barrier or structure");
}

int OccupancyGrid::cells_xy() const { return static_cast<int>(std::lround(2 * range_m / voxel_m)); }

void OccupancyGrid::validate() const {
    if (!(voxel_m >= 0.05 && voxel_m <= 10) || !(range_m >= voxel_m && range_m <= 200) || heights < 1 ||
        heights > 64) {
        char got[96];
        std::snprintf(got, sizeof got, "got voxel %g m, range %g m, heights %d", voxel_m, range_m, heights);
        throw UsageError(std::string("occupancy grid: voxel must be 0.05..10 m, range voxel..200 m and heights 1..64; ") +
                         got);
    }
    if (cells() > (std::int64_t{1} << 26)) {
        throw UsageError("occupancy grid of " + std::to_string(cells()) +
                         " cells per frame is too large (at most 2^26); use larger voxels or a smaller range");
    }
}

Scene::Scene(const SceneConfig& config) : config_(config) {
    if (!(config.duration_s > 0 && config.duration_s <= 600)) {
        throw UsageError("a scene lasts 0..600 s, got " + std::to_string(config.duration_s));
    }
    SplitMix64 random(config.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(config.kind) + 1);
    switch (config.kind) {
        case SceneKind::Highway:
            road_ = {3, 3.7, 0};
            ego_speed_mps_ = uniform(random, 24, 33);
            break;
        case SceneKind::Urban:
            road_ = {2, 3.3, 3.0};
            ego_speed_mps_ = uniform(random, 7, 13);
            break;
        case SceneKind::Rural:
            road_ = {1, 3.5, 0};
            ego_speed_mps_ = uniform(random, 14, 24);
            break;
    }
    ego_speed_swing_ = ego_speed_mps_ * uniform(random, 0.0, 0.2);
    ego_period_s_ = uniform(random, 6, 20);
    ego_lane_ = config.kind == SceneKind::Highway ? static_cast<int>(random.below(3)) : 0;
    ego_lane_after_ = ego_lane_;
    if (config.kind == SceneKind::Highway && random.unit() < 0.6) {
        ego_lane_after_ = ego_lane_ == 0 ? 1 : ego_lane_ == 2 ? 1 : (random.unit() < 0.5 ? 0 : 2);
        lane_change_at_s_ = uniform(random, 0, config.duration_s);
    }
    lighting_.sun_brightness = uniform(random, 0.3, 1.1);
    lighting_.haze_per_m = uniform(random, 0.001, 0.012);
    const double dusk = std::clamp((0.7 - lighting_.sun_brightness) / 0.4, 0.0, 1.0);
    lighting_.sky_rgb = {static_cast<std::uint8_t>(120 + 100 * dusk), static_cast<std::uint8_t>(170 - 30 * dusk),
                         static_cast<std::uint8_t>(235 - 90 * dusk)};
    lighting_.asphalt_rgb = shade(random, {85, 85, 90}, 25);
    lighting_.verge_rgb = config.kind == SceneKind::Urban ? shade(random, {150, 145, 140}, 15)
                                                         : shade(random, {70, 120, 50}, 20);
    add_traffic(random.next());
    add_roadside(random.next());
}

EgoState Scene::ego_at(double t) const {
    const double w = 2 * std::numbers::pi / ego_period_s_;
    EgoState ego;
    ego.speed_mps = ego_speed_mps_ + ego_speed_swing_ * std::sin(w * t);
    ego.x = ego_speed_mps_ * t + ego_speed_swing_ * (1 - std::cos(w * t)) / w;
    constexpr double kChange_s = 4.0;
    const double a = std::clamp((t - lane_change_at_s_) / kChange_s, 0.0, 1.0);
    const double s = a * a * (3 - 2 * a);  // smoothstep
    const double y0 = road_.ego_lane_y(ego_lane_), y1 = road_.ego_lane_y(ego_lane_after_);
    ego.y = y0 + (y1 - y0) * s;
    const double dyds = (a > 0 && a < 1) ? (y1 - y0) * 6 * a * (1 - a) / kChange_s : 0.0;
    ego.yaw_rad = std::atan2(dyds, ego.speed_mps);
    return ego;
}

void Scene::add_traffic(std::uint64_t seed) {
    SplitMix64 random(seed);
    const double end_x = ego_speed_mps_ * 1.25 * config_.duration_s + 200;
    std::uint32_t id = static_cast<std::uint32_t>(objects_.size());
    const int moving_lanes = config_.kind == SceneKind::Urban ? 1 : road_.lanes_each_way;  // towns park in lane 2
    for (int direction : {1, -1}) {
        for (int lane = 0; lane < moving_lanes; ++lane) {
            const double flow = ego_speed_mps_ * uniform(random, 0.8, 1.15);
            const double y = direction * road_.ego_lane_y(lane);
            // Oncoming traffic starts further ahead: it drives towards the car during the clip.
            const double start = direction > 0 ? -150 : -100;
            const double stop = direction > 0 ? end_x : end_x + flow * config_.duration_s;
            for (double x = start + uniform(random, 0, 30); x < stop; x += uniform(random, 18, 70)) {
                const bool truck = config_.kind != SceneKind::Urban && random.unit() < 0.2;
                const double l = truck ? uniform(random, 9, 16) : uniform(random, 4.0, 5.0);
                objects_.push_back(box(id++, truck ? ObjectClass::Truck : ObjectClass::Car, x, y, l,
                                       truck ? 2.5 : uniform(random, 1.75, 1.95), truck ? 3.6 : uniform(random, 1.4, 1.7),
                                       direction * flow, truck ? shade(random, {210, 210, 210}, 30) : car_paint(random)));
                x += l;
            }
        }
    }
    // Vehicles in the ego car's own lane keep clear of it at the start.
    std::erase_if(objects_, [&](const WorldObject& o) {
        return o.vx > 0 && std::abs(o.y - road_.ego_lane_y(ego_lane_)) < 1 && std::abs(o.x) < 10;
    });
}

void Scene::add_roadside(std::uint64_t seed) {
    SplitMix64 random(seed);
    const double end_x = ego_speed_mps_ * 1.25 * config_.duration_s + 200;
    std::uint32_t id = 1000000;
    const double edge = road_.half_width_m();
    for (int side : {1, -1}) {
        for (double x = -150 + uniform(random, 0, 20); x < end_x;) {
            switch (config_.kind) {
                case SceneKind::Highway: {  // median barrier segments, and cones of the odd work zone on the shoulder
                    if (side > 0) {
                        objects_.push_back(box(id++, ObjectClass::Barrier, x, 0, 19.5, 0.6, 0.9, 0,
                                               shade(random, {170, 170, 165}, 10)));
                    } else if (random.unit() < 0.15) {
                        for (int k = 0; k < 6; ++k) {
                            objects_.push_back(box(id++, ObjectClass::Cone, x + 4 * k, -edge - 0.6, 0.4, 0.4, 0.7, 0,
                                                   {235, 110, 20}));
                        }
                    }
                    x += 20;
                    break;
                }
                case SceneKind::Urban: {  // buildings behind the pavement, parked cars, pedestrians, cyclists
                    const double l = uniform(random, 8, 30);
                    const double depth = uniform(random, 8, 15);
                    objects_.push_back(box(id++, ObjectClass::Structure, x + l / 2,
                                           side * (edge + road_.sidewalk_m + depth / 2 + uniform(random, 0, 2)), l, depth,
                                           uniform(random, 6, 25), 0, shade(random, {170, 120, 90}, 50)));
                    if (random.unit() < 0.5) {
                        objects_.push_back(box(id++, ObjectClass::Car, x + uniform(random, 0, l), side * (edge - 1.7),
                                               4.5, 1.8, 1.5, 0, car_paint(random)));
                    }
                    if (random.unit() < 0.7) {
                        const double walk = uniform(random, 0.9, 1.6) * (random.unit() < 0.5 ? 1 : -1);
                        objects_.push_back(box(id++, ObjectClass::Pedestrian, x + uniform(random, 0, l),
                                               side * (edge + uniform(random, 0.5, road_.sidewalk_m - 0.5)), 0.5, 0.6,
                                               uniform(random, 1.5, 1.9), walk, shade(random, {90, 70, 120}, 60)));
                    }
                    if (random.unit() < 0.12) {  // crossing the road, turning back at the kerbs
                        WorldObject p = box(id++, ObjectClass::Pedestrian, x, side * uniform(random, 0, edge), 0.5, 0.6,
                                            1.75, 0, shade(random, {120, 60, 60}, 60));
                        p.vy = 1.3 * side;
                        p.yaw_rad = side * std::numbers::pi / 2;
                        p.y_min = -edge - 1;
                        p.y_max = edge + 1;
                        objects_.push_back(p);
                    }
                    if (random.unit() < 0.15) {
                        objects_.push_back(box(id++, ObjectClass::Cyclist, x, side * (edge - 0.8), 1.8, 0.6, 1.7,
                                               side < 0 ? 5.0 : -5.0, shade(random, {40, 140, 160}, 40)));
                    }
                    x += l + uniform(random, 1, 6);
                    break;
                }
                case SceneKind::Rural: {  // trees along the verge, the odd walker or cyclist
                    const double size = uniform(random, 3, 7);
                    objects_.push_back(box(id++, ObjectClass::Structure, x, side * (edge + uniform(random, 3, 12)), size,
                                           size, uniform(random, 5, 12), 0, shade(random, {40, 85, 35}, 20)));
                    if (random.unit() < 0.06) {
                        objects_.push_back(box(id++, ObjectClass::Pedestrian, x, side * (edge + 1), 0.5, 0.6, 1.75,
                                               1.2 * side, shade(random, {100, 80, 60}, 60)));
                    }
                    if (random.unit() < 0.05) {
                        objects_.push_back(box(id++, ObjectClass::Cyclist, x, -side * (edge - 0.6), 1.8, 0.6, 1.7,
                                               6.0 * side, shade(random, {200, 60, 40}, 40)));
                    }
                    x += uniform(random, 6, 25);
                    break;
                }
            }
        }
    }
}

std::vector<ObjectState> Scene::objects_at(double t, double radius_m) const {
    const EgoState ego = ego_at(t);
    const double c = std::cos(ego.yaw_rad), s = std::sin(ego.yaw_rad);
    std::vector<ObjectState> out;
    for (const WorldObject& o : objects_) {
        double y = o.y + o.vy * t;
        double vy = o.vy;
        if (o.y_max > o.y_min) {  // bounce between the limits: a triangle wave
            const double span = o.y_max - o.y_min;
            double u = std::fmod(y - o.y_min, 2 * span);
            u = u < 0 ? u + 2 * span : u;
            y = o.y_min + (u < span ? u : 2 * span - u);
            vy = u < span ? o.vy : -o.vy;
        }
        const double dx = o.x + o.vx * t - ego.x, dy = y - ego.y;
        const double reach = std::max(o.length, o.width) / 2;
        if (std::abs(dx) - reach > radius_m || std::abs(dy) - reach > radius_m) {
            continue;
        }
        ObjectState state;
        state.id = o.id;
        state.cls = o.cls;
        state.x = c * dx + s * dy;
        state.y = -s * dx + c * dy;
        state.z = o.z;
        state.length = o.length;
        state.width = o.width;
        state.height = o.height;
        state.yaw_rad = (o.y_max > o.y_min ? (vy > 0 ? 1 : -1) * std::numbers::pi / 2 : o.yaw_rad) - ego.yaw_rad;
        state.vx = c * o.vx + s * vy;
        state.vy = -s * o.vx + c * vy;
        state.rgb = o.rgb;
        out.push_back(state);
    }
    return out;
}

void rasterize_occupancy(const std::vector<ObjectState>& objects, const OccupancyGrid& grid,
                         std::vector<std::uint8_t>& cells) {
    const int n = grid.cells_xy();
    cells.assign(static_cast<std::size_t>(grid.cells()), 0);
    for (const ObjectState& o : objects) {
        const double c = std::cos(o.yaw_rad), s = std::sin(o.yaw_rad);
        const double half_x = std::abs(c) * o.length / 2 + std::abs(s) * o.width / 2;
        const double half_y = std::abs(s) * o.length / 2 + std::abs(c) * o.width / 2;
        const auto cell = [&](double v) { return static_cast<int>(std::floor((v + grid.range_m) / grid.voxel_m)); };
        const int x0 = std::max(0, cell(o.x - half_x)), x1 = std::min(n - 1, cell(o.x + half_x));
        const int y0 = std::max(0, cell(o.y - half_y)), y1 = std::min(n - 1, cell(o.y + half_y));
        const int z0 = std::max(0, static_cast<int>(std::floor(o.z / grid.voxel_m)));
        const int z1 = std::min(grid.heights - 1, static_cast<int>(std::ceil((o.z + o.height) / grid.voxel_m)) - 1);
        for (int yi = y0; yi <= y1; ++yi) {
            for (int xi = x0; xi <= x1; ++xi) {
                const double px = (xi + 0.5) * grid.voxel_m - grid.range_m - o.x;
                const double py = (yi + 0.5) * grid.voxel_m - grid.range_m - o.y;
                const double along = c * px + s * py, across = -s * px + c * py;
                if (std::abs(along) > o.length / 2 || std::abs(across) > o.width / 2) {
                    continue;
                }
                for (int zi = z0; zi <= z1; ++zi) {
                    cells[(static_cast<std::size_t>(zi) * n + yi) * n + xi] = static_cast<std::uint8_t>(1 + static_cast<int>(o.cls));
                }
            }
        }
    }
}

}  // namespace dojo::data::fleet
