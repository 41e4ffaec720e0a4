// lower_cpu(Plan) (runtime/exec_plan.h): the CPU lowering of a compiled data-parallel Plan runs the Plan's own fusion
// groups, the ones the simulator times, and refuses plans the CPU runtime cannot run.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "dojo/compiler/build_step.h"
#include "dojo/compiler/plan.h"
#include "dojo/runtime/exec_plan.h"
#include "dojo/runtime/trainer.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

using Members = std::vector<std::uint32_t>;

compiler::StepFactory factory(const std::string& spec, compiler::Precision precision) {
    return compiler::step_factory(spec, {compiler::make_policy(precision, 1), autodiff::AdamWConfig{}});
}

Members members_of(const compiler::FusionGroup& group) {
    Members m;
    for (const ir::NodeId id : group.members) {
        m.push_back(id.index);
    }
    return m;
}

// As the trainer sets up a rank of a dp-way plan: the gradients are its sync points (callbacks that do nothing here).
ExecutorOptions rank_options(const compiler::Step& step, const compiler::Plan& plan) {
    ExecutorOptions options = training_executor_options(step, Kernels::Fast);
    if (plan.strategy.dp > 1) {
        for (const ir::NodeId g : plan.step.gradients) {
            if (g.valid()) {
                options.sync_points.push_back(g);
            }
        }
        options.on_computed = [](std::size_t) {};
        options.before_read = [](std::size_t) {};
    }
    return options;
}

TEST(LowerPlan, TheGroupsTheRuntimeFusesAreThePlansGroups) {
    const std::map<std::string, std::int64_t> batch_of = {
        {"mlp", 8}, {"lenet", 8}, {"gpt:layers=1,hidden=64,heads=2,seq=16,vocab=64", 4}, {"resnet18", 2}};
    for (const auto& [spec, batch] : batch_of) {
        for (const compiler::Precision precision :
             {compiler::Precision::Fp32, compiler::Precision::Bf16, compiler::Precision::Cfp8}) {
            for (const int dp : {1, 2}) {
                SCOPED_TRACE(spec + " " + std::string(compiler::to_string(precision)) + " dp=" + std::to_string(dp));
                const compiler::StepFactory build = factory(spec, precision);
                const compiler::Step step = build(batch);
                compiler::Strategy strategy;
                strategy.dp = dp;
                const compiler::Plan plan = compiler::make_plan(build, spec, batch * dp, strategy);
                const ExecPlan lowered = lower_cpu(plan, rank_options(step, plan));
                ASSERT_EQ(lowered.graph, &plan.step.graph);

                std::set<Members> planned, run_fused;
                for (const compiler::FusionGroup& g : plan.fusion_groups) {
                    planned.insert(members_of(g));
                }
                for (const compiler::FusionGroup& g : lowered.groups) {
                    if (g.members.size() > 1) {
                        run_fused.insert(members_of(g));
                    }
                }
                EXPECT_FALSE(planned.empty());
                EXPECT_EQ(run_fused, planned);  // groups of one are lone maps the Plan times as single ops
                for (const compiler::FusionGroup& g : plan.fusion_groups) {
                    const auto& last = g.members.back();
                    EXPECT_EQ(lowered.kernel[last.index], NodeKernel::FusedGroup) << plan.step.graph.describe(last);
                }
            }
        }
    }
}

TEST(LowerPlan, PlansTheCpuRuntimeDoesNotRunAreRefused) {
    const compiler::StepFactory build = factory("mlp", compiler::Precision::Fp32);
    const compiler::Step step = build(8);
    for (const std::string text : {"dp=1,pp=2", "dp=1,tp=2", "dp=1,mb=2", "dp=2,zero=1"}) {
        SCOPED_TRACE(text);
        const compiler::Strategy strategy = compiler::parse_strategy(text);
        const compiler::Plan plan = compiler::make_plan(build, "mlp", 16, strategy);
        try {
            (void)lower_cpu(plan, training_executor_options(step, Kernels::Fast));
            FAIL() << "lowered";
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find(strategy.to_string()), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace dojo::runtime
