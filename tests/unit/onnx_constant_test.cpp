// Shape arithmetic on constants (src/frontend/onnx_constant.h), as exporters emit it: reversing slices, Transpose
// and ScatterND (Swin's shifted windows build their masks and position indices this way).
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>

#include "onnx_constant.h"

namespace dojo::frontend::folding {
namespace {

Constant ints(std::vector<std::int64_t> dims, std::vector<double> values) {
    return Constant{ElementKind::Int, std::move(dims), std::move(values)};
}

TEST(OnnxConstants, ReversingSlicesFollowOnnxsClamping) {
    const Constant x = ints({5}, {0, 1, 2, 3, 4});
    constexpr std::int64_t kFar = std::numeric_limits<std::int64_t>::min() + 1;  // exporters' "to the start"
    EXPECT_EQ(slice(x, {0}, {resolve_slice(5, -1, kFar, -1)}).values, (std::vector<double>{4, 3, 2, 1, 0}));
    EXPECT_EQ(slice(x, {0}, {resolve_slice(5, 3, 0, -2)}).values, (std::vector<double>{3, 1}));
    EXPECT_EQ(slice(x, {0}, {resolve_slice(5, 10, -10, -3)}).values, (std::vector<double>{4, 1}));
    EXPECT_EQ(slice(x, {0}, {resolve_slice(5, 1, 3, -1)}).count(), 0);
    EXPECT_EQ(slice(x, {0}, {resolve_slice(5, -2, 10, 2)}).values, (std::vector<double>{3}));
    EXPECT_THROW(resolve_slice(5, 0, 5, 0), std::invalid_argument);
}

TEST(OnnxConstants, TransposeMovesCoordinates) {
    const Constant x = ints({2, 3}, {0, 1, 2, 3, 4, 5});
    const Constant t = transpose(x, {1, 0});
    EXPECT_EQ(t.dims, (std::vector<std::int64_t>{3, 2}));
    EXPECT_EQ(t.values, (std::vector<double>{0, 3, 1, 4, 2, 5}));
    EXPECT_EQ(transpose(x, {}).values, t.values) << "no perm: the axes reversed";
    const Constant cube = ints({2, 1, 3}, {0, 1, 2, 3, 4, 5});
    EXPECT_EQ(transpose(cube, {2, 0, 1}).values, (std::vector<double>{0, 3, 1, 4, 2, 5}));
    EXPECT_THROW(transpose(x, {0, 0}), std::invalid_argument);
}

TEST(OnnxConstants, ScatterNdReplacesTheAddressedSlices) {
    const Constant data = ints({3, 2}, {0, 0, 0, 0, 0, 0});
    const Constant rows = scatter_nd(data, ints({2, 1}, {2, 0}), ints({2, 2}, {5, 6, 7, 8}));
    EXPECT_EQ(rows.values, (std::vector<double>{7, 8, 0, 0, 5, 6}));
    const Constant cells = scatter_nd(data, ints({2, 2}, {1, 1, -1, 0}), ints({2}, {9, 4}));
    EXPECT_EQ(cells.values, (std::vector<double>{0, 0, 0, 9, 4, 0}));
    EXPECT_THROW(scatter_nd(data, ints({1, 1}, {3}), ints({1, 2}, {1, 1})), std::invalid_argument);
    EXPECT_THROW(scatter_nd(data, ints({1, 1}, {0}), ints({1, 3}, {1, 1, 1})), std::invalid_argument);
}

}  // namespace
}  // namespace dojo::frontend::folding
