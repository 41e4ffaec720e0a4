// The tiled transpose (runtime/transpose.h) against the op table's reference kernel: the same values for every
// permutation of shapes with odd sizes, size-1 axes and tile-sized ones, and the executor choosing it.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/transpose.h"

namespace dojo::runtime {
namespace {

std::vector<float> reference_transpose(const ir::Shape& shape, const std::vector<int>& perm,
                                       const std::vector<float>& values) {
    ir::Graph g;
    const ir::NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const ir::NodeId y = ir::transpose(g, x, perm);
    ir::Bindings<float> bindings;
    bindings[x] = ir::Buffer<float>(shape, values);
    return ir::evaluate(g, bindings)[y.index].data.to_vector();
}

TEST(TiledTranspose, MovesEveryValueWhereTheReferenceKernelDoes) {
    const std::vector<ir::Shape> shapes = {ir::Shape{33, 17},         ir::Shape{2, 3, 5},      ir::Shape{1, 40, 1, 7},
                                           ir::Shape{3, 16, 32, 5},   ir::Shape{4, 1, 19, 18}, ir::Shape{2, 3, 4, 5, 6}};
    for (const ir::Shape& shape : shapes) {
        std::vector<float> values(static_cast<std::size_t>(shape.numel()));
        std::iota(values.begin(), values.end(), 0.0F);
        std::vector<int> perm(static_cast<std::size_t>(shape.rank()));
        std::iota(perm.begin(), perm.end(), 0);
        do {
            std::vector<float> out(values.size(), -1.0F);
            transpose_tiled(shape, perm, values.data(), out.data());
            ASSERT_EQ(out, reference_transpose(shape, perm, values)) << shape.to_string() << " perm " << perm[0];
        } while (std::next_permutation(perm.begin(), perm.end()));
    }
}

TEST(TiledTranspose, IsTheFastKernelOfTransposes) {
    ir::Graph g;
    const ir::NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{64, 48}});
    const ir::NodeId y = ir::transpose(g, x, {1, 0});
    EXPECT_EQ(lower_cpu(g, ExecutorOptions{Kernels::Fast, true, {y}}).kernel[y.index], NodeKernel::TiledTranspose);
    EXPECT_EQ(lower_cpu(g, ExecutorOptions{Kernels::Reference, true, {y}}).kernel[y.index], NodeKernel::Reference);
}

// What the simulator is told of a transpose: whether runs along the innermost axis stay contiguous (a copy) or the
// innermost axis moves (tiles), after size-1 axes are dropped and adjacent axes merged.
TEST(TiledTranspose, SaysWhetherTheInnermostAxisMoves) {
    EXPECT_EQ(transpose_way(ir::Shape{64, 784}, std::vector<int>{1, 0}), TransposeWay::Tiles);
    EXPECT_EQ(transpose_way(ir::Shape{16, 128, 4, 64}, std::vector<int>{0, 2, 1, 3}), TransposeWay::Runs);
    EXPECT_EQ(transpose_way(ir::Shape{16, 4, 128, 64}, std::vector<int>{0, 1, 3, 2}), TransposeWay::Tiles);
    EXPECT_EQ(transpose_way(ir::Shape{1, 40}, std::vector<int>{1, 0}), TransposeWay::Runs);  // nothing moves
    EXPECT_EQ(transpose_way(ir::Shape{6, 7, 8}, std::vector<int>{2, 0, 1}), TransposeWay::Tiles);
    EXPECT_EQ(transpose_way(ir::Shape{6, 7, 8}, std::vector<int>{1, 2, 0}), TransposeWay::Tiles);
    EXPECT_FALSE(transpose_runs_on_threads(64 * 784));
    EXPECT_TRUE(transpose_runs_on_threads(512 * 768));
}

}  // namespace
}  // namespace dojo::runtime
