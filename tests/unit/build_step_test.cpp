// The one step builder (compiler/build_step.h): the step `dojo train` runs and the step the compiler lays out for
// `dojo sim` / `dojo plan` / `dojo compare` are one graph, compared by canonical_hash.
#include <gtest/gtest.h>

#include "dojo/compiler/build_step.h"
#include "dojo/compiler/plan.h"
#include "dojo/frontend/catalog.h"
#include "dojo/runtime/trainer.h"

namespace dojo::compiler {
namespace {

// A dataset with the shape and labels a catalog model declares, and no samples: the trainer's step needs no more.
data::Dataset declared_data(const std::string& spec) {
    const frontend::SampleSpec sample = frontend::catalog_sample(spec);
    data::Dataset d;
    d.sample_shape = sample.sample_shape;
    d.classes = sample.classes;
    d.tokens = sample.token_ids;
    d.labels_per_sample = sample.token_ids ? static_cast<std::size_t>(sample.sample_shape[0]) : 1;
    return d;
}

std::uint64_t trainer_hash(const std::string& spec, Precision precision, const autodiff::OptimizerConfig& optimizer,
                           std::int64_t batch, std::uint64_t seed = 7) {
    runtime::TrainOptions o;
    o.model = spec;
    o.precision = precision;
    o.optimizer = optimizer;
    o.seed = seed;
    return canonical_hash(runtime::training_step(o, declared_data(spec), batch).training.graph);
}

std::uint64_t plan_hash(const std::string& spec, Precision precision, const autodiff::OptimizerConfig& optimizer,
                        std::int64_t batch) {
    const Plan plan = make_plan(step_factory(spec, StepOptions{make_policy(precision, 7), optimizer}), spec, batch,
                                Strategy{});
    return canonical_hash(plan.step.graph);
}

const std::vector<std::string> kModels = {"mlp", "lenet", "resnet18", "vit-b16:layers=1,hidden=64,heads=2,mlp=128",
                                          "gpt:layers=2,hidden=32,heads=2,seq=16,vocab=64",
                                          "bert:layers=1,hidden=32,heads=2,seq=16,vocab=64"};

TEST(SameGraph, TrainAndSimulateBuildOneStepInFp32) {
    for (const std::string& spec : kModels) {
        for (const autodiff::OptimizerConfig& optimizer :
             {autodiff::OptimizerConfig{autodiff::SgdConfig{}}, autodiff::OptimizerConfig{autodiff::AdamWConfig{}}}) {
            const std::uint64_t trained = trainer_hash(spec, Precision::Fp32, optimizer, 4);
            EXPECT_EQ(trained, plan_hash(spec, Precision::Fp32, optimizer, 4)) << spec;
            // What `dojo sim --precision fp32` compiles (make_plan by name) is this step.
            EXPECT_EQ(trained, canonical_hash(make_plan(spec, 4, Strategy{}, optimizer).step.graph)) << spec;
        }
    }
}

TEST(SameGraph, RoundedStepsAreOneGraphAndDifferFromFp32) {
    for (const std::string& spec : {std::string("lenet"), std::string("gpt:layers=2,hidden=32,heads=2,seq=16,vocab=64")}) {
        const std::uint64_t fp32 = trainer_hash(spec, Precision::Fp32, autodiff::SgdConfig{}, 4);
        for (const Precision p : {Precision::Bf16, Precision::Cfp8}) {
            const std::uint64_t trained = trainer_hash(spec, p, autodiff::SgdConfig{}, 4);
            EXPECT_EQ(trained, plan_hash(spec, p, autodiff::SgdConfig{}, 4)) << spec << " " << to_string(p);
            EXPECT_NE(trained, fp32) << spec << ": the policy's roundings are part of the step";
            // What `dojo sim --precision bf16/cfp8` times (make_plan by name) is the step `dojo train` runs with
            // the same precision (and its default seed, 0), roundings and all.
            const Plan simulated = make_plan(spec, 4, Strategy{}, autodiff::SgdConfig{}, {}, p);
            EXPECT_EQ(canonical_hash(simulated.step.graph), trainer_hash(spec, p, autodiff::SgdConfig{}, 4, 0))
                << spec << " " << to_string(p);
            EXPECT_EQ(simulated.precision, p);
        }
    }
}

TEST(SameGraph, TheHashSeesBatchOptimizerSeedAndTargets) {
    const std::string gpt = "gpt:layers=2,hidden=32,heads=2,seq=16,vocab=64";
    EXPECT_NE(plan_hash(gpt, Precision::Fp32, autodiff::SgdConfig{}, 4),
              plan_hash(gpt, Precision::Fp32, autodiff::SgdConfig{}, 8));
    EXPECT_NE(plan_hash(gpt, Precision::Fp32, autodiff::SgdConfig{}, 4),
              plan_hash(gpt, Precision::Fp32, autodiff::AdamWConfig{}, 4));
    const auto seeded = [&](std::uint64_t seed) {
        return canonical_hash(build_step(frontend::load_model_as_declared("lenet", 4),
                                         StepOptions{make_policy(Precision::Cfp8, seed), autodiff::SgdConfig{}})
                                  .training.graph);
    };
    EXPECT_EQ(seeded(1), seeded(1));
    EXPECT_NE(seeded(1), seeded(2)) << "stochastic rounding's key is an attribute of the step";
}

TEST(SameGraph, LanguageModelsTrainAgainstTokenIdsEverywhere) {
    const std::string gpt = "gpt:layers=2,hidden=32,heads=2,seq=16,vocab=64";
    const Step step = step_factory(gpt, StepOptions{})(4);
    EXPECT_EQ(step.target_kind, TargetKind::ClassIds);
    EXPECT_EQ(step.training.graph.type(step.target).dtype, ir::DType::I64);
    EXPECT_EQ(step.training.graph.type(step.target).shape, (ir::Shape{4 * 16}));
    const Step lenet = step_factory("lenet", StepOptions{})(4);
    EXPECT_EQ(lenet.target_kind, TargetKind::ClassProbabilities);
    EXPECT_EQ(lenet.training.graph.type(lenet.target).shape, (ir::Shape{4, 10}));
}

}  // namespace
}  // namespace dojo::compiler
