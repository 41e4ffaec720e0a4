// The executor against the reference interpreter, the catalog, and the training loop's determinism and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "dojo/autodiff/loss.h"
#include "dojo/autodiff/grad.h"
#include "dojo/autodiff/training.h"
#include "dojo/compiler/fuse_elementwise.h"
#include "dojo/compiler/precision_policy.h"
#include "dojo/frontend/layers.h"
#include "dojo/frontend/catalog.h"
#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/runtime/executor.h"
#include "max_pool_cases.h"
#include "dojo/numerics/convert.h"
#include "dojo/runtime/max_pool.h"
#include "dojo/runtime/onednn_kernels.h"
#include "dojo/runtime/trainer.h"
#include "dojo/util/error.h"

namespace dojo::runtime {
namespace {

using ir::NodeId;

TEST(Catalog, MlpSpecsBuildTheRequestedLayers) {
    const frontend::Model m = frontend::build_catalog_model("mlp", 8, ir::Shape{1, 28, 28}, 10);
    EXPECT_EQ(m.graph.type(m.logits).shape, (ir::Shape{8, 10}));
    EXPECT_EQ(m.graph.parameters().size(), 4u);  // 784x256, 256, 256x10, 10
    EXPECT_EQ(m.graph.type(m.graph.parameters()[0]).shape, (ir::Shape{784, 256}));
    const frontend::Model deep = frontend::build_catalog_model("mlp:hidden=32x16", 2, ir::Shape{5}, 3);
    EXPECT_EQ(deep.graph.parameters().size(), 6u);
    EXPECT_EQ(deep.init.size(), 6u);
    EXPECT_DOUBLE_EQ(deep.init.at(deep.graph.parameters()[0]).uniform_bound, 1 / std::sqrt(5.0));
    EXPECT_THROW(frontend::build_catalog_model("resnet9", 1, ir::Shape{4}, 2), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("mlp:hidden=0", 1, ir::Shape{4}, 2), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("mlp:depth=3", 1, ir::Shape{4}, 2), UsageError);
}

// Matrix-unit FLOPs of one forward pass, from the op table's cost rules.
double matrix_flops(const ir::Graph& g) {
    double flops = 0;
    for (std::uint32_t i = 0; i < g.size(); ++i) {
        const ir::OpCost cost = ir::cost_of(g, NodeId{i});
        if (cost.unit == ir::ComputeUnit::Matrix) {
            flops += cost.flops;
        }
    }
    return flops;
}

std::size_t parameter_count(const ir::Graph& g) {
    std::size_t n = 0;
    for (const NodeId p : g.parameters()) {
        n += static_cast<std::size_t>(g.type(p).shape.numel());
    }
    return n;
}

// torchvision's published figures (pytorch.org/vision/stable/models.html): parameters, and "GFLOPS" that count
// multiply-accumulates (so 2 FLOP each) for one 224x224 image.
TEST(Catalog, ResNetsAndVitMatchTorchvisionsParametersAndOperations) {
    struct Case {
        const char* spec;
        std::size_t parameters;
        double gmacs;
    };
    for (const Case& c : {Case{"resnet18", 11689512, 1.81}, Case{"resnet50", 25557032, 4.09},
                          Case{"vit-b16", 86567656, 17.56}}) {
        const frontend::Model m = frontend::build_catalog_model(c.spec, 1, ir::Shape{3, 224, 224}, 1000);
        EXPECT_EQ(parameter_count(m.graph), c.parameters) << c.spec;
        EXPECT_NEAR(matrix_flops(m.graph) / 2e9, c.gmacs, 0.01 * c.gmacs) << c.spec;
        EXPECT_EQ(m.graph.type(m.logits).shape, (ir::Shape{1, 1000})) << c.spec;
    }
    const frontend::Model r = frontend::build_catalog_model("resnet50", 2, ir::Shape{3, 64, 64}, 10);
    EXPECT_EQ(r.graph.states().size(), 2u * 53);  // running mean and variance of 53 BatchNorms
    EXPECT_EQ(r.state_updates.size(), 2u * 53);
    EXPECT_THROW(frontend::build_catalog_model("resnet18", 1, ir::Shape{3, 4, 4}, 10), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("vit-b16:heads=5", 1, ir::Shape{3, 224, 224}, 10), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("vit-b16:patch=15", 1, ir::Shape{3, 224, 224}, 10), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("vit-b16:depth=3", 1, ir::Shape{3, 224, 224}, 10), UsageError);
    // The occupancy network: a trunk it does not build, a size off its stride, a lifting table beyond its bounds,
    // and data that are not camera frames.
    EXPECT_THROW(frontend::build_catalog_model("occupancy:resnet=7", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("occupancy:width=100", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("occupancy:voxels=512x512x64", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("occupancy:voxels=40x40", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("occupancy", 1, ir::Shape{1, 28, 28}, 10), UsageError);
    EXPECT_EQ(frontend::catalog_sample("occupancy:cameras=3,width=96,height=64").sample_shape,
              (ir::Shape{9, 64, 96}));
}

// GPT-3 175B's shape (Brown et al. 2020, table 2.1) and bert-large: parameter counts by their formulas (tied
// embeddings; GPT-3 reports 175.0B), and the token-id input and per-token logits of a language model.
TEST(Catalog, LanguageModelsHaveTheirPublishedShapes) {
    const frontend::Model gpt3 =
        frontend::build_catalog_model("gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200", 2, ir::Shape{}, 1);
    EXPECT_EQ(parameter_count(gpt3.graph), 174615846912u);
    EXPECT_TRUE(gpt3.token_labels);
    EXPECT_EQ(gpt3.graph.type(gpt3.input), (ir::TensorType{ir::DType::I64, ir::Shape{2, 2048}}));
    EXPECT_EQ(gpt3.graph.type(gpt3.logits).shape, (ir::Shape{2 * 2048, 51200}));
    // Forward matrix work per token is about 2 x parameters (Kaplan et al.'s 2N) plus attention's 2 x layers x seq x
    // hidden (causal attention is computed in full here, as a dense mask).
    const double per_token = matrix_flops(gpt3.graph) / (2.0 * 2048);
    EXPECT_NEAR(per_token, 2.0 * 174615846912.0 + 4.0 * 96 * 2048 * 12288, 0.01 * per_token);
    const frontend::Model bert = frontend::build_catalog_model("bert-large", 1, ir::Shape{}, 1);
    EXPECT_EQ(parameter_count(bert.graph), 335174458u);  // Hugging Face's BertForMaskedLM (bert-large-uncased)
    EXPECT_EQ(frontend::catalog_sample("bert-large").sample_shape, (ir::Shape{512}));
    EXPECT_EQ(frontend::catalog_sample("gpt").classes, 50257);
    EXPECT_TRUE(frontend::catalog_sample("gpt").token_ids && frontend::catalog_sample("gpt").causal);
    EXPECT_TRUE(frontend::catalog_sample("bert-large").token_ids);
    EXPECT_FALSE(frontend::catalog_sample("bert-large").causal);  // masked LM: sees both sides
    EXPECT_FALSE(frontend::catalog_sample("lenet").token_ids);
    EXPECT_THROW(frontend::build_catalog_model("gpt:heads=7", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("bert-large:layers=2", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::catalog_sample("gpt4"), UsageError);
}

// The UNet maps a noisy latent to a prediction of its noise, of the latent's own shape, and has Stable Diffusion's
// layout: for channels=64, levels=3, blocks=1, 50 convolutions (conv in and out, 2 per ResBlock plus a 1x1 skip
// wherever the width changes, which is every upward block, 2 projections per transformer, 2 resamplings each way)
// and 7 attentions (one per block on every level but the deepest, down and up, and one in the middle).
TEST(Catalog, UnetPredictsNoiseOfTheLatentsShapeWithStableDiffusionsLayout) {
    const frontend::Model m = frontend::build_catalog_model("unet:channels=64,size=16,levels=3,blocks=1,heads=2", 2,
                                                            ir::Shape{}, 1);
    EXPECT_TRUE(m.dense_target);
    EXPECT_EQ(m.graph.type(m.input), (ir::TensorType{ir::DType::F32, ir::Shape{2, 4, 16, 16}}));
    EXPECT_EQ(m.graph.type(m.logits).shape, (ir::Shape{2, 4, 16, 16}));
    int convolutions = 0, attentions = 0;
    for (std::uint32_t i = 0; i < m.graph.size(); ++i) {
        convolutions += m.graph.node(NodeId{i}).op == ir::OpKind::Conv2d ? 1 : 0;
        attentions += m.graph.node(NodeId{i}).op == ir::OpKind::LogSoftmax ? 1 : 0;
    }
    EXPECT_EQ(convolutions, 50);
    EXPECT_EQ(attentions, 7);
    const frontend::SampleSpec sample = frontend::catalog_sample("unet:latent=8,size=32");
    EXPECT_EQ(sample.sample_shape, (ir::Shape{8, 32, 32}));
    EXPECT_EQ(sample.classes, 8 * 32 * 32);
    EXPECT_THROW(frontend::build_catalog_model("unet:channels=48", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("unet:size=10,levels=3", 1, ir::Shape{}, 1), UsageError);
    EXPECT_THROW(frontend::build_catalog_model("unet:width=3", 1, ir::Shape{}, 1), UsageError);
}

// The causal mask: a token changes the logits at its own position and after it, never before; the sparse
// cross-entropy equals the dense one on one-hot targets.
TEST(Catalog, GptIsCausalAndItsLossTakesTokenIds) {
    frontend::Model m = frontend::build_catalog_model("gpt:layers=2,hidden=8,heads=2,seq=6,vocab=7", 2, ir::Shape{}, 1);
    const autodiff::CrossEntropy sparse = autodiff::add_cross_entropy(m.graph, m.logits, true);
    const NodeId dense_target = m.graph.add_input("dense", {ir::DType::F32, ir::Shape{12, 7}});
    const NodeId dense = autodiff::softmax_cross_entropy(m.graph, m.logits, dense_target);
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> weight(-0.5, 0.5);
    ir::Bindings<double> b;
    for (const NodeId p : m.graph.parameters()) {
        ir::Buffer<double> values(m.graph.type(p).shape);
        for (double& v : values.data) {
            v = weight(rng);
        }
        b[p] = std::move(values);
    }
    b[m.input] = ir::Buffer<double>(ir::Shape{2, 6}, {1, 2, 3, 4, 5, 6, 0, 0, 1, 1, 2, 2});
    b[sparse.target] = ir::Buffer<double>(ir::Shape{12}, {2, 3, 4, 5, 6, 0, 0, 1, 1, 2, 2, 3});
    b[dense_target] = ir::Buffer<double>(ir::Shape{12, 7});
    for (std::size_t i = 0; i < 12; ++i) {
        b[dense_target].data[i * 7 + static_cast<std::size_t>(b[sparse.target].data[i])] = 1.0;
    }
    const auto before = ir::evaluate(m.graph, b);
    EXPECT_DOUBLE_EQ(before[sparse.loss.index].data[0], before[dense.index].data[0]);
    b[m.input].data[3] = 0;  // sample 0, position 3
    const auto after = ir::evaluate(m.graph, b);
    const auto& l0 = before[m.logits.index].data;
    const auto& l1 = after[m.logits.index].data;
    for (std::size_t position = 0; position < 12; ++position) {
        bool same = true;
        for (std::size_t c = 0; c < 7; ++c) {
            same = same && l0[position * 7 + c] == l1[position * 7 + c];
        }
        EXPECT_EQ(same, position < 3 || position >= 6) << "position " << position;
    }
}

// A small catalog ViT and ResNet train: the loss falls over a few steps on separable data, and states (BatchNorm
// running variances) start at 1.
TEST(Catalog, SmallVitAndResnetLearn) {
    for (const char* spec : {"vit-b16:layers=1,hidden=16,heads=2,mlp=32,patch=4", "resnet18"}) {
        data::Dataset d;
        d.sample_shape = ir::Shape{1, 8, 8};
        d.classes = 2;
        std::mt19937 rng(4);
        std::normal_distribution<float> noise(0.0f, 0.3f);
        for (std::size_t i = 0; i < 64; ++i) {
            const std::uint8_t label = static_cast<std::uint8_t>(i % 2);
            for (int k = 0; k < 64; ++k) {
                d.samples.push_back((label != 0 ? (k < 32 ? 1.0f : -1.0f) : (k < 32 ? -1.0f : 1.0f)) + noise(rng));
            }
            d.labels.push_back(label);
        }
        TrainOptions o;
        o.model = spec;
        o.batch = 16;
        o.epochs = 6;
        o.eval_batch = 16;
        o.learning_rate = 0.02;
        const TrainResult r = train_classifier(o, d, d, nullptr);
        EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss) << spec;
        EXPECT_GE(r.epochs.back().test_accuracy, 0.9) << spec;
    }
}

TEST(Executor, MatchesTheReferenceInterpreterStepAfterStep) {
    frontend::Model m = frontend::build_catalog_model("mlp:hidden=7", 4, ir::Shape{6}, 3);
    const NodeId target = m.graph.add_input("target", {ir::DType::F32, ir::Shape{4, 3}});
    const NodeId loss = autodiff::softmax_cross_entropy(m.graph, m.logits, target);
    const autodiff::TrainingGraph t = autodiff::build_training_graph(m.graph, loss, autodiff::AdamWConfig{});
    Executor executor(t.graph, ExecutorOptions{Kernels::Reference, false, {}});
    ir::Bindings<float> bindings;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const std::vector<NodeId>* leaves : {&t.graph.inputs(), &t.graph.parameters(), &t.graph.states()}) {
        for (const NodeId id : *leaves) {
            ir::Buffer<float> b(t.graph.type(id).shape);
            for (float& v : b.data) {
                v = leaves == &t.graph.states() ? 0.0f : normal(rng);
            }
            if (id == t.bias_correction1 || id == t.bias_correction2 || id == t.learning_rate) {
                b.data[0] = 0.5f;
            }
            bindings[id] = b;
            executor.value(id) = b;
        }
    }
    for (int step = 0; step < 3; ++step) {
        executor.run();
        const auto reference = ir::evaluate(t.graph, bindings);
        for (std::uint32_t i = 0; i < t.graph.size(); ++i) {
            ASSERT_EQ(executor.value(NodeId{i}).data, reference[i].data) << t.graph.describe(NodeId{i});
        }
        executor.apply(t.updates);
        for (const autodiff::Assignment& a : t.updates) {
            bindings[a.target] = reference[a.value.index];
        }
    }
}

// x [rows, 8] -> RoundTo(cfp8_152, stochastic) -> output: a batch tensor whose rounding sees the whole tensor.
struct RoundingGraph {
    ir::Graph graph;
    NodeId x, step, rounded;
};
RoundingGraph rounding_graph(std::int64_t rows, bool transposed) {
    RoundingGraph r;
    r.x = r.graph.add_input("x", {ir::DType::F32, ir::Shape{rows, 8}});
    r.step = r.graph.add_input("step", {ir::DType::F32, ir::Shape{}});
    const NodeId rounded_input = transposed ? ir::transpose(r.graph, r.x, {1, 0}) : r.x;
    r.rounded = ir::round_to(r.graph, rounded_input, r.step,
                             ir::RoundAttrs{numerics::FormatKind::Cfp8_152, numerics::Rounding::Stochastic, 0.0, 7, 3});
    r.graph.mark_output(r.rounded);
    return r;
}

// Data parallel: two shards of a batch, each with the whole batch's max-abs and its global indices, round to the
// very bits the whole batch rounds to; each shard on its own (no batch inputs named) rounds differently.
TEST(Executor, BatchShardsRoundAsTheWholeBatch) {
    std::vector<float> whole(4 * 8);
    for (std::size_t i = 0; i < whole.size(); ++i) {  // the first shard's values are 64x the second's
        whole[i] = (i < 16 ? 64.0f : 1.0f) * (0.3f + 0.01f * static_cast<float>(i));
    }
    RoundingGraph one = rounding_graph(4, false);
    Executor whole_run(one.graph, ExecutorOptions{Kernels::Fast, true, {}});
    whole_run.value(one.x).data = whole;
    whole_run.value(one.step).data = {5.0f};
    whole_run.run();
    const float whole_max_abs = *std::max_element(whole.begin(), whole.end());

    std::vector<float> sharded, on_their_own;
    for (const bool agree : {true, false}) {
        for (std::uint64_t shard = 0; shard < 2; ++shard) {
            RoundingGraph half = rounding_graph(2, false);
            ExecutorOptions options{Kernels::Fast, true, {}};
            if (agree) {
                options.batch_shard_inputs = {half.x};
                options.shard_index = shard;
                options.agree_max_abs = [&](float local) {
                    EXPECT_LE(local, whole_max_abs);
                    return whole_max_abs;  // what the ranks' maximum would be
                };
            }
            Executor run(half.graph, options);
            std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(shard * 16), 16, run.value(half.x).data.begin());
            run.value(half.step).data = {5.0f};
            run.run();
            std::vector<float>& out = agree ? sharded : on_their_own;
            out.insert(out.end(), run.value(half.rounded).data.begin(), run.value(half.rounded).data.end());
        }
    }
    EXPECT_EQ(sharded, whole_run.value(one.rounded).data);
    EXPECT_NE(on_their_own, whole_run.value(one.rounded).data);
}

TEST(Executor, BatchShardsMustLeadTheRoundedTensors) {
    RoundingGraph half = rounding_graph(2, true);  // rounds [8, 2]: the shards are not contiguous pieces
    ExecutorOptions options{Kernels::Fast, true, {}};
    options.batch_shard_inputs = {half.x};
    options.agree_max_abs = [](float local) { return local; };
    try {
        Executor run(half.graph, options);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--rounding-scope rank"), std::string::npos) << e.what();
    }
}

TEST(Trainer, RoundingScopesParse) {
    EXPECT_EQ(parse_rounding_scope("global"), RoundingScope::Global);
    EXPECT_EQ(parse_rounding_scope("rank"), RoundingScope::Rank);
    EXPECT_EQ(to_string(RoundingScope::Rank), "rank");
    EXPECT_THROW(parse_rounding_scope("ranks"), UsageError);
}

// Liveness-based reuse: the same loss and updates as every node stored apart, step after step, in less memory.
TEST(Executor, BufferReuseKeepsResultsAndSavesMemory) {
    frontend::Model m = frontend::build_catalog_model("lenet", 8, ir::Shape{1, 28, 28}, 10);
    const NodeId target = m.graph.add_input("target", {ir::DType::F32, ir::Shape{8, 10}});
    const NodeId loss = autodiff::softmax_cross_entropy(m.graph, m.logits, target);
    const autodiff::TrainingGraph t = autodiff::build_training_graph(m.graph, loss, autodiff::SgdConfig{});
    ExecutorOptions reuse{Kernels::Reference, true, {}};
    for (const autodiff::Assignment& a : t.updates) {
        reuse.keep.push_back(a.value);
    }
    Executor pooled(t.graph, reuse);
    Executor plain(t.graph, ExecutorOptions{Kernels::Reference, false, {}});
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    for (Executor* e : {&pooled, &plain}) {
        rng.seed(3);
        for (const NodeId id : t.graph.parameters()) {
            for (float& v : e->value(id).data) {
                v = normal(rng);
            }
        }
    }
    for (int step = 0; step < 3; ++step) {
        for (Executor* e : {&pooled, &plain}) {
            rng.seed(10 + static_cast<unsigned>(step));
            for (float& v : e->value(m.input).data) {
                v = normal(rng);
            }
            for (std::size_t i = 0; i < 8; ++i) {
                e->value(target).data[i * 10 + i % 10] = 1.0f;
            }
            e->value(t.learning_rate).data[0] = 0.1f;
            e->run();
        }
        ASSERT_EQ(pooled.value(loss).data, plain.value(loss).data) << "step " << step;
        for (const autodiff::Assignment& a : t.updates) {
            ASSERT_EQ(pooled.value(a.value).data, plain.value(a.value).data);
        }
        pooled.apply(t.updates);
        plain.apply(t.updates);
    }
    EXPECT_LT(pooled.bytes() * 10, plain.bytes() * 6) << pooled.bytes() << " vs " << plain.bytes();
    // One arena, within 10% of the most bytes live at once (no placement can do with less than that).
    EXPECT_GE(pooled.bytes(), pooled.peak_live_bytes());
    EXPECT_LE(pooled.bytes() * 10, pooled.peak_live_bytes() * 11) << pooled.bytes() << " vs " << pooled.peak_live_bytes();
    // A leaf is bound to its place in the arena: a tensor of another size is refused, not written past it.
    EXPECT_THROW(pooled.value(m.input).data = std::vector<float>(3, 0.0f), Error);
}

void expect_same_bits(std::span<const float> a, std::span<const float> b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what;
}

// A BatchNorm-like chain with broadcasting, a node read from outside the chain half-way, and a NaN: fused or not,
// the same bits; fused, fewer bytes; a node nothing needs is not computed at all.
TEST(Executor, FusedElementwiseGivesTheSameBitsAndSkipsDeadNodes) {
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{4, 8, 12, 12}});
    const NodeId gamma = g.add_parameter("gamma", {ir::DType::F32, ir::Shape{1, 8, 1, 1}});
    const NodeId mean = ir::reduce_mean(g, x, {0, 2, 3}, true);
    const NodeId centred = ir::sub(g, x, mean);
    const NodeId var = ir::reduce_mean(g, ir::mul(g, centred, centred), {0, 2, 3}, true);
    const NodeId inv_std = ir::div(g, ir::scalar(g, 1.0), ir::sqrt(g, ir::add(g, var, ir::scalar(g, 1e-5))));
    const NodeId normalised = ir::mul(g, centred, inv_std);
    const NodeId scaled = ir::mul(g, normalised, gamma);
    const NodeId outside = ir::reduce_sum(g, scaled, {});  // reads a chain member from outside
    const NodeId y = ir::relu(g, ir::add(g, scaled, ir::broadcast_to(g, mean, ir::Shape{4, 8, 12, 12})));
    const NodeId dead = ir::exp(g, y);  // nothing reads it
    g.mark_output(ir::mul(g, y, outside));
    g.mark_output(normalised);

    Executor fused(g, ExecutorOptions{Kernels::Fast, true, {}});
    Executor unfused(g, ExecutorOptions{Kernels::Fast, true, {}, false, false});
    Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
    EXPECT_GE(fused.fused_group_count(), 1u);
    EXPECT_EQ(unfused.fused_group_count(), 0u);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> xs(4 * 8 * 12 * 12);
    for (float& v : xs) {
        v = normal(rng);
    }
    xs[7] = std::numeric_limits<float>::quiet_NaN();  // channel 0 becomes NaN throughout
    std::vector<float> gammas(8);
    for (float& v : gammas) {
        v = normal(rng);
    }
    for (Executor* e : {&fused, &unfused, &reference}) {
        e->value(x).data = xs;
        e->value(gamma).data = gammas;
        e->run();
    }
    for (const NodeId out : g.outputs()) {
        expect_same_bits(fused.value(out).data, reference.value(out).data, g.describe(out));
        expect_same_bits(unfused.value(out).data, reference.value(out).data, g.describe(out));
    }
    EXPECT_TRUE(std::isnan(fused.value(normalised).data[0]));
    EXPECT_LT(fused.bytes(), unfused.bytes());
    EXPECT_TRUE(fused.value(dead).data.empty());
    EXPECT_FALSE(reference.value(dead).data.empty());  // without reuse every node is computed
}

// BatchNorm + ReLU forward and backward, as the frontend lowers them: the fusion pass puts the sums of the
// statistics and of the gradients into the passes that compute their inputs, and merges the chains the backward
// pass joins; run so, every output has the reference kernels' bits, and fewer bytes are stored.
TEST(Executor, FusedSumsAndMergedChainsGiveTheReferenceBits) {
    ir::Graph g;
    const ir::Shape shape{6, 8, 9, 10};
    const NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const NodeId w = g.add_input("w", {ir::DType::F32, shape});
    const NodeId scale = g.add_parameter("scale", {ir::DType::F32, ir::Shape{8}});
    const NodeId bias = g.add_parameter("bias", {ir::DType::F32, ir::Shape{8}});
    const NodeId running_mean = g.add_state("running_mean", {ir::DType::F32, ir::Shape{8}});
    const NodeId running_var = g.add_state("running_var", {ir::DType::F32, ir::Shape{8}});
    std::vector<frontend::StateUpdate> updates;
    const NodeId y = ir::relu(g, frontend::batch_norm(g, x, scale, bias, running_mean, running_var, 1e-5, 0.9, true,
                                                      updates, "bn"));
    const NodeId loss = ir::reduce_sum(g, ir::mul(g, y, w), {});
    const std::vector<NodeId> wrt{x, scale, bias};
    const std::vector<NodeId> grads = autodiff::gradients(g, loss, wrt);
    g.mark_output(loss);
    for (const NodeId grad : grads) {
        g.mark_output(grad);
    }

    std::vector<bool> live(g.size(), true), kept(g.size(), false);
    for (const NodeId out : g.outputs()) {
        kept[out.index] = true;
    }
    std::size_t sums = 0;
    for (const compiler::FusionGroup& group : compiler::find_fusion_groups(g, live, kept)) {
        for (const NodeId m : group.members) {
            sums += g.node(m).op == ir::OpKind::ReduceSum ? 1 : 0;
        }
    }
    EXPECT_GE(sums, 3u);  // the variance's, and the gradient's two per-channel sums at least

    Executor fused(g, ExecutorOptions{Kernels::Fast, true, {}});
    Executor unfused(g, ExecutorOptions{Kernels::Fast, true, {}, false, false});
    Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.5f, 2.0f);
    for (Executor* e : {&fused, &unfused, &reference}) {
        rng.seed(9);
        for (const NodeId leaf : {x, w, scale, bias, running_mean, running_var}) {
            for (float& v : e->value(leaf).data) {
                v = normal(rng);
            }
        }
        e->run();
    }
    for (const NodeId out : g.outputs()) {
        expect_same_bits(fused.value(out).data, reference.value(out).data, g.describe(out));
    }
    EXPECT_LT(fused.bytes(), unfused.bytes());
}

// Roundings that look at one element at a time (bf16, nearest-even) run inside the fused passes, and so does
// RoundGrad's forward copy; a CFloat8 rounding, whose bias needs the whole tensor's max-abs, stays a node of its own.
// Forward and backward give the reference kernels' bits, NaN, Inf, denormals and ties included.
TEST(Executor, FusedRoundingsGiveTheReferenceBits) {
    ir::Graph g;
    const ir::Shape shape{4, compiler::kFusionMinElements};
    const NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const NodeId w = g.add_input("w", {ir::DType::F32, shape});
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{}});
    ir::RoundAttrs bf16;
    ir::RoundAttrs cfp8;
    cfp8.format = numerics::FormatKind::Cfp8_143;
    const NodeId h = ir::relu(g, ir::mul(g, x, w));
    const NodeId rounded = ir::round_grad(g, ir::round_to(g, h, step, bf16), step, bf16);
    const NodeId narrow = ir::round_to(g, ir::add(g, rounded, h), step, cfp8);
    const NodeId loss = ir::reduce_sum(g, ir::mul(g, ir::exp(g, rounded), narrow), {});
    const std::vector<NodeId> wrt{x};
    const std::vector<NodeId> grads = autodiff::gradients(g, loss, wrt);
    g.mark_output(loss);
    g.mark_output(rounded);
    g.mark_output(grads[0]);

