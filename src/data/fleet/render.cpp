// The fleet's software renderer (render.h): ground, boxes, sky, haze.
#include "dojo/data/fleet/render.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dojo/util/check.h"

namespace dojo::data::fleet {

using geometry::Camera;
using geometry::Vec3;

namespace {

// A lattice hash in [-1, 1]: the texture of asphalt and grass, fixed in the world (32-bit arithmetic: it runs per
// pixel).
inline float lattice_noise(std::int32_t i, std::int32_t j) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ static_cast<std::uint32_t>(j) * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return static_cast<float>(h & 0xFFFF) / 32767.5f - 1.0f;
}

struct Rgb {
    float r, g, b;
};

Rgb to_rgb(const std::array<std::uint8_t, 3>& c) { return {float(c[0]), float(c[1]), float(c[2])}; }

// floor() without a call into libm (baseline x86-64 has no rounding instruction): the ground is evaluated per pixel.
// For |v| < 2^31.
inline std::int32_t floor_int(float v) {
    const auto truncated = static_cast<std::int32_t>(v);
    return truncated - (static_cast<float>(truncated) > v);
}

inline float wrap(float v, float period) { return v - static_cast<float>(floor_int(v / period)) * period; }

// The road and the colours of a scene's ground, as the per-pixel code wants them.
struct GroundStyle {
    float half, lane_width, lanes, sidewalk;
    Rgb asphalt, pavement, verge;

    explicit GroundStyle(const Scene& scene)
        : half(static_cast<float>(scene.road().half_width_m())),
          lane_width(static_cast<float>(scene.road().lane_width_m)),
          lanes(static_cast<float>(scene.road().lanes_each_way)),
          sidewalk(static_cast<float>(scene.road().sidewalk_m)),
          asphalt(to_rgb(scene.lighting().asphalt_rgb)),
          pavement(to_rgb(scene.lighting().verge_rgb)),
          verge(scene.kind_is_town() ? Rgb{120, 115, 110} : to_rgb(scene.lighting().verge_rgb)) {}
};

// The ground's colour at world point (x, y): road with markings, kerb, pavement or verge.
Rgb ground_colour(const GroundStyle& g, float x, float y) {
    const float ay = std::abs(y);
    const std::int32_t xi = floor_int(x * 2), yi = floor_int(y * 2);
    const float fine = lattice_noise(xi, yi);
    const float coarse = lattice_noise(xi >> 3, (yi >> 3) + 7777);
    if (ay < g.half + 0.15f) {
        // Markings: solid centre line and edges, dashed lane lines (3 m painted, 9 m gap).
        const float lane_pos = ay / g.lane_width;
        const auto nearest = static_cast<float>(floor_int(lane_pos + 0.5f));
        if (std::abs(lane_pos - nearest) * g.lane_width < 0.08f) {
            const bool edge_or_centre = nearest == 0 || nearest >= g.lanes;
            if (edge_or_centre || wrap(x, 12.0f) < 3.0f) {
                return nearest == 0 ? Rgb{220, 190, 60} : Rgb{225, 225, 220};
            }
        }
        const float t = 8 * fine + 6 * coarse;
        return {g.asphalt.r + t, g.asphalt.g + t, g.asphalt.b + t};
    }
    if (g.sidewalk > 0 && ay < g.half + g.sidewalk) {  // paving slabs, 1.5 m, with joints
        const bool joint = wrap(x, 1.5f) < 0.06f || wrap(ay - g.half, 1.5f) < 0.06f;
        const float t = joint ? -35.0f : 5 * fine;
        return {g.pavement.r + t, g.pavement.g + t, g.pavement.b + t};
    }
    const float t = 14 * fine + 12 * coarse;
    return {g.verge.r + t, g.verge.g + 1.2f * t, g.verge.b + 0.5f * t};
}

// exp(-haze * distance), tabulated every 0.25 m: the haze of a pixel without a call to exp.
class HazeTable {
public:
    explicit HazeTable(double haze_per_m) {
        for (std::size_t i = 0; i < keep_.size(); ++i) {
            keep_[i] = static_cast<float>(std::exp(-haze_per_m * static_cast<double>(i) * kStep_m));
        }
    }
    float keep(float distance_m) const {
        const auto i = static_cast<std::size_t>(std::min(distance_m * (1 / kStep_m), static_cast<float>(keep_.size() - 1)));
        return keep_[i];
    }

private:
    static constexpr float kStep_m = 0.25f;
    std::array<float, 8192> keep_{};  // to 2 km; beyond, the last entry
};

inline std::uint8_t to_byte(float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 255.0f)); }

