// Updates computed in place (runtime/exec_plan.h: ExecutorOptions::in_place_updates): the same values in less memory,
// and never where something still reads the leaf's old value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dojo/compiler/build_step.h"
#include "dojo/ir/builder.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/trainer.h"

namespace dojo::runtime {
namespace {

using ir::NodeId;

// Two steps of `step` from the same start, updates applied after each; the leaves' values after them.
std::vector<std::vector<float>> two_steps(const compiler::Step& step, const ExecutorOptions& options,
                                          std::size_t& arena_bytes) {
    Executor executor(step.training.graph, options);
    const ir::Graph& g = step.training.graph;
    float v = 0.01f;
    for (const NodeId id : g.parameters()) {
        for (float& x : executor.value(id).data) {
            x = (v = -v * 1.0001f);
        }
    }
    std::fill(executor.value(step.input).data.begin(), executor.value(step.input).data.end(), 0.5f);
    ir::Buffer<float>& target = executor.value(step.target);
    for (std::int64_t r = 0; r < target.shape[0]; ++r) {
        target.data[static_cast<std::size_t>(r * target.shape[1] + r % target.shape[1])] = 1.0f;
    }
    executor.value(step.training.learning_rate).data[0] = 0.01f;
    for (int s = 1; s <= 2; ++s) {
        executor.value(step.training.bias_correction1).data[0] = 1.0f - std::pow(0.9f, static_cast<float>(s));
        executor.value(step.training.bias_correction2).data[0] = 1.0f - std::pow(0.999f, static_cast<float>(s));
        executor.run();
        executor.apply(step.training.updates);
    }
    std::vector<std::vector<float>> leaves;
    for (const autodiff::Assignment& a : step.training.updates) {
        leaves.push_back(executor.value(a.target).data.to_vector());
    }
    arena_bytes = executor.bytes();
    return leaves;
}

TEST(UpdateInPlace, TheTrainersUpdatesGiveTheSameBitsInLessMemory) {
    const compiler::Step step =
        compiler::step_factory("mlp", {compiler::make_policy(compiler::Precision::Bf16, 1), autodiff::AdamWConfig{}})(16);
    ExecutorOptions in_place = training_executor_options(step, Kernels::Fast);
    ASSERT_FALSE(in_place.in_place_updates.empty());
    ExecutorOptions copied = in_place;
    copied.in_place_updates.clear();

    const ExecPlan plan = lower_cpu(step.training.graph, in_place);
    std::size_t written_in_place = 0;
    for (const autodiff::Assignment& a : step.training.updates) {
        written_in_place += plan.source[a.value.index] == a.target.index;
    }
    EXPECT_GE(written_in_place, 3u);  // the first layer's weight and its two AdamW moments

    std::size_t in_place_bytes = 0, copied_bytes = 0;
    EXPECT_EQ(two_steps(step, in_place, in_place_bytes), two_steps(step, copied, copied_bytes));
    EXPECT_LT(in_place_bytes + 3 * 784 * 256 * sizeof(float), copied_bytes + 1);
}

// w' = (w + x) * 2 is an update of w; `later_reader` reads w after it.
struct Update {
    ir::Graph g;
    NodeId w, value, later;
    explicit Update(bool later_reader, bool member_reads_after) {
        const ir::TensorType type{ir::DType::F32, ir::Shape({8192})};
        w = g.add_parameter("w", type);
        const NodeId x = g.add_input("x", type);
        const NodeId two = g.add_input("two", type);
        value = ir::mul(g, ir::add(g, w, x), two);
        g.mark_output(value);
        if (member_reads_after) {  // the same group goes on to read w after writing the value
            g.mark_output(ir::add(g, value, w));
        }
        if (later_reader) {
            later = ir::exp(g, ir::reduce_sum(g, w, {0}));
            g.mark_output(later);
        }
    }
    bool in_place() const {
        ExecutorOptions options;
        options.keep = {value};
        options.in_place_updates = {autodiff::Assignment{w, value}};
        const ExecPlan plan = lower_cpu(g, options);
        EXPECT_EQ(plan.kernel[value.index] == NodeKernel::FusedGroup ||
                      plan.kernel[value.index] == NodeKernel::FusedMember,
                  true);
        return plan.source[value.index] == w.index;
    }
};

TEST(UpdateInPlace, NotWhereTheLeafsOldValueIsStillRead) {
    EXPECT_TRUE(Update(false, false).in_place());
    EXPECT_FALSE(Update(true, false).in_place());  // a node after the group reads w
    EXPECT_FALSE(Update(false, true).in_place());  // a later member of the group reads w
}

}  // namespace
}  // namespace dojo::runtime