    std::vector<bool> live(g.size(), true), kept(g.size(), false);
    for (const NodeId out : g.outputs()) {
        kept[out.index] = true;
    }
    std::vector<ir::RoundAttrs> fused_roundings;
    std::size_t fused_copies = 0;  // RoundGrad's identity forward is an alias, never a fused copy
    for (const compiler::FusionGroup& group : compiler::find_fusion_groups(g, live, kept)) {
        for (const NodeId m : group.members) {
            if (g.node(m).op == ir::OpKind::RoundTo) {
                fused_roundings.push_back(std::get<ir::RoundAttrs>(g.node(m).attrs));
            }
            fused_copies += g.node(m).op == ir::OpKind::RoundGrad ? 1 : 0;
        }
    }
    EXPECT_GE(fused_roundings.size(), 2u);  // forward, and the gradient RoundGrad rounds
    EXPECT_EQ(std::count(fused_roundings.begin(), fused_roundings.end(), cfp8), 0);
    EXPECT_EQ(fused_copies, 0u);

    Executor fused(g, ExecutorOptions{Kernels::Fast, true, {}});
    Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Executor* e : {&fused, &reference}) {
        rng.seed(5);
        for (const NodeId leaf : {x, w}) {
            for (float& v : e->value(leaf).data) {
                v = normal(rng);
            }
        }
        ir::Storage<float>& xs = e->value(x).data;
        xs[0] = std::numeric_limits<float>::quiet_NaN();
        xs[1] = std::numeric_limits<float>::infinity();
        xs[2] = std::numeric_limits<float>::denorm_min() * 12345.0f;
        xs[3] = std::bit_cast<float>(0x3f808000u);  // a tie between two bf16 values
        e->value(w).data[3] = 1.0f;
        e->run();
    }
    for (const NodeId out : g.outputs()) {
        expect_same_bits(fused.value(out).data, reference.value(out).data, g.describe(out));
    }
}

