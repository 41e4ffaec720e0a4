// Golden text dumps of the CPU lowering (runtime/exec_plan.h) of training steps as `dojo train` lowers them: every
// node's kernel, layout, fused group and arena offset. A change to the lowering shows up here as a diff to review;
// after reviewing it, regenerate the files with
//     DOJO_UPDATE_GOLDEN=1 build/tests/golden_tests --gtest_filter='GoldenExecPlan*'
// and commit them with the change.
//
// Which oneDNN kernels read BF16 and which layouts they block in depend on the CPU's instruction set; these dumps are
// of the AVX2 choices (ONEDNN_MAX_CPU_ISA=AVX2, set before oneDNN first looks, unless the environment sets it), which
// every x86-64 machine this project builds on has.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "dojo/compiler/build_step.h"
#include "dojo/compiler/plan.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/executor.h"
#include "dojo/runtime/trainer.h"
#include "golden.h"

namespace dojo::runtime {
namespace {

const bool kIsaCapped = setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 0) == 0;

void expect_golden(const std::string& name, const std::string& actual) {
    ASSERT_TRUE(kIsaCapped);
    test::expect_golden(DOJO_GOLDEN_DIR, name, actual, "the CPU lowering");
}

compiler::Step step_of(const std::string& spec, compiler::Precision precision, std::int64_t batch) {
    return compiler::step_factory(spec, {compiler::make_policy(precision, 1), autodiff::AdamWConfig{}})(batch);
}

// The lowering of the compiled one-process Plan, as `dojo train` lowers it.
std::string lowered_plan_dump(const std::string& spec, compiler::Precision precision, std::int64_t batch) {
    const compiler::StepFactory build =
        compiler::step_factory(spec, {compiler::make_policy(precision, 1), autodiff::AdamWConfig{}});
    const compiler::Step step = build(batch);
    const compiler::Plan plan = compiler::make_plan(build, spec, batch, compiler::Strategy{});
    return dump_exec_plan(lower_cpu(plan, training_executor_options(step, Kernels::Fast)));
}

TEST(GoldenExecPlan, LenetInCfloat8AsDojoTrainLowersIt) {
    expect_golden("lenet_cfp8_exec_plan.txt", lowered_plan_dump("lenet", compiler::Precision::Cfp8, 32));
}

TEST(GoldenExecPlan, MlpInBf16AsDojoTrainLowersIt) {
    expect_golden("mlp_bf16_exec_plan.txt", lowered_plan_dump("mlp", compiler::Precision::Bf16, 64));
}

// The executor runs what the plan says: every kernel the dump names is the one it reports running.
TEST(ExecPlan, TheExecutorReportsTheKernelsItsPlanNames) {
    const compiler::Step step = step_of("lenet", compiler::Precision::Cfp8, 32);
    ExecutorOptions options = training_executor_options(step, Kernels::Fast, /*profile=*/true);
    Executor executor(step.training.graph, options);
    executor.run();
    std::map<std::string, std::size_t> planned;
    for (std::uint32_t i = 0; i < step.training.graph.size(); ++i) {
        const NodeKernel k = executor.plan().kernel[i];
        if (k != NodeKernel::None) {
            ++planned[k == NodeKernel::FusedMember || k == NodeKernel::FusedGroup ? "fused" : std::string(to_string(k))];
        }
    }
    std::map<std::string, std::size_t> profiled;
    for (const OpProfile& p : executor.profile()) {
        profiled[p.kernel] += p.nodes;
    }
    EXPECT_EQ(planned, profiled);
    EXPECT_GT(planned["onednn"] + planned["onednn-bf16"], 0u);
    EXPECT_GT(planned["fused"], 0u);
    EXPECT_GT(planned["alias"], 0u);
}

// Reference kernels decide nothing fast: every computed node runs its reference kernel and nothing is fused.
TEST(ExecPlan, ReferenceKernelsLowerEveryComputedNodeToItsReferenceKernel) {
    const compiler::Step step = step_of("lenet", compiler::Precision::Cfp8, 8);
    const ExecPlan plan = lower_cpu(step.training.graph, training_executor_options(step, Kernels::Reference));
    std::size_t computed = 0;
    for (std::uint32_t i = 0; i < plan.kernel.size(); ++i) {
        if (plan.kernel[i] != NodeKernel::None) {
            EXPECT_EQ(plan.kernel[i], NodeKernel::Reference) << step.training.graph.describe(ir::NodeId{i});
            ++computed;
        }
    }
    EXPECT_GT(computed, 50u);
    EXPECT_TRUE(plan.groups.empty());
    EXPECT_EQ(plan.onednn, nullptr);
}

}  // namespace
}  // namespace dojo::runtime
