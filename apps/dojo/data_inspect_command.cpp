// `dojo data inspect STORE CLIP`: one clip's calibration and ground truth at a frame, and pictures of both.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>

#include "dojo/data/fleet/labels.h"
#include "dojo/data/fleet/manifest.h"
#include "dojo/data/fleet/tar.h"
#include "dojo/data/fleet/video.h"
#include "dojo/util/error.h"
#include "dojo/util/files.h"

namespace dojo::cli {
namespace {

using namespace dojo::data::fleet;

struct InspectCommand {
    std::string dir, clip, image;
    int frame = 0;
    bool json = false;
};

// Colours of the occupancy picture, by ObjectClass.
constexpr std::array<std::array<std::uint8_t, 3>, kObjectClasses> kClassColours{
    {{60, 120, 255}, {0, 200, 255}, {255, 60, 60}, {255, 160, 0}, {255, 120, 0}, {200, 200, 200}, {120, 120, 90}}};

std::string ppm(int width, int height, const std::vector<std::uint8_t>& rgb) {
    return fmt::format("P6\n{} {}\n255\n", width, height) + std::string(rgb.begin(), rgb.end());
}

// The eight cameras at `frame`, 320x240 each, four to a row.
std::string camera_sheet(const std::string& dir, const ClipRecord& clip, int frame) {
    constexpr int kW = 320, kH = 240, kColumns = 4;
    const int rows = static_cast<int>((clip.streams.size() + kColumns - 1) / kColumns);
    std::vector<std::uint8_t> sheet(static_cast<std::size_t>(kW * kColumns) * kH * rows * 3, 0);
    for (std::size_t c = 0; c < clip.streams.size(); ++c) {
        const StreamRecord& s = clip.streams[c];
        const std::string mp4 = read_range(dir + "/" + clip.shard, s.offset, s.bytes);
        VideoDecoder decoder(mp4, clip.shard + ": " + clip.clip + "." + s.camera + ".mp4");
        const int wanted[1] = {frame};
        decoder.read(wanted, kW, kH, [&](int, std::span<const std::uint8_t> rgb) {
            const int x0 = static_cast<int>(c % kColumns) * kW, y0 = static_cast<int>(c / kColumns) * kH;
            constexpr std::size_t kPlane = static_cast<std::size_t>(kW) * kH;
            for (int y = 0; y < kH; ++y) {
                for (int x = 0; x < kW; ++x) {
                    for (int ch = 0; ch < 3; ++ch) {
                        sheet[((static_cast<std::size_t>(y0 + y) * kW * kColumns) + x0 + x) * 3 + ch] =
                            rgb[ch * kPlane + static_cast<std::size_t>(y) * kW + x];
                    }
                }
            }
        });
    }
    return ppm(kW * kColumns, kH * rows, sheet);
}

// Bird's-eye view of the occupancy: the highest occupied voxel of each column, coloured by class; x (forward) up.
std::string occupancy_picture(const ClipLabels& labels, const FrameLabels& f) {
    const int n = labels.grid.cells_xy(), scale = std::max(1, 400 / n);
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(n * scale) * n * scale * 3, 30);
    for (int xi = 0; xi < n; ++xi) {
        for (int yi = 0; yi < n; ++yi) {
            int cls = 0;
            for (int z = labels.grid.heights - 1; z >= 0 && cls == 0; --z) {
                cls = f.occupancy[(static_cast<std::size_t>(z) * n + yi) * n + xi];
            }
            const bool ego = std::abs(xi - n / 2) < 6 && std::abs(yi - n / 2) < 3;
            const std::array<std::uint8_t, 3> colour =
                ego ? std::array<std::uint8_t, 3>{255, 255, 255} : cls ? kClassColours[cls - 1] : std::array<std::uint8_t, 3>{30, 30, 30};
            const int row = n - 1 - xi, col = n - 1 - yi;  // forward up, left on the left
            for (int dy = 0; dy < scale; ++dy) {
                for (int dx = 0; dx < scale; ++dx) {
                    std::copy(colour.begin(), colour.end(),
                              rgb.begin() + ((static_cast<long>(row * scale + dy) * n * scale) + col * scale + dx) * 3);
                }
            }
        }
    }
    return ppm(n * scale, n * scale, rgb);
}

void run_inspect(const InspectCommand& c) {
    ClipFilter all;
    const std::vector<ClipRecord> clips = Manifest(c.dir, false).query(all);
    const auto found = std::find_if(clips.begin(), clips.end(), [&](const ClipRecord& r) { return r.clip == c.clip; });
    if (found == clips.end()) {
        throw UsageError("no clip '" + c.clip + "' in the store " + c.dir + " (dojo data query " + c.dir + " lists them)");
    }
    const ClipRecord& clip = *found;
    if (c.frame < 0 || c.frame >= clip.frames) {
        throw UsageError(fmt::format("--frame {}: {} has frames 0..{}", c.frame, clip.clip, clip.frames - 1));
    }
    const ClipLabels labels = decode_labels(read_range(c.dir + "/" + clip.shard, clip.labels_offset, clip.labels_bytes),
                                            clip.shard + ": " + clip.clip + ".labels");
    const FrameLabels& f = labels.frames.at(static_cast<std::size_t>(c.frame));
    std::array<long, kObjectClasses + 1> cells{};
    for (const std::uint8_t v : f.occupancy) {
        ++cells[v];
    }
    nlohmann::json cameras = nlohmann::json::array(), objects = nlohmann::json::array(), occupancy;
    for (const geometry::Camera& cam : labels.cameras) {
        cameras.push_back({{"name", cam.name}, {"width", cam.width}, {"height", cam.height}, {"fx", cam.fx},
                           {"fy", cam.fy}, {"cx", cam.cx}, {"cy", cam.cy},
                           {"position_m", {cam.position.x, cam.position.y, cam.position.z}},
                           {"yaw_deg", cam.yaw_rad * 180 / M_PI}, {"pitch_deg", cam.pitch_rad * 180 / M_PI}});
    }
    for (const ObjectState& o : f.objects) {
        objects.push_back({{"id", o.id}, {"class", object_class_name(o.cls)}, {"center_m", {o.x, o.y, o.z}},
                           {"size_m", {o.length, o.width, o.height}}, {"yaw_deg", o.yaw_rad * 180 / M_PI},
                           {"velocity_mps", {o.vx, o.vy}}});
    }
    for (int k = 0; k < kObjectClasses; ++k) {
        occupancy[object_class_name(static_cast<ObjectClass>(k))] = cells[k + 1];
    }
    occupancy["free"] = cells[0];
    if (!c.image.empty()) {
        write_output_file(c.image + "-cameras.ppm", camera_sheet(c.dir, clip, c.frame), "camera picture");
        write_output_file(c.image + "-occupancy.ppm", occupancy_picture(labels, f), "occupancy picture");
    }
    const nlohmann::json out{{"clip", clip.clip}, {"scene", scene_kind_name(clip.kind)}, {"split", clip.split},
                             {"frame", c.frame}, {"frames", clip.frames}, {"fps", clip.fps},
                             {"ego", {{"x_m", f.ego.x}, {"y_m", f.ego.y}, {"yaw_deg", f.ego.yaw_rad * 180 / M_PI},
                                      {"speed_mps", f.ego.speed_mps}}},
                             {"grid", {{"range_m", labels.grid.range_m}, {"voxel_m", labels.grid.voxel_m},
                                       {"heights", labels.grid.heights}}},
                             {"occupied_cells", occupancy}, {"objects", objects}, {"cameras", cameras}};
    if (c.json) {
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::cout << fmt::format("{} ({} scene, {} split), frame {}/{} at {} fps: ego at ({:.1f}, {:.1f}) m, {:.1f} m/s\n",
                             clip.clip, scene_kind_name(clip.kind), clip.split, c.frame, clip.frames, clip.fps, f.ego.x,
                             f.ego.y, f.ego.speed_mps);
    std::cout << fmt::format("{} objects within {} m; occupancy: {}\n", f.objects.size(), labels.grid.range_m,
                             occupancy.dump());
    std::cout << fmt::format("{:<15} {:>7} {:>7} {:>6} {:>6}  {:>16}  {:>6} {:>6}\n", "camera", "fx", "fy", "cx", "cy",
                             "position m", "yaw", "pitch");
    for (const geometry::Camera& cam : labels.cameras) {
        std::cout << fmt::format("{:<15} {:>7.1f} {:>7.1f} {:>6.1f} {:>6.1f}  {:>5.2f},{:>5.2f},{:>4.2f}  {:>6.1f} {:>6.1f}\n",
                                 cam.name, cam.fx, cam.fy, cam.cx, cam.cy, cam.position.x, cam.position.y,
                                 cam.position.z, cam.yaw_rad * 180 / M_PI, cam.pitch_rad * 180 / M_PI);
    }
    if (!c.image.empty()) {
        std::cout << "wrote " << c.image << "-cameras.ppm and " << c.image << "-occupancy.ppm\n";
    }
}

}  // namespace

void add_data_inspect(CLI::App& data) {
    auto c = std::make_shared<InspectCommand>();
    CLI::App* cmd = data.add_subcommand("inspect", "One clip: calibration, the ego car and objects at a frame, its "
                                                   "occupancy; --image writes pictures of the cameras and the grid.");
    cmd->add_option("store", c->dir, "clip store directory")->required();
    cmd->add_option("clip", c->clip, "clip name, e.g. clip-000003 (dojo data query lists them)")->required();
    cmd->add_option("--frame", c->frame, "frame number (default 0)");
    cmd->add_option("--image", c->image, "write PREFIX-cameras.ppm (the eight cameras) and PREFIX-occupancy.ppm "
                                         "(bird's-eye view of the grid)");
    cmd->add_flag("--json", c->json, "print as JSON");
    cmd->callback([c] { run_inspect(*c); });
}

}  // namespace dojo::cli