// RoundGrad's identity forward costs nothing on the fast path: its value is its input's buffer, which then lives until
// the alias's last reader, however many values are computed in between; the caller reading a RoundGrad keeps it a
// buffer of its own. Every output matches the reference kernels up to oneDNN's summation order.
TEST(Executor, RoundGradIsItsInputsBufferAndKeepsItAlive) {
    ir::Graph g;
    const ir::Shape shape{8, compiler::kFusionMinElements};
    const NodeId x = g.add_input("x", {ir::DType::F32, shape});
    const NodeId w = g.add_parameter("w", {ir::DType::F32, ir::Shape{compiler::kFusionMinElements, 64}});
    const NodeId v = g.add_parameter("v", {ir::DType::F32, ir::Shape{64, compiler::kFusionMinElements}});
    const NodeId step = g.add_input("step", {ir::DType::F32, ir::Shape{}});
    const NodeId product = ir::matmul(g, x, w);
    const NodeId alias = ir::round_grad(g, product, step, ir::RoundAttrs{});
    const NodeId chained = ir::round_grad(g, alias, step, ir::RoundAttrs{});  // an alias of an alias
    // Values computed after the alias and before its last reader: with a buffer freed too early, they would
    // overwrite the product.
    NodeId later = ir::exp(g, ir::matmul(g, ir::relu(g, product), v));
    for (int k = 0; k < 3; ++k) {
        later = ir::matmul(g, ir::sub(g, ir::matmul(g, ir::mul(g, later, x), w), product), v);
    }
    later = ir::matmul(g, later, w);
    const NodeId kept = ir::round_grad(g, later, step, ir::RoundAttrs{});  // an output: a buffer of its own
    const NodeId loss = ir::reduce_sum(g, ir::mul(g, kept, chained), {});
    const std::vector<NodeId> grads = autodiff::gradients(g, loss, std::vector<NodeId>{w, v});
    g.mark_output(loss);
    g.mark_output(kept);
    g.mark_output(grads[0]);
    g.mark_output(grads[1]);

    ExecutorOptions fast_options{Kernels::Fast, true, {}};
    fast_options.profile = true;
    Executor fast(g, fast_options);
    Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    for (Executor* e : {&fast, &reference}) {
        rng.seed(3);
        for (const NodeId leaf : {x, w, v}) {
            for (float& value : e->value(leaf).data) {
                value = normal(rng);
            }
        }
        e->value(step).data[0] = 1.0f;
        e->run();
    }
    EXPECT_EQ(fast.value(alias).data.data(), fast.value(product).data.data());
    EXPECT_EQ(fast.value(chained).data.data(), fast.value(product).data.data());
    EXPECT_NE(fast.value(kept).data.data(), fast.value(later).data.data());
    for (const NodeId out : g.outputs()) {  // oneDNN's matmuls sum in their own order: close, not the same bits
        const std::span<const float> a = fast.value(out).data;
        const std::span<const float> b = reference.value(out).data;
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            ASSERT_NEAR(a[i], b[i], 1e-3f * (1.0f + std::abs(b[i]))) << g.describe(out) << " element " << i;
        }
    }
    bool profiled_alias = false;
    for (const OpProfile& p : fast.profile()) {
        profiled_alias = profiled_alias || (p.op == "RoundGrad" && p.kernel == "alias" && p.nodes >= 2);
    }
    EXPECT_TRUE(profiled_alias);
}