// A point in the camera's optical frame: x right, y down, z forward (m).
Vec3 to_optical(const Camera& camera, const Vec3& p) {
    const Vec3 d{p.x - camera.position.x, p.y - camera.position.y, p.z - camera.position.z};
    const double cy = std::cos(camera.yaw_rad), sy = std::sin(camera.yaw_rad);
    const double forward0 = cy * d.x + sy * d.y, left = -sy * d.x + cy * d.y;
    const double cp = std::cos(camera.pitch_rad), sp = std::sin(camera.pitch_rad);
    return {-left, -(sp * forward0 + cp * d.z), cp * forward0 - sp * d.z};
}

constexpr double kNear_m = 0.05;

// The part of a convex polygon (optical frame) in front of the near plane (Sutherland-Hodgman, one plane).
std::vector<Vec3> clip_near(const std::vector<Vec3>& polygon) {
    std::vector<Vec3> out;
    for (std::size_t i = 0; i < polygon.size(); ++i) {
        const Vec3& a = polygon[i];
        const Vec3& b = polygon[(i + 1) % polygon.size()];
        if (a.z >= kNear_m) {
            out.push_back(a);
        }
        if ((a.z >= kNear_m) != (b.z >= kNear_m)) {
            const double t = (kNear_m - a.z) / (b.z - a.z);
            out.push_back({a.x + t * (b.x - a.x), a.y + t * (b.y - a.y), kNear_m});
        }
    }
    return out;
}

// What a face is drawn with: its colour before haze, and the per-pixel ray length per metre of depth.
struct FacePaint {
    float r, g, b;
    const HazeTable* haze;
    Rgb sky;
};

// Draws one visible face (a convex polygon, optical frame, in front of the near plane) with a depth test against
// `depth` (optical z per pixel). Pixels whose centres fall inside the projected polygon are covered; the depth of
// each is exact (1/z is affine in the image for a plane).
void fill_face(const std::vector<Vec3>& face, const Camera& camera, const FacePaint& paint, std::span<std::uint8_t> rgb,
               RenderScratch& scratch) {
    const int w = camera.width, h = camera.height;
    std::vector<std::pair<double, double>> screen;  // (U, V): pixel-edge coordinates, centre of pixel u at u + 0.5
    double vmin = 1e300, vmax = -1e300;
    for (const Vec3& p : face) {
        screen.emplace_back(camera.fx * p.x / p.z + camera.cx, camera.fy * p.y / p.z + camera.cy);
        vmin = std::min(vmin, screen.back().second), vmax = std::max(vmax, screen.back().second);
    }
    // The face's plane n . p = d; along the ray through (U, V), 1 / z = n . r(U, V) / d, r = ((U-cx)/fx, (V-cy)/fy, 1).
    const Vec3 e1{face[1].x - face[0].x, face[1].y - face[0].y, face[1].z - face[0].z};
    const Vec3 e2{face[2].x - face[0].x, face[2].y - face[0].y, face[2].z - face[0].z};
    const Vec3 n{e1.y * e2.z - e1.z * e2.y, e1.z * e2.x - e1.x * e2.z, e1.x * e2.y - e1.y * e2.x};
    const double d = n.x * face[0].x + n.y * face[0].y + n.z * face[0].z;
    if (std::abs(d) < 1e-12) {
        return;  // seen edge-on
    }
    const int v0 = std::max(0, static_cast<int>(std::ceil(vmin - 0.5))), v1 = std::min(h - 1, static_cast<int>(std::ceil(vmax - 0.5)) - 1);
    for (int v = v0; v <= v1; ++v) {
        const double y = v + 0.5;
        double left = 1e300, right = -1e300;
        for (std::size_t i = 0; i < screen.size(); ++i) {
            const auto [ua, va] = screen[i];
            const auto [ub, vb] = screen[(i + 1) % screen.size()];
            if ((va <= y && y < vb) || (vb <= y && y < va)) {
                const double u = ua + (y - va) / (vb - va) * (ub - ua);
                left = std::min(left, u), right = std::max(right, u);
            }
        }
        const int u0 = std::max(0, static_cast<int>(std::ceil(left - 0.5)));
        const int u1 = std::min(w - 1, static_cast<int>(std::ceil(right - 0.5)) - 1);
        const double row_term = n.y * (y - camera.cy) / camera.fy + n.z;
        std::uint8_t* out = rgb.data() + static_cast<std::size_t>(v) * w * 3;
        float* depth = scratch.depth.data() + static_cast<std::size_t>(v) * w;
        const float* ray_length = scratch.ray_length.data() + static_cast<std::size_t>(v) * w;
        for (int u = u0; u <= u1; ++u) {
            const double inverse_z = (n.x * (u + 0.5 - camera.cx) / camera.fx + row_term) / d;
            if (!(inverse_z > 0)) {
                continue;
            }
            const auto z = static_cast<float>(1.0 / inverse_z);
            if (z >= depth[u]) {
                continue;
            }
            depth[u] = z;
            const float keep = paint.haze->keep(z * ray_length[u]);
            out[3 * u] = to_byte(paint.r * keep + paint.sky.r * (1 - keep));
            out[3 * u + 1] = to_byte(paint.g * keep + paint.sky.g * (1 - keep));
            out[3 * u + 2] = to_byte(paint.b * keep + paint.sky.b * (1 - keep));
        }
    }
}

