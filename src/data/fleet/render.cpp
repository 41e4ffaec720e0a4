// The fleet's software renderer (render.h): ground, boxes, sky, haze.
#include "dojo/data/fleet/render.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dojo/util/check.h"

namespace dojo::data::fleet {
namespace {

// A lattice hash in [-1, 1]: the texture of asphalt and grass, fixed in the world.
inline float lattice_noise(std::int64_t i, std::int64_t j) {
    std::uint64_t h = static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ULL ^ static_cast<std::uint64_t>(j) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return static_cast<float>(h & 0xFFFF) / 32767.5f - 1.0f;
}

struct Rgb {
    float r, g, b;
};

Rgb to_rgb(const std::array<std::uint8_t, 3>& c) { return {float(c[0]), float(c[1]), float(c[2])}; }

inline float wrap(float v, float period) { return v - std::floor(v / period) * period; }

// The ground's colour at world point (x, y): road with markings, kerb, pavement or verge.
Rgb ground_colour(const Scene& scene, float x, float y) {
    const Road& road = scene.road();
    const auto half = static_cast<float>(road.half_width_m());
    const auto lane_width = static_cast<float>(road.lane_width_m);
    const float ay = std::abs(y);
    const auto xi = static_cast<std::int64_t>(std::floor(x * 2)), yi = static_cast<std::int64_t>(std::floor(y * 2));
    const float fine = lattice_noise(xi, yi);
    const float coarse = lattice_noise(xi >> 3, (yi >> 3) + 7777);
    if (ay < half + 0.15f) {
        // Markings: solid centre line and edges, dashed lane lines (3 m painted, 9 m gap).
        const float lane_pos = ay / lane_width;
        const float nearest = std::floor(lane_pos + 0.5f);
        if (std::abs(lane_pos - nearest) * lane_width < 0.08f) {
            const bool edge_or_centre = nearest == 0 || nearest >= static_cast<float>(road.lanes_each_way);
            if (edge_or_centre || wrap(x, 12.0f) < 3.0f) {
                return nearest == 0 ? Rgb{220, 190, 60} : Rgb{225, 225, 220};
            }
        }
        const Rgb a = to_rgb(scene.lighting().asphalt_rgb);
        const float t = 8 * fine + 6 * coarse;
        return {a.r + t, a.g + t, a.b + t};
    }
    const auto sidewalk = static_cast<float>(road.sidewalk_m);
    if (sidewalk > 0 && ay < half + sidewalk) {  // paving slabs, 1.5 m, with joints
        const bool joint = wrap(x, 1.5f) < 0.06f || wrap(ay - half, 1.5f) < 0.06f;
        const Rgb p = to_rgb(scene.lighting().verge_rgb);
        const float t = joint ? -35.0f : 5 * fine;
        return {p.r + t, p.g + t, p.b + t};
    }
    const Rgb v = to_rgb(scene.kind_is_town() ? std::array<std::uint8_t, 3>{120, 115, 110} : scene.lighting().verge_rgb);
    const float t = 14 * fine + 12 * coarse;
    return {v.r + t, v.g + 1.2f * t, v.b + 0.5f * t};
}

// An object's box seen from one camera: the ray origin in the box's frame (x along its length, y across, z up from
// its base) and its rotation, computed once per object and frame rather than per pixel.
struct BoxView {
    double c = 1, s = 0;
    double origin[3] = {};
    double lo[3] = {}, hi[3] = {};
};

BoxView view_box(const ObjectState& box, const Vec3& o) {
    BoxView v;
    v.c = std::cos(box.yaw_rad), v.s = std::sin(box.yaw_rad);
    const double ox = o.x - box.x, oy = o.y - box.y;
    v.origin[0] = v.c * ox + v.s * oy, v.origin[1] = -v.s * ox + v.c * oy, v.origin[2] = o.z - box.z;
    v.lo[0] = -box.length / 2, v.lo[1] = -box.width / 2, v.lo[2] = 0;
    v.hi[0] = box.length / 2, v.hi[1] = box.width / 2, v.hi[2] = box.height;
    return v;
}

// The ray with direction d (ego frame) against the box (slab method): the entry parameter and the entered face's
// lighting factor, or false on a miss or when the camera is inside the box.
bool hit_box(const BoxView& box, const Vec3& d, float& t_hit, float& light) {
    const double dir[3] = {box.c * d.x + box.s * d.y, -box.s * d.x + box.c * d.y, d.z};
    double t_in = 0, t_out = std::numeric_limits<double>::infinity();
    int face = -1;
    for (int a = 0; a < 3; ++a) {
        if (std::abs(dir[a]) < 1e-12) {
            if (box.origin[a] < box.lo[a] || box.origin[a] > box.hi[a]) {
                return false;
            }
            continue;
        }
        const double inv = 1.0 / dir[a];
        double t0 = (box.lo[a] - box.origin[a]) * inv, t1 = (box.hi[a] - box.origin[a]) * inv;
        if (t0 > t1) {
            std::swap(t0, t1);
        }
        if (t0 > t_in) {
            t_in = t0;
            face = a;
        }
        t_out = std::min(t_out, t1);
        if (t_in > t_out) {
            return false;
        }
    }
    if (face < 0) {
        return false;
    }
    t_hit = static_cast<float>(t_in);
    // Sun from above and the front-left: tops brightest, sides by which way they face.
    light = face == 2 ? 1.0f : face == 0 ? (dir[0] < 0 ? 0.8f : 0.55f) : (dir[1] < 0 ? 0.7f : 0.45f);
    return true;
}

// exp(-haze * distance), tabulated every 0.25 m: the haze of a pixel without a call to exp.
class HazeTable {
public:
    explicit HazeTable(double haze_per_m) {
        for (std::size_t i = 0; i < keep_.size(); ++i) {
            keep_[i] = static_cast<float>(std::exp(-haze_per_m * static_cast<double>(i) * kStep_m));
        }
    }
    float keep(double distance_m) const {
        const auto i = static_cast<std::size_t>(std::min(distance_m / kStep_m, static_cast<double>(keep_.size() - 1)));
        return keep_[i];
    }

private:
    static constexpr double kStep_m = 0.25;
    std::array<float, 8192> keep_{};  // to 2 km; beyond, the last entry
};

// The pixel rectangle an object's box can cover (clipped to the image); empty when it is wholly behind.
bool screen_bounds(const ObjectState& o, const Camera& camera, int& u0, int& v0, int& u1, int& v1) {
    const double c = std::cos(o.yaw_rad), s = std::sin(o.yaw_rad);
    double umin = 1e30, vmin = 1e30, umax = -1e30, vmax = -1e30;
    int behind = 0;
    for (int k = 0; k < 8; ++k) {
        const double lx = (k & 1 ? 0.5 : -0.5) * o.length, ly = (k & 2 ? 0.5 : -0.5) * o.width;
        const Vec3 p{o.x + c * lx - s * ly, o.y + s * lx + c * ly, o.z + (k & 4 ? o.height : 0)};
        double u = 0, v = 0;
        if (!camera.project(p, u, v)) {
            ++behind;
            continue;
        }
        umin = std::min(umin, u), umax = std::max(umax, u), vmin = std::min(vmin, v), vmax = std::max(vmax, v);
    }
    if (behind == 8) {
        return false;
    }
    if (behind > 0) {  // straddles the camera plane: test every pixel
        umin = vmin = 0, umax = camera.width, vmax = camera.height;
    }
    u0 = std::max(0, static_cast<int>(std::floor(umin))), u1 = std::min(camera.width - 1, static_cast<int>(std::ceil(umax)));
    v0 = std::max(0, static_cast<int>(std::floor(vmin))), v1 = std::min(camera.height - 1, static_cast<int>(std::ceil(vmax)));
    return u0 <= u1 && v0 <= v1;
}

inline std::uint8_t to_byte(float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f)); }