// A convolution's input, reordered into oneDNN's layout once by the forward kernel and read again by the filter
// adjoint (an output gradient likewise by both adjoints), gives the reference's gradients step after step: the copy
// is refreshed each step, and copies placed in the same bytes do not overwrite one still to be read.
TEST(Executor, ConvolutionInputsReorderedOnceGiveTheReferenceGradients) {
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{4, 16, 12, 12}});
    std::vector<NodeId> weights;
    ir::Conv2dAttrs same;
    same.pads = {1, 1, 1, 1};
    NodeId h = x;
    for (int layer = 0; layer < 3; ++layer) {  // each layer's input is read forward and by its filter adjoint
        weights.push_back(g.add_parameter("w" + std::to_string(layer), {ir::DType::F32, ir::Shape{16, 16, 3, 3}}));
        h = ir::relu(g, ir::conv2d(g, h, weights.back(), same));
    }
    const NodeId loss = ir::reduce_sum(g, ir::mul(g, h, h), {});
    const std::vector<NodeId> grads = autodiff::gradients(g, loss, weights);
    g.mark_output(loss);
    for (const NodeId grad : grads) {
        g.mark_output(grad);
    }
    const std::vector<bool> live(g.size(), true);
    EXPECT_GE(OneDnnKernels(g, live).shared_copy_count(), 3u);  // the inputs of the 2nd and 3rd, their gradients

    Executor fast(g, ExecutorOptions{Kernels::Fast, true, {}});
    Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
    std::mt19937 rng(5);
    for (int step = 0; step < 3; ++step) {  // new inputs and weights each step: a stale copy would show
        std::normal_distribution<float> normal(0.0f, 0.3f);
        for (const NodeId leaf : {x, weights[0], weights[1], weights[2]}) {
            std::vector<float> values(fast.value(leaf).data.size());
            for (float& value : values) {
                value = normal(rng);
            }
            std::copy(values.begin(), values.end(), fast.value(leaf).data.begin());
            std::copy(values.begin(), values.end(), reference.value(leaf).data.begin());
        }
        fast.run();
        reference.run();
        for (const NodeId out : g.outputs()) {  // oneDNN sums in its own order: close, not the same bits
            const std::span<const float> a = fast.value(out).data;
            const std::span<const float> b = reference.value(out).data;
            float scale = 0.0f;
            for (const float v : b) {
                scale = std::max(scale, std::abs(v));
            }
            for (std::size_t i = 0; i < a.size(); ++i) {
                ASSERT_NEAR(a[i], b[i], 1e-4f * scale) << "step " << step << ", " << g.describe(out) << " element " << i;
            }
        }
    }
}

