/** \file
 * Lifting image features into voxels by the cameras' calibration: for every camera and every cell of a voxel grid
 * around the car, which cell of that camera's feature map the voxel's centre projects into. An occupancy network
 * gathers its per-camera features at these indices (a Gather with constant indices) and sums them over the cameras,
 * so what it learns about a voxel comes from the pixels that see it.
 *
 * The cameras are as the clips were rendered (Camera::width x height, their intrinsics in those pixels); the network
 * sees each image stretched to `width` x `height` (what the clip pipeline does without augmentation) and its
 * features on a grid `stride` times coarser. A voxel behind a camera, or projecting outside its image, is unseen by
 * it: its index is the one past the last feature (the caller's row of zeros).
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/geometry/cameras.h"

namespace dojo::geometry {

/// The cells an occupancy network predicts: cells_x x cells_y x cells_z over x and y in [-range_m, range_m) about
/// the car's centre and z in [0, height_m) above the ground (ego frame, metres). The defaults are the fleet store's
/// grid (±40 m, 8 voxels of 0.4 m up) pooled to 2 m x 2 m x 0.8 m cells.
struct VoxelCells {
    int cells_x = 40, cells_y = 40, cells_z = 4;
    double range_m = 40.0, height_m = 3.2;

    std::int64_t count() const { return static_cast<std::int64_t>(cells_x) * cells_y * cells_z; }
    /// The centre of cell (x, y, z) in the ego frame.
    Vec3 centre(int x, int y, int z) const;
};

/// For camera c of `cameras` and cell (x, y, z), at position c * count + (z * cells_y + y) * cells_x + x: the index of
/// the feature cell its centre projects into, in the cameras' feature maps flattened as [camera, row, column] with
/// (height / stride) x (width / stride) cells each; cameras.size() * rows * columns where camera c does not see it.
/// Throws UsageError unless width and height are positive multiples of stride.
std::vector<std::int64_t> lifting_indices(const std::vector<Camera>& cameras, int width, int height, int stride,
                                          const VoxelCells& cells);

}  // namespace dojo::geometry