inline float ground_dz(const Vec3& d00, const Vec3& du, const Vec3& dv, int u, int v) {
    return static_cast<float>(d00.z + u * du.z + v * dv.z);
}

// Where each pixel's ray meets the ground, in the ego frame, and how far away (distance -1: the ray sees sky).
void cache_ground(const Camera& camera, const Vec3& d00, const Vec3& du, const Vec3& dv, RenderScratch& scratch) {
    const int w = camera.width, h = camera.height;
    const Vec3 o = camera.position;
    scratch.ground.resize(static_cast<std::size_t>(w) * h * 3);
    for (int v = 0; v < h; ++v) {
        for (int u = 0; u < w; ++u) {
            const Vec3 d{d00.x + u * du.x + v * dv.x, d00.y + u * du.y + v * dv.y, d00.z + u * du.z + v * dv.z};
            float* g = scratch.ground.data() + (static_cast<std::size_t>(v) * w + u) * 3;
            if (d.z < -1e-6) {
                const double t = -o.z / d.z;
                g[0] = static_cast<float>(o.x + t * d.x), g[1] = static_cast<float>(o.y + t * d.y);
                g[2] = static_cast<float>(t * std::sqrt(d.x * d.x + d.y * d.y + d.z * d.z));
            } else {
                g[0] = g[1] = 0, g[2] = -1;
            }
        }
    }
    scratch.camera = &camera;
}

}  // namespace