// What OneDnnKernels::reorders() lists is what run() reorders: a shared copy is filled by one kernel a step, and a
// profiled run times reorders only where a kernel has some, never more than the kernel's whole time.
TEST(Executor, ReordersAreListedAndTimedAsTheKernelsRunThem) {
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{4, 16, 12, 12}});
    ir::Conv2dAttrs same;
    same.pads = {1, 1, 1, 1};
    std::vector<NodeId> weights;
    NodeId h = x;
    for (int layer = 0; layer < 2; ++layer) {
        weights.push_back(g.add_parameter("w" + std::to_string(layer), {ir::DType::F32, ir::Shape{16, 16, 3, 3}}));
        h = ir::relu(g, ir::conv2d(g, h, weights.back(), same));
    }
    const NodeId flat = ir::reshape(g, h, ir::Shape{4, 16 * 12 * 12});
    const NodeId head = g.add_parameter("head", {ir::DType::F32, ir::Shape{16 * 12 * 12, 8}});
    const NodeId loss = ir::reduce_sum(g, ir::matmul(g, flat, head), {});
    weights.push_back(head);
    g.mark_output(loss);
    for (const NodeId grad : autodiff::gradients(g, loss, weights)) {
        g.mark_output(grad);
    }
    ExecutorOptions options;
    options.profile = true;
    for (const bool blocked : {false, true}) {
        options.channel_blocked = blocked;
        Executor e(g, options);
        const OneDnnKernels& kernels = *e.plan().onednn;
        e.run();
        e.run();
        std::map<std::uint32_t, int> copy_fills;  // value -> kernels filling its shared copy
        std::size_t kernels_with_reorders = 0, kernels_without = 0;
        for (std::uint32_t i = 0; i < g.size(); ++i) {
            const NodeId id{i};
            if (!kernels.has(id)) {
                EXPECT_TRUE(kernels.reorders(id).empty());
                continue;
            }
            const std::vector<OneDnnKernels::Reorder> reorders = kernels.reorders(id);
            for (const OneDnnKernels::Reorder& r : reorders) {
                const std::vector<NodeId>& inputs = g.node(id).inputs;
                EXPECT_TRUE(r.value == id || std::find(inputs.begin(), inputs.end(), r.value) != inputs.end());
                EXPECT_GT(r.bytes_read, 0u);
                EXPECT_GT(r.bytes_written, 0u);
                copy_fills[r.value.index] += r.into_shared_copy ? 1 : 0;
            }
            (reorders.empty() ? kernels_without : kernels_with_reorders) += 1;
            if (reorders.empty()) {
                EXPECT_EQ(kernels.reorder_seconds(id), 0.0) << g.describe(id);
            } else {
                EXPECT_GT(kernels.reorder_seconds(id), 0.0) << g.describe(id);
                EXPECT_LT(kernels.reorder_seconds(id), e.node_seconds()[i]) << g.describe(id);
            }
        }
        std::size_t shared = 0;
        for (const auto& [value, fills] : copy_fills) {
            EXPECT_LE(fills, 1) << g.describe(NodeId{value});
            shared += fills == 1;
        }
        EXPECT_EQ(shared, kernels.shared_copy_count()) << "blocked " << blocked;
        EXPECT_GT(kernels_with_reorders, 0u);  // the filters at least: oneDNN runs them in its own layout
        EXPECT_GT(kernels_without, 0u);        // the products of plain matrices
    }
}

