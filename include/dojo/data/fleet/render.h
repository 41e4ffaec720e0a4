/** \file
 * A software renderer for the synthetic fleet: what one camera of the rig sees of a scene at one instant.
 *
 * Per pixel, a ray through the pinhole meets either the ground plane (asphalt with texture, lane markings, kerbs,
 * pavement or grass, all fixed in the world so they stream past as the car moves), an object's box (a flat-shaded
 * face lit by the sun), or the sky; haze blends distant surfaces into the sky. No shadows or reflections: enough
 * texture, lighting and geometry that a network must learn perspective, not a photoreal image.
 */
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "dojo/geometry/cameras.h"
#include "dojo/data/fleet/scene.h"

namespace dojo::data::fleet {

/// One camera's buffers, reused across frames (allocate once: first-touch memory is slow). The camera is fixed to
/// the car, so where each pixel's ray meets the ground (in the ego frame) is computed once, on the first frame.
struct RenderScratch {
    std::vector<float> depth;     ///< depth (optical z, m) of the nearest surface per pixel
    std::vector<float> ray_length;  ///< per pixel: metres along the ray per metre of depth
    std::vector<float> ground;    ///< per pixel: ego-frame x, y of the ground hit, its distance and depth; distance < 0: sky
    const geometry::Camera* camera = nullptr;  ///< the camera `ground` was computed for
};

/// Renders `camera` at the instant whose ego state is `ego` and objects (ego frame) are `objects` into `rgb`
/// (camera.height rows of camera.width pixels, 3 bytes each). Precondition: rgb.size() == width * height * 3, and
/// `scratch` is used with this one camera only (and the camera outlives it).
void render_frame(const Scene& scene, const EgoState& ego, const std::vector<ObjectState>& objects,
                  const geometry::Camera& camera, std::span<std::uint8_t> rgb, RenderScratch& scratch);

}  // namespace dojo::data::fleet