void render_frame(const Scene& scene, const EgoState& ego, const std::vector<ObjectState>& objects,
                  const Camera& camera, std::span<std::uint8_t> rgb, RenderScratch& scratch) {
    const int w = camera.width, h = camera.height;
    DOJO_CHECK(rgb.size() == static_cast<std::size_t>(w) * h * 3);
    scratch.depth.resize(static_cast<std::size_t>(w) * h);
    const Lighting& light = scene.lighting();
    const Rgb sky = to_rgb(light.sky_rgb);
    const float sun = static_cast<float>(light.sun_brightness);
    const double c = std::cos(ego.yaw_rad), s = std::sin(ego.yaw_rad);
    const Vec3 o = camera.position;
    // The ray is linear in the pixel coordinates: d(u, v) = d00 + u * du + v * dv.
    const Vec3 d00 = camera.ray(0, 0), d10 = camera.ray(1, 0), d01 = camera.ray(0, 1);
    const Vec3 du{d10.x - d00.x, d10.y - d00.y, d10.z - d00.z}, dv{d01.x - d00.x, d01.y - d00.y, d01.z - d00.z};
    const HazeTable haze(light.haze_per_m);
    const auto fog = [&](Rgb colour, double distance) {
        const float keep = haze.keep(distance);
        return Rgb{colour.r * keep + sky.r * (1 - keep), colour.g * keep + sky.g * (1 - keep),
                   colour.b * keep + sky.b * (1 - keep)};
    };
    if (scratch.camera != &camera || scratch.ground.size() != static_cast<std::size_t>(w) * h * 3) {
        cache_ground(camera, d00, du, dv, scratch);
    }
    const auto cf = static_cast<float>(c), sf = static_cast<float>(s);
    const auto ego_x = static_cast<float>(ego.x), ego_y = static_cast<float>(ego.y);
    for (int v = 0; v < h; ++v) {
        std::uint8_t* row = rgb.data() + static_cast<std::size_t>(v) * w * 3;
        float* depth = scratch.depth.data() + static_cast<std::size_t>(v) * w;
        const float* ground = scratch.ground.data() + static_cast<std::size_t>(v) * w * 3;
        // The sky, brighter towards the horizon, for the rows that show it.
        const Vec3 d_row{d00.x + v * dv.x + w / 2.0 * du.x, d00.y + v * dv.y + w / 2.0 * du.y, d00.z + v * dv.z + w / 2.0 * du.z};
        const float lift = static_cast<float>(std::clamp(d_row.z / std::sqrt(d_row.x * d_row.x + d_row.y * d_row.y + d_row.z * d_row.z) * 3, 0.0, 1.0));
        const Rgb sky_row{sky.r * (1 - 0.25f * lift), sky.g * (1 - 0.15f * lift), sky.b};
        for (int u = 0; u < w; ++u) {
            const float ex = ground[3 * u], ey = ground[3 * u + 1], distance = ground[3 * u + 2];
            Rgb colour = sky_row;
            if (distance >= 0) {
                const Rgb g = ground_colour(scene, ego_x + cf * ex - sf * ey, ego_y + sf * ex + cf * ey);
                colour = fog({g.r * sun, g.g * sun, g.b * sun}, distance);
                depth[u] = -static_cast<float>(o.z) / ground_dz(d00, du, dv, u, v);
            } else {
                depth[u] = std::numeric_limits<float>::infinity();
            }
            row[3 * u] = to_byte(colour.r), row[3 * u + 1] = to_byte(colour.g), row[3 * u + 2] = to_byte(colour.b);
        }
    }
    for (const ObjectState& object : objects) {
        int u0 = 0, v0 = 0, u1 = -1, v1 = -1;
        if (!screen_bounds(object, camera, u0, v0, u1, v1)) {
            continue;
        }
        const Rgb base = to_rgb(object.rgb);
        const BoxView box = view_box(object, o);
        for (int v = v0; v <= v1; ++v) {
            std::uint8_t* row = rgb.data() + static_cast<std::size_t>(v) * w * 3;
            float* depth = scratch.depth.data() + static_cast<std::size_t>(v) * w;
            for (int u = u0; u <= u1; ++u) {
                const Vec3 d{d00.x + u * du.x + v * dv.x, d00.y + u * du.y + v * dv.y, d00.z + u * du.z + v * dv.z};
                float t = 0, face = 0;
                if (!hit_box(box, d, t, face) || t >= depth[u]) {
                    continue;
                }
                depth[u] = t;
                const float k = face * sun;
                const double norm = std::sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
                const Rgb colour = fog({base.r * k, base.g * k, base.b * k}, t * norm);
                row[3 * u] = to_byte(colour.r), row[3 * u + 1] = to_byte(colour.g), row[3 * u + 2] = to_byte(colour.b);
            }
        }
    }
}

}  // namespace dojo::data::fleet