// A reorder moves the value's elements, not its layouts' padding: LeNet's first convolution writes 6 channels, which
// oneDNN's blocked layout pads to a whole vector of channels (16 with AVX-512, 8 with AVX2), and the reorder back into
// the plain buffer reads and writes the 6 real ones.
TEST(Executor, AReorderMovesTheElementsNotTheirPadding) {
    ir::Graph g;
    const NodeId x = g.add_input("x", {ir::DType::F32, ir::Shape{8, 1, 28, 28}});
    const NodeId w = g.add_input("w", {ir::DType::F32, ir::Shape{6, 1, 5, 5}});
    ir::Conv2dAttrs same;
    same.pads = {2, 2, 2, 2};
    const NodeId y = ir::conv2d(g, x, w, same);
    g.mark_output(y);
    ExecutorOptions options;
    options.channel_blocked = false;  // the output's plain buffer: its kernel reorders into it
    const Executor e(g, options);
    const std::size_t output_bytes = 8 * 6 * 28 * 28 * sizeof(float);
    bool output_reordered = false;
    for (const OneDnnKernels::Reorder& r : e.plan().onednn->reorders(y)) {
        if (r.value == y) {
            output_reordered = true;
            EXPECT_EQ(r.bytes_written, output_bytes);
            EXPECT_GT(r.bytes_read, output_bytes);  // the blocked layout, padded channels and all
            EXPECT_EQ(r.bytes_moved, 2 * output_bytes);
        }
    }
    EXPECT_TRUE(output_reordered) << "oneDNN ran the 6-channel convolution in the plain layout";
}