// Draws an object's box: its faces that look towards the camera (the base never does: cameras are above the ground),
// each flat-shaded by which way it faces (sun from above and the front-left).
void draw_box(const ObjectState& o, const Camera& camera, float sun, const HazeTable& haze, const Rgb& sky,
              std::span<std::uint8_t> rgb, RenderScratch& scratch) {
    const double c = std::cos(o.yaw_rad), s = std::sin(o.yaw_rad);
    std::array<Vec3, 8> corner{};  // bit 0: +x (front), bit 1: +y (left), bit 2: top; in the optical frame
    for (int k = 0; k < 8; ++k) {
        const double lx = (k & 1 ? 0.5 : -0.5) * o.length, ly = (k & 2 ? 0.5 : -0.5) * o.width;
        corner[k] = to_optical(camera, {o.x + c * lx - s * ly, o.y + s * lx + c * ly, o.z + (k & 4 ? o.height : 0)});
    }
    // Faces as corner lists (counter-clockwise seen from outside), their outward normal in the ego frame, and light.
    struct Face {
        std::array<int, 4> corners;
        double nx, ny;  // outward normal of a side face in the ego frame (0, 0 for the top)
        double half;    // distance of a side face's plane from the box's axis
        float light;
    };
    const std::array<Face, 5> faces{{
        {{1, 3, 7, 5}, c, s, o.length / 2, 0.8f},     // front (+x)
        {{0, 4, 6, 2}, -c, -s, o.length / 2, 0.55f},  // back
        {{2, 6, 7, 3}, -s, c, o.width / 2, 0.7f},     // left (+y)
        {{0, 1, 5, 4}, s, -c, o.width / 2, 0.45f},    // right
        {{4, 5, 7, 6}, 0, 0, 0, 1.0f},                // top
    }};
    const Rgb base = to_rgb(o.rgb);
    for (const Face& f : faces) {
        // Visible when the camera is on the outer side of the face's plane.
        const bool top = f.nx == 0 && f.ny == 0;
        const double outside = top ? camera.position.z - (o.z + o.height)
                                   : f.nx * (camera.position.x - o.x) + f.ny * (camera.position.y - o.y) - f.half;
        if (outside <= 0) {
            continue;
        }
        std::vector<Vec3> polygon;
        for (const int k : f.corners) {
            polygon.push_back(corner[k]);
        }
        polygon = clip_near(polygon);
        if (polygon.size() < 3) {
            continue;
        }
        const float k = f.light * sun;
        fill_face(polygon, camera, {base.r * k, base.g * k, base.b * k, &haze, sky}, rgb, scratch);
    }
}

