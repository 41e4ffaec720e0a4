// Voxel-to-feature indices by the cameras' projection (lifting.h).
#include "dojo/geometry/lifting.h"

#include <cmath>
#include <string>

#include "dojo/util/error.h"

namespace dojo::geometry {

Vec3 VoxelCells::centre(int x, int y, int z) const {
    const double size_x = 2 * range_m / cells_x, size_y = 2 * range_m / cells_y, size_z = height_m / cells_z;
    return {-range_m + (x + 0.5) * size_x, -range_m + (y + 0.5) * size_y, (z + 0.5) * size_z};
}

std::vector<std::int64_t> lifting_indices(const std::vector<Camera>& cameras, int width, int height, int stride,
                                          const VoxelCells& cells) {
    if (stride <= 0 || width <= 0 || height <= 0 || width % stride != 0 || height % stride != 0) {
        throw UsageError("lifting: the image size " + std::to_string(width) + "x" + std::to_string(height) +
                         " must be a positive multiple of the feature stride " + std::to_string(stride));
    }
    const std::int64_t rows = height / stride, columns = width / stride;
    const std::int64_t unseen = static_cast<std::int64_t>(cameras.size()) * rows * columns;
    std::vector<std::int64_t> indices;
    indices.reserve(cameras.size() * static_cast<std::size_t>(cells.count()));
    for (std::size_t c = 0; c < cameras.size(); ++c) {
        const Camera& camera = cameras[c];
        const double scale_x = static_cast<double>(width) / camera.width;
        const double scale_y = static_cast<double>(height) / camera.height;
        for (int z = 0; z < cells.cells_z; ++z) {
            for (int y = 0; y < cells.cells_y; ++y) {
                for (int x = 0; x < cells.cells_x; ++x) {
                    double u = 0, v = 0;
                    // project() gives pixel-centre coordinates (pixel i at i); + 0.5 makes pixel i cover [i, i + 1).
                    if (!camera.project(cells.centre(x, y, z), u, v)) {
                        indices.push_back(unseen);
                        continue;
                    }
                    u = (u + 0.5) * scale_x;
                    v = (v + 0.5) * scale_y;
                    if (!(u >= 0 && u < width && v >= 0 && v < height)) {
                        indices.push_back(unseen);
                        continue;
                    }
                    const auto row = static_cast<std::int64_t>(std::floor(v)) / stride;
                    const auto column = static_cast<std::int64_t>(std::floor(u)) / stride;
                    indices.push_back(static_cast<std::int64_t>(c) * rows * columns + row * columns + column);
                }
            }
        }
    }
    return indices;
}

}  // namespace dojo::geometry