// A LeNet step (loss and parameter gradients) under `precision`, run by `kernels`; the first convolution is kept.
struct PolicyStep {
    ir::Graph graph;
    NodeId loss, first_conv;
};
PolicyStep policy_step(compiler::Precision precision) {
    frontend::Model m = frontend::build_catalog_model("lenet", 4, ir::Shape{1, 28, 28}, 10);
    compiler::PolicyResult r = compiler::apply_precision_policy(m.graph, compiler::make_policy(precision, 3));
    PolicyStep s{std::move(r.graph), {}, {}};
    const NodeId target = s.graph.add_input("target", {ir::DType::F32, ir::Shape{4, 10}});
    s.loss = autodiff::softmax_cross_entropy(s.graph, r.remap[m.logits.index], target);
    const std::vector<NodeId> grads = autodiff::gradients(s.graph, s.loss, s.graph.parameters());
    s.graph.mark_output(s.loss);
    for (const NodeId g : grads) {
        s.graph.mark_output(g);
    }
    for (std::uint32_t i = 0; i < s.graph.size() && !s.first_conv.valid(); ++i) {
        if (s.graph.node(NodeId{i}).op == ir::OpKind::Conv2d) {
            s.first_conv = NodeId{i};
        }
    }
    return s;
}

void fill_leaves(const ir::Graph& g, Executor& e) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const std::vector<NodeId>* leaves : {&g.inputs(), &g.parameters()}) {
        for (const NodeId id : *leaves) {
            for (float& v : e.value(id).data) {
                v = g.type(id).shape.numel() == 1 ? 0.0f : normal(rng);  // the rounding step: 0
            }
        }
    }
}

// The kernel each matrix-unit op ran with.
std::map<std::string, std::string> matrix_kernels(const Executor& e) {
    std::map<std::string, std::string> kernels;
    for (const OpProfile& p : e.profile()) {
        if (p.op.starts_with("Conv2d") || p.op == "MatMul") {
            kernels[p.op] = kernels.contains(p.op) ? kernels[p.op] + "+" + p.kernel : p.kernel;
        }
    }
    return kernels;
}

// Under bf16/cfp8 every matrix-unit operand is a RoundTo output, exact in BF16: on a CPU with BF16 dot products the
// oneDNN kernels read them as BF16 and still equal the reference up to FP32 summation order; FP32 operands never do.
// One exception: the filter gradient of LeNet's first convolution (one input channel), for which oneDNN has no direct
// BF16 kernel, only im2col, slower than the direct FP32 one: it runs FP32.
TEST(Executor, RoundedOperandsRunBf16KernelsWhereTheCpuHasThem) {
    const bool native_bf16 = __builtin_cpu_supports("avx512bf16") != 0;
    for (const compiler::Precision precision :
         {compiler::Precision::Fp32, compiler::Precision::Bf16, compiler::Precision::Cfp8}) {
        SCOPED_TRACE(std::string(compiler::to_string(precision)));
        const PolicyStep s = policy_step(precision);
        ExecutorOptions fast_options{Kernels::Fast, true, {s.first_conv}, true};
        Executor fast(s.graph, fast_options);
        Executor reference(s.graph, ExecutorOptions{Kernels::Reference, false, {}});
        for (Executor* e : {&fast, &reference}) {
            fill_leaves(s.graph, *e);
            e->run();
        }
        const std::string expected =
            native_bf16 && precision != compiler::Precision::Fp32 ? "onednn-bf16" : "onednn";
        for (const auto& [op, kernel] : matrix_kernels(fast)) {
            if (op == "Conv2dBackwardFilter" && expected != "onednn") {  // the profile's rows: one per kernel
                EXPECT_TRUE(kernel == "onednn+" + expected || kernel == expected + "+onednn") << kernel;
            } else {
                EXPECT_EQ(kernel, expected) << op;
            }
        }
        EXPECT_EQ(matrix_kernels(fast).size(), 4u);  // Conv2d, both adjoints, MatMul
        // The first convolution's operands are the same in both runs: only the summation order differs. A kernel
        // that narrowed an FP32 operand to BF16 would be off by ~2^-9 of the products' size, 60 times this bound.
        const std::span<const float> conv = fast.value(s.first_conv).data;
        const std::span<const float> expected_conv = reference.value(s.first_conv).data;
        float scale = 0;
        for (const float v : expected_conv) {
            scale = std::max(scale, std::fabs(v));
        }
        for (std::size_t i = 0; i < conv.size(); ++i) {
            ASSERT_NEAR(conv[i], expected_conv[i], 1e-5f * scale) << "element " << i;
        }
        // The whole step: gradients agree up to the roundings a summation-order difference can flip.
        for (const NodeId out : s.graph.outputs()) {
            const std::span<const float> got = fast.value(out).data;
            const std::span<const float> want = reference.value(out).data;
            float out_scale = 0, worst = 0;
            for (std::size_t i = 0; i < got.size(); ++i) {
                out_scale = std::max(out_scale, std::fabs(want[i]));
                worst = std::max(worst, std::fabs(got[i] - want[i]));
            }
            EXPECT_LE(worst, 0.05f * out_scale) << s.graph.describe(out);
        }
    }
}