// Where each pixel's ray meets the ground, in the ego frame, and how far away (distance -1: the ray sees sky).
void cache_ground(const Camera& camera, const Vec3& d00, const Vec3& du, const Vec3& dv, RenderScratch& scratch) {
    const int w = camera.width, h = camera.height;
    const Vec3 o = camera.position;
    scratch.ground.resize(static_cast<std::size_t>(w) * h * 4);
    scratch.ray_length.resize(static_cast<std::size_t>(w) * h);
    for (int v = 0; v < h; ++v) {
        for (int u = 0; u < w; ++u) {
            const Vec3 d{d00.x + u * du.x + v * dv.x, d00.y + u * du.y + v * dv.y, d00.z + u * du.z + v * dv.z};
            float* g = scratch.ground.data() + (static_cast<std::size_t>(v) * w + u) * 4;
            scratch.ray_length[static_cast<std::size_t>(v) * w + u] = static_cast<float>(std::sqrt(d.x * d.x + d.y * d.y + d.z * d.z));
            if (d.z < -1e-6) {
                const double t = -o.z / d.z;
                g[0] = static_cast<float>(o.x + t * d.x), g[1] = static_cast<float>(o.y + t * d.y);
                g[2] = static_cast<float>(t * std::sqrt(d.x * d.x + d.y * d.y + d.z * d.z));
                g[3] = static_cast<float>(t);  // the ray's optical z is 1: t is the depth
            } else {
                g[0] = g[1] = g[3] = 0, g[2] = -1;
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
    // The ray is linear in the pixel coordinates: d(u, v) = d00 + u * du + v * dv.
    const Vec3 d00 = camera.ray(0, 0), d10 = camera.ray(1, 0), d01 = camera.ray(0, 1);
    const Vec3 du{d10.x - d00.x, d10.y - d00.y, d10.z - d00.z}, dv{d01.x - d00.x, d01.y - d00.y, d01.z - d00.z};
    const HazeTable haze(light.haze_per_m);
    const auto fog = [&](Rgb colour, double distance) {
        const float keep = haze.keep(static_cast<float>(distance));
        return Rgb{colour.r * keep + sky.r * (1 - keep), colour.g * keep + sky.g * (1 - keep),
                   colour.b * keep + sky.b * (1 - keep)};
    };
    if (scratch.camera != &camera || scratch.ground.size() != static_cast<std::size_t>(w) * h * 4) {
        cache_ground(camera, d00, du, dv, scratch);
    }
    const GroundStyle style(scene);
    const auto cf = static_cast<float>(c), sf = static_cast<float>(s);
    const auto ego_x = static_cast<float>(ego.x), ego_y = static_cast<float>(ego.y);
    for (int v = 0; v < h; ++v) {
        std::uint8_t* row = rgb.data() + static_cast<std::size_t>(v) * w * 3;
        float* depth = scratch.depth.data() + static_cast<std::size_t>(v) * w;
        const float* ground = scratch.ground.data() + static_cast<std::size_t>(v) * w * 4;
        // The sky, brighter towards the horizon, for the rows that show it.
        const Vec3 d_row{d00.x + v * dv.x + w / 2.0 * du.x, d00.y + v * dv.y + w / 2.0 * du.y, d00.z + v * dv.z + w / 2.0 * du.z};
        const float lift = static_cast<float>(std::clamp(d_row.z / std::sqrt(d_row.x * d_row.x + d_row.y * d_row.y + d_row.z * d_row.z) * 3, 0.0, 1.0));
        const Rgb sky_row{sky.r * (1 - 0.25f * lift), sky.g * (1 - 0.15f * lift), sky.b};
        for (int u = 0; u < w; ++u) {
            const float ex = ground[4 * u], ey = ground[4 * u + 1], distance = ground[4 * u + 2];
            Rgb colour = sky_row;
            if (distance >= 0) {
                const Rgb g = ground_colour(style, ego_x + cf * ex - sf * ey, ego_y + sf * ex + cf * ey);
                colour = fog({g.r * sun, g.g * sun, g.b * sun}, distance);
                depth[u] = ground[4 * u + 3];
            } else {
                depth[u] = std::numeric_limits<float>::infinity();
            }
            row[3 * u] = to_byte(colour.r), row[3 * u + 1] = to_byte(colour.g), row[3 * u + 2] = to_byte(colour.b);
        }
    }
    for (const ObjectState& object : objects) {
        draw_box(object, camera, sun, haze, sky, rgb, scratch);
    }
}

}  // namespace dojo::data::fleet
