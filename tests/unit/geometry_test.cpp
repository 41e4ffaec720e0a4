// Lifting voxels into the cameras' feature maps (geometry/lifting.h), checked against where the rig's cameras point:
// a cell straight ahead lands mid-image in the forward cameras and nowhere in the rear one, a cell behind the car is
// the rear camera's, a cell to the left is the left cameras'.
#include <gtest/gtest.h>

#include <cmath>

#include "dojo/geometry/lifting.h"
#include "dojo/util/error.h"

namespace dojo::geometry {
namespace {

// Cells of 2 m with a row of centres on the car's axis (y = 0) and columns at whole metres: 41 x 41 x 4 over ±41 m.
const VoxelCells kCells{41, 41, 4, 41.0, 3.2};
constexpr int kWidth = 96, kHeight = 64, kStride = 8;  // feature maps of 12 x 8 cells
constexpr std::int64_t kPerCamera = (kWidth / kStride) * (kHeight / kStride);

// Cell (x, y, z)'s index for camera `camera`: where it lands, as (camera, row, column), or camera -1 when unseen.
struct Landing {
    std::int64_t camera = -1, row = 0, column = 0;
};
Landing landing(const std::vector<std::int64_t>& ids, int camera, int x, int y, int z) {
    const std::int64_t id = ids[static_cast<std::size_t>(camera * kCells.count() + (z * kCells.cells_y + y) * kCells.cells_x + x)];
    if (id == kRigCameras * kPerCamera) {
        return {};
    }
    return {id / kPerCamera, (id % kPerCamera) / (kWidth / kStride), id % (kWidth / kStride)};
}

TEST(Lifting, CellsLandWhereTheRigsCamerasLook) {
    const std::vector<Camera> rig = production_rig(640, 480);
    const std::vector<std::int64_t> ids = lifting_indices(rig, kWidth, kHeight, kStride, kCells);
    ASSERT_EQ(ids.size(), static_cast<std::size_t>(kRigCameras * kCells.count()));
    // (20, 0, 0.4): 19.2 m ahead of the main camera, 0.95 m below it; the camera is pitched 2° down, so the point is
    // 0.83° below its axis: mid-image across (column 6 of 12), just below the middle (v = 32 + 102.9 tan 0.83° = 33.5,
    // row 4 of 8).
    const Landing main = landing(ids, 0, 30, 20, 0);
    EXPECT_EQ(main.camera, 0);
    EXPECT_EQ(main.column, 6);
    EXPECT_EQ(main.row, 4);
    EXPECT_EQ(landing(ids, 1, 30, 20, 0).camera, 1);  // narrow, beside the main camera
    EXPECT_EQ(landing(ids, 2, 30, 20, 0).camera, 2);  // wide
    EXPECT_EQ(landing(ids, 7, 30, 20, 0).camera, -1);  // the rear camera looks away from it
    // (-20, 0, 0.4), behind the car: the rear camera's, none of the forward ones'.
    EXPECT_EQ(landing(ids, 7, 10, 20, 0).camera, 7);
    for (int forward = 0; forward < 3; ++forward) {
        EXPECT_EQ(landing(ids, forward, 10, 20, 0).camera, -1) << rig[static_cast<std::size_t>(forward)].name;
    }
    // (0, 20, 0.4), beside the car on its left: the left pillar sees it on its left half (it looks 55° left of ahead,
    // the point is 90° left); the right pillar does not.
    const Landing left = landing(ids, 3, 20, 40 - 10, 0);
    EXPECT_EQ(left.camera, 3);
    EXPECT_LT(left.column, 6);
    EXPECT_EQ(landing(ids, 4, 20, 30, 0).camera, -1);
    // Every seen index lies in its own camera's block.
    for (int c = 0; c < kRigCameras; ++c) {
        for (std::int64_t cell = 0; cell < kCells.count(); ++cell) {
            const std::int64_t id = ids[static_cast<std::size_t>(c * kCells.count() + cell)];
            ASSERT_TRUE(id == kRigCameras * kPerCamera || id / kPerCamera == c) << "camera " << c << " cell " << cell;
        }
    }
}

TEST(Lifting, TheTrainingSizeScalesTheRenderedCalibration) {
    // The cameras rendered at 640x480 and seen at 128x96 rather than 96x64 (stretched, as above): the cell straight
    // ahead still lands mid-image across, and just below the middle on the finer grid.
    const std::vector<Camera> rig = production_rig(640, 480);
    const std::vector<std::int64_t> scaled = lifting_indices(rig, 128, 96, kStride, kCells);
    const std::int64_t id = scaled[static_cast<std::size_t>((0 * kCells.cells_y + 20) * kCells.cells_x + 30)];
    EXPECT_EQ(id % 16, 8);           // column 8 of 16: the centre
    EXPECT_EQ(id / 16, 6);           // v = 48 + 137.2 tan 0.83° = 50.0: row 6 of 12
    EXPECT_THROW(lifting_indices(rig, 100, 64, kStride, kCells), UsageError);
    EXPECT_THROW(lifting_indices(rig, 96, 60, kStride, kCells), UsageError);
}

TEST(Lifting, CellCentresTileTheGrid) {
    const VoxelCells cells{40, 40, 4};
    const Vec3 first = cells.centre(0, 0, 0), last = cells.centre(39, 39, 3);
    EXPECT_DOUBLE_EQ(first.x, -39.0);
    EXPECT_DOUBLE_EQ(first.y, -39.0);
    EXPECT_DOUBLE_EQ(first.z, 0.4);
    EXPECT_DOUBLE_EQ(last.x, 39.0);
    EXPECT_DOUBLE_EQ(last.z, 2.8);
}

}  // namespace
}  // namespace dojo::geometry