// The vectorised max-pooling (runtime/max_pool.h) gives the reference kernels' bits, forward and backward: windows
// inside and at every edge, padding, ties between equal values and between +0 and -0 (the first wins), NaNs (the
// first wins at once), -inf, and windows that share their maximum (the backward pass adds into it).
TEST(Executor, VectorisedMaxPoolGivesTheReferenceBits) {
    for (const testing::MaxPoolCase& c : testing::max_pool_cases()) {
        SCOPED_TRACE(c.x.to_string());
        ir::Graph g;
        const NodeId x = g.add_input("x", {ir::DType::F32, c.x});
        const NodeId y = g.add(ir::OpKind::MaxPool2d, c.attrs, {x});
        const NodeId dy = g.add_input("dy", g.type(y));
        const NodeId dx = g.add(ir::OpKind::MaxPool2dBackward, c.attrs, {x, dy});
        g.mark_output(y);
        g.mark_output(dx);
        Executor fast(g, ExecutorOptions{Kernels::Fast, true, {}, true});
        Executor reference(g, ExecutorOptions{Kernels::Reference, false, {}});
        const std::vector<float> xs = testing::max_pool_inputs(static_cast<std::size_t>(c.x.numel()), 3);
        const std::vector<float> dys = testing::max_pool_gradients(static_cast<std::size_t>(g.type(dy).shape.numel()));
        for (Executor* e : {&fast, &reference}) {
            std::copy(xs.begin(), xs.end(), e->value(x).data.begin());
            std::copy(dys.begin(), dys.end(), e->value(dy).data.begin());
            e->run();
        }
        expect_same_bits(fast.value(y).data, reference.value(y).data, "forward");
        expect_same_bits(fast.value(dx).data, reference.value(dx).data, "backward");
        for (const OpProfile& p : fast.profile()) {
            EXPECT_EQ(p.kernel, "vectorised") << p.op;
        }
    }
}

// Which kernel pools a shape (what the simulator charges it by): 2x2 windows at stride 2 that tile the plane, odd
// last rows and columns and padding that no window reaches included, take the tiled kernel where the CPU has AVX-512;
// a window reaching padding, another window size or stride, or the channel-blocked layout do not.
TEST(Executor, OnlyTwoByTwoWindowsTilingThePlaneTakeTheTiledPoolKernel) {
    const MaxPoolKernel tiled =
        numerics::best_isa() == numerics::Isa::Avx512 ? MaxPoolKernel::Tiled2x2 : MaxPoolKernel::Windows;
    const ir::PoolAttrs two{{2, 2}, {2, 2}, {0, 0, 0, 0}};
    EXPECT_EQ(max_pool_kernel(two, ir::Shape{64, 6, 28, 28}, ir::Shape{64, 6, 14, 14}, false), tiled);
    EXPECT_EQ(max_pool_kernel(two, ir::Shape{2, 16, 7, 9}, ir::Shape{2, 16, 3, 4}, false), tiled);
    const ir::PoolAttrs trailing{{2, 2}, {2, 2}, {0, 0, 1, 1}};  // reached only where a plane's size is odd
    EXPECT_EQ(max_pool_kernel(trailing, ir::Shape{1, 16, 4, 32}, ir::Shape{1, 16, 2, 16}, false), tiled);
    EXPECT_EQ(max_pool_kernel(trailing, ir::Shape{1, 16, 5, 33}, ir::Shape{1, 16, 3, 17}, false),
              MaxPoolKernel::Windows);
    const ir::PoolAttrs leading{{2, 2}, {2, 2}, {1, 1, 0, 0}};
    EXPECT_EQ(max_pool_kernel(leading, ir::Shape{1, 16, 9, 11}, ir::Shape{1, 16, 5, 6}, false), MaxPoolKernel::Windows);
    const ir::PoolAttrs stem{{3, 3}, {2, 2}, {1, 1, 1, 1}};
    EXPECT_EQ(max_pool_kernel(stem, ir::Shape{2, 32, 16, 16}, ir::Shape{2, 32, 8, 8}, false), MaxPoolKernel::Windows);
    EXPECT_EQ(max_pool_kernel(stem, ir::Shape{2, 32, 16, 16}, ir::Shape{2, 32, 8, 8}, true),
              MaxPoolKernel::BlockedWindows);
    EXPECT_EQ(max_pool_kernel(two, ir::Shape{64, 16, 28, 28}, ir::Shape{64, 16, 14, 14}, true),
              MaxPoolKernel::BlockedWindows);
}

data::Dataset tiny_dataset(std::size_t n, std::uint32_t seed) {
    // Two Gaussian blobs in 4 dimensions, label = blob.
    data::Dataset d;
    d.sample_shape = ir::Shape{4};
    d.classes = 2;
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.5f);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t label = static_cast<std::uint8_t>(i % 2);
        for (int k = 0; k < 4; ++k) {
            d.samples.push_back((label ? 1.0f : -1.0f) + noise(rng));
        }
        d.labels.push_back(label);
    }
    return d;
}

TEST(Trainer, LearnsAndIsDeterministic) {
    const data::Dataset train = tiny_dataset(512, 1);
    const data::Dataset test = tiny_dataset(200, 2);
    TrainOptions options;
    options.model = "mlp:hidden=8";
    options.batch = 16;
    options.epochs = 3;
    options.learning_rate = 0.1;
    options.seed = 3;
    options.eval_batch = 64;  // 200 = 3 full batches + a partial one
    int reports = 0;
    const TrainResult a = train_classifier(options, train, test, [&](const Progress&) { ++reports; });
    const TrainResult b = train_classifier(options, train, test, {});
    ASSERT_EQ(a.epochs.size(), 3u);
    EXPECT_GT(reports, 0);
    EXPECT_GT(a.epochs.back().test_accuracy, 0.95);
    EXPECT_LT(a.epochs.back().train_loss, a.epochs.front().train_loss);
    for (std::size_t e = 0; e < 3; ++e) {
        EXPECT_EQ(a.epochs[e].train_loss, b.epochs[e].train_loss);
        EXPECT_EQ(a.epochs[e].test_accuracy, b.epochs[e].test_accuracy);
    }
    options.seed = 4;
    EXPECT_NE(train_classifier(options, train, test, {}).epochs[0].train_loss, a.epochs[0].train_loss);
}

TEST(Trainer, RejectsBadOptionsAndStopsOnDivergence) {
    const data::Dataset train = tiny_dataset(64, 1);
    TrainOptions options;
    options.model = "mlp:hidden=4";
    options.batch = 0;
    EXPECT_THROW(train_classifier(options, train, train, {}), UsageError);
    options.batch = 128;
    EXPECT_THROW(train_classifier(options, train, train, {}), UsageError);
    options.batch = 8;
    options.learning_rate = -1;
    EXPECT_THROW(train_classifier(options, train, train, {}), UsageError);
    options.learning_rate = 1e30;  // explodes
    try {
        train_classifier(options, train, train, {});
        FAIL() << "expected divergence to stop the run";
    } catch (const UsageError&) {
        FAIL() << "divergence is not a usage error";
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("training diverged"), std::string::npos) << error.what();
    }
}

}  // namespace
}  // namespace dojo::runtime
