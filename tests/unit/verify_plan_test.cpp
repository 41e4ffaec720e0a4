// The compile pipeline's passes keep the Plan's invariants (compiler/verify_plan.h) for every kind of strategy, and
// the verifier catches a Plan a pass has broken.
#include <gtest/gtest.h>

#include "dojo/compiler/plan.h"
#include "dojo/compiler/verify_plan.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

CompileOptions verified() {
    CompileOptions o;
    o.verify = true;
    return o;
}

Plan verified_plan(const std::string& model, std::int64_t batch, const std::string& strategy,
                   std::vector<std::string>* passes = nullptr) {
    CompileOptions o = verified();
    if (passes != nullptr) {
        o.after_pass = [passes](std::string_view name, const Plan&) { passes->emplace_back(name); };
    }
    return make_plan(step_factory(model, StepOptions{make_policy(Precision::Fp32, 0), autodiff::AdamWConfig{}}), model,
                     batch, parse_strategy(strategy), {}, o);
}

TEST(VerifyPlan, EveryPassKeepsTheInvariantsForEveryKindOfStrategy) {
    const std::string gpt = "gpt:layers=4,hidden=64,heads=4,seq=32,vocab=128";
    for (const auto& [model, batch, strategy] : std::vector<std::tuple<std::string, int, std::string>>{
             {"mlp", 64, "dp=2"},
             {"lenet", 64, "pp=2,mb=4"},
             {"resnet18", 8, "dp=2,pp=2,mb=2"},
             {gpt, 16, "tp=4"},
             {gpt, 16, "tp=2,pp=2,mb=4,sp=1"},
             {gpt, 16, "dp=2,pp=2,mb=4,vp=2"},
             {gpt, 16, "dp=2,tp=2,pp=2,mb=2,zero=1,recompute=1"},
             {"unet:channels=32,size=16,levels=2,blocks=1,heads=2", 4, "pp=4,mb=2"}}) {
        std::vector<std::string> passes;
        EXPECT_NO_THROW(verified_plan(model, batch, strategy, &passes)) << model << " " << strategy;
        ASSERT_EQ(passes.size(), compile_passes().size());
        for (std::size_t k = 0; k < passes.size(); ++k) {
            EXPECT_EQ(passes[k], compile_passes()[k].name);
        }
    }
}

TEST(VerifyPlan, ABrokenPlanIsNamedByThePassThatBrokeIt) {
    const Plan good = verified_plan("lenet", 64, "pp=2,mb=2");
    Plan dropped = good;
    dropped.transfers.pop_back();
    try {
        verify_plan(dropped, "transfers");
        FAIL() << "a missing transfer passed";
    } catch (const InternalError& e) {
        EXPECT_NE(std::string(e.what()).find("after the 'transfers' pass"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("with no transfer"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(verify_plan(dropped, "stages")) << "later passes' outputs are not checked yet";
    Plan backwards = good;
    for (std::size_t i = 0; i <= backwards.last_forward.index; ++i) {  // the forward pass's stages swapped
        backwards.stage[i] = backwards.stage[i] < 0 ? -1 : 1 - backwards.stage[i];
    }
    EXPECT_THROW(verify_plan(backwards, "stages"), InternalError);
    Plan twice = good;
    twice.gradient_buckets[0].push_back(twice.gradient_buckets[0].front());
    EXPECT_THROW(verify_plan(twice, "buckets"), InternalError);
    Plan unknown = good;
    EXPECT_THROW(verify_plan(unknown, "placement"), InternalError);
}

}  // namespace
}  // namespace dojo::compiler
