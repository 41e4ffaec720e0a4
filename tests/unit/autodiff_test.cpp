// Reverse-mode gradients of whole graphs against finite differences, the losses, and the optimizer updates
// against their PyTorch formulas computed independently here.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "dojo/autodiff/grad.h"
#include "dojo/autodiff/loss.h"
#include "dojo/autodiff/training.h"
#include "dojo/ir/builder.h"
#include "dojo/ir/interpreter.h"
#include "dojo/ir/verify.h"
#include "dojo/util/error.h"

namespace dojo::autodiff {
namespace {

using ir::Bindings;
using ir::Buffer;
using ir::Graph;
using ir::NodeId;
using ir::Shape;

ir::TensorType f32(Shape s) { return {ir::DType::F32, std::move(s)}; }

Buffer<double> random_buffer(const Shape& shape, std::mt19937& rng, double scale = 1.0) {
    std::normal_distribution<double> normal(0.0, scale);
    Buffer<double> b(shape);
    for (double& v : b.data) {
        v = normal(rng);
    }
    return b;
}

// A 2-layer MLP with softmax cross-entropy: x[4, 3] -> 5 (tanh) -> 3 logits; one-hot targets.
struct Mlp {
    Graph g;
    NodeId x, target, w1, b1, w2, loss;
    Mlp() {
        x = g.add_input("x", f32(Shape{4, 3}));
        target = g.add_input("target", f32(Shape{4, 3}));
        w1 = g.add_parameter("w1", f32(Shape{3, 5}));
        b1 = g.add_parameter("b1", f32(Shape{5}));
        w2 = g.add_parameter("w2", f32(Shape{5, 3}));
        const NodeId h = ir::tanh(g, ir::add(g, ir::matmul(g, x, w1), b1));
        loss = softmax_cross_entropy(g, ir::matmul(g, h, w2), target);
    }
    Bindings<double> bindings(std::mt19937& rng) const {
        Bindings<double> b;
        b[x] = random_buffer(g.type(x).shape, rng);
        Buffer<double> onehot(Shape{4, 3});
        for (int n = 0; n < 4; ++n) {
            onehot.data[static_cast<std::size_t>(n * 3 + n % 3)] = 1.0;
        }
        b[target] = onehot;
        for (const NodeId p : {w1, b1, w2}) {
            b[p] = random_buffer(g.type(p).shape, rng, 0.5);
        }
        return b;
    }
};

double loss_value(const Graph& g, NodeId loss, const Bindings<double>& b) { return ir::evaluate(g, b)[loss.index].data[0]; }

TEST(Gradients, WholeGraphMatchesFiniteDifferences) {
    std::mt19937 rng(7);
    Mlp mlp;
    Bindings<double> values = mlp.bindings(rng);
    const std::vector<NodeId> wrt = {mlp.w1, mlp.b1, mlp.w2};
    const std::vector<NodeId> grads = gradients(mlp.g, mlp.loss, wrt);
    ASSERT_NO_THROW(ir::verify(mlp.g));
    const auto all = ir::evaluate(mlp.g, values);
    for (std::size_t k = 0; k < wrt.size(); ++k) {
        ASSERT_EQ(mlp.g.type(grads[k]), mlp.g.type(wrt[k]));
        for (std::size_t j = 0; j < all[grads[k].index].data.size(); ++j) {
            Bindings<double> plus = values;
            Bindings<double> minus = values;
            const double h = 1e-6;
            plus[wrt[k]].data[j] += h;
            minus[wrt[k]].data[j] -= h;
            const double numeric = (loss_value(mlp.g, mlp.loss, plus) - loss_value(mlp.g, mlp.loss, minus)) / (2 * h);
            EXPECT_NEAR(all[grads[k].index].data[j], numeric, 1e-7 + 1e-6 * std::fabs(numeric))
                << mlp.g.describe(wrt[k]) << " element " << j;
        }
    }
}

TEST(Gradients, SumsOverEveryUseAndGivesZeroForUnusedInputs) {
    Graph g;
    const NodeId x = g.add_parameter("x", f32(Shape{3}));
    const NodeId unused = g.add_parameter("unused", f32(Shape{2}));
    // loss = sum(x * x + exp(x)): x is used three times.
    const NodeId loss = ir::reduce_sum(g, ir::add(g, ir::mul(g, x, x), ir::exp(g, x)), {});
    const std::vector<NodeId> wrt = {x, unused};
    const std::vector<NodeId> grads = gradients(g, loss, wrt);
    const Bindings<double> b = {{x, Buffer<double>(Shape{3}, {0.5, -1.0, 2.0})}, {unused, Buffer<double>(Shape{2})}};
    const auto all = ir::evaluate(g, b);
    for (std::size_t i = 0; i < 3; ++i) {
        const double xi = b.at(x).data[i];
        EXPECT_NEAR(all[grads[0].index].data[i], 2 * xi + std::exp(xi), 1e-12);
    }
    EXPECT_EQ(all[grads[1].index].data, (std::vector<double>{0, 0}));
}

TEST(Gradients, RejectANonScalarLoss) {
    Graph g;
    const NodeId x = g.add_parameter("x", f32(Shape{3}));
    try {
        gradients(g, ir::exp(g, x, "activations"), std::vector<NodeId>{x});
        FAIL();
    } catch (const GraphError& error) {
        EXPECT_NE(std::string(error.what()).find("'activations'"), std::string::npos) << error.what();
        EXPECT_NE(std::string(error.what()).find("reduce it to one element"), std::string::npos);
    }
}

TEST(Losses, CrossEntropyAndMseValues) {
    Graph g;
    const NodeId logits = g.add_input("logits", f32(Shape{2, 2}));
    const NodeId target = g.add_input("target", f32(Shape{2, 2}));
    const NodeId ce = softmax_cross_entropy(g, logits, target);
    const NodeId mse = mean_squared_error(g, logits, target);
    const Bindings<double> b = {{logits, Buffer<double>(Shape{2, 2}, {0, 0, 0, std::log(3.0)})},
                                {target, Buffer<double>(Shape{2, 2}, {1, 0, 0, 1})}};
    const auto all = ir::evaluate(g, b);
    // Row 0: -log(1/2); row 1: -log(3/4). Mean of the two.
    EXPECT_NEAR(all[ce.index].data[0], (std::log(2.0) - std::log(0.75)) / 2, 1e-12);
    EXPECT_NEAR(all[mse.index].data[0], (1 + 0 + 0 + std::pow(std::log(3.0) - 1, 2)) / 4, 1e-12);
    EXPECT_THROW(softmax_cross_entropy(g, logits, g.add_input("bad", f32(Shape{2, 3}))), GraphError);
}

// Sigmoid binary cross-entropy: -t log(sigmoid(x)) - (1 - t) log(1 - sigmoid(x)), written directly here, and its
// gradient (sigmoid(x) - t) / n, also for logits whose exp would overflow.
TEST(Losses, SigmoidBinaryCrossEntropyValueAndGradient) {
    Graph g;
    const NodeId x = g.add_parameter("x", f32(Shape{2, 3}));
    const NodeId t = g.add_input("t", f32(Shape{2, 3}));
    const NodeId loss = sigmoid_binary_cross_entropy(g, x, t);
    const NodeId grad = gradients(g, loss, std::vector<NodeId>{x}).front();
    const std::vector<double> xs{-2.0, 0.0, 3.0, 800.0, -800.0, 0.5};
    const std::vector<double> ts{0.0, 1.0, 1.0, 0.0, 0.0, 1.0};
    const Bindings<double> b = {{x, Buffer<double>(Shape{2, 3}, xs)}, {t, Buffer<double>(Shape{2, 3}, ts)}};
    const auto all = ir::evaluate(g, b);
    double expected = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        // log(sigmoid(x)) = -log(1 + e^-x); log(1 - sigmoid(x)) = -log(1 + e^x); 800 taken as its limit (x).
        const double log_p = xs[i] < -50 ? xs[i] : -std::log1p(std::exp(-xs[i]));
        const double log_q = xs[i] > 50 ? -xs[i] : -std::log1p(std::exp(xs[i]));
        expected += -(ts[i] * log_p + (1 - ts[i]) * log_q);
        const double sigmoid = 1 / (1 + std::exp(-xs[i]));
        EXPECT_NEAR(all[grad.index].data[i], (sigmoid - ts[i]) / 6, 1e-12) << "x = " << xs[i];
    }
    EXPECT_NEAR(all[loss.index].data[0], expected / 6, 1e-12);
    EXPECT_THROW(sigmoid_binary_cross_entropy(g, x, g.add_input("bad", f32(Shape{3, 2}))), GraphError);
}

// Runs `steps` optimizer steps on the interpreter, applying the graph's assignments, and returns the bindings.
Bindings<double> run_steps(const TrainingGraph& t, Bindings<double> b, double lr, int steps) {
    for (int step = 1; step <= steps; ++step) {
        b[t.learning_rate] = Buffer<double>(Shape{}, {lr});
        if (const auto* adam = std::get_if<AdamWConfig>(&t.optimizer)) {
            b[t.bias_correction1] = Buffer<double>(Shape{}, {bias_correction(adam->beta1, step)});
            b[t.bias_correction2] = Buffer<double>(Shape{}, {bias_correction(adam->beta2, step)});
        }
        const auto all = ir::evaluate(t.graph, b);
        for (const Assignment& a : t.updates) {
            b[a.target] = all[a.value.index];
        }
    }
    return b;
}

Bindings<double> with_zero_state(const TrainingGraph& t, Bindings<double> b) {
    for (const NodeId s : t.graph.states()) {
        b[s] = Buffer<double>(t.graph.type(s).shape);
    }
    return b;
}

// The graph's parameters after its steps (`after`) equal the independent reference's (`reference`).
void expect_same_parameters(const TrainingGraph& t, const Bindings<double>& after, const Bindings<double>& reference) {
    for (const NodeId param : t.graph.parameters()) {
        for (std::size_t j = 0; j < reference.at(param).data.size(); ++j) {
            EXPECT_NEAR(after.at(param).data[j], reference.at(param).data[j], 1e-12) << t.graph.describe(param);
        }
    }
}

TEST(Optimizers, SgdMomentumWeightDecayFollowsPyTorch) {
    std::mt19937 rng(3);
    Mlp mlp;
    const Bindings<double> start = mlp.bindings(rng);
    const SgdConfig config{0.9, 0.01};
    TrainingGraph t = build_training_graph(mlp.g, mlp.loss, config);
    ASSERT_NO_THROW(ir::verify(t.graph));
    EXPECT_EQ(t.graph.states().size(), 3u);   // one momentum buffer per parameter
    EXPECT_EQ(t.updates.size(), 6u);
    const double lr = 0.1;
    const Bindings<double> after = run_steps(t, with_zero_state(t, start), lr, 2);

    // Independent reference: gradients at each point from the same graph, update arithmetic done here.
    Bindings<double> p = with_zero_state(t, start);
    std::map<NodeId, std::vector<double>> buffer;
    for (int step = 0; step < 2; ++step) {
        p[t.learning_rate] = Buffer<double>(Shape{}, {lr});
        const auto all = ir::evaluate(t.graph, p);
        const std::vector<NodeId> params = t.graph.parameters();
        for (std::size_t i = 0; i < params.size(); ++i) {
            dojo::ir::Storage<double>& w = p[params[i]].data;
            const dojo::ir::Storage<double>& g = all[t.gradients[i].index].data;
            std::vector<double>& buf = buffer[params[i]];
            buf.resize(w.size(), 0.0);
            for (std::size_t j = 0; j < w.size(); ++j) {
                const double d = g[j] + config.weight_decay * w[j];
                buf[j] = config.momentum * buf[j] + d;
                w[j] -= lr * buf[j];
            }
        }
    }
    expect_same_parameters(t, after, p);
}

TEST(Optimizers, AdamWFollowsPyTorch) {
    std::mt19937 rng(4);
    Mlp mlp;
    const Bindings<double> start = mlp.bindings(rng);
    const AdamWConfig config{0.9, 0.99, 1e-8, 0.05};
    TrainingGraph t = build_training_graph(mlp.g, mlp.loss, config);
    ASSERT_NO_THROW(ir::verify(t.graph));
    const double lr = 0.01;
    const int steps = 3;
    const Bindings<double> after = run_steps(t, with_zero_state(t, start), lr, steps);

    Bindings<double> p = with_zero_state(t, start);
    std::map<NodeId, std::vector<double>> m;
    std::map<NodeId, std::vector<double>> v;
    for (int step = 1; step <= steps; ++step) {
        p[t.learning_rate] = Buffer<double>(Shape{}, {lr});
        p[t.bias_correction1] = Buffer<double>(Shape{}, {1.0});  // unused by the gradient nodes
        p[t.bias_correction2] = Buffer<double>(Shape{}, {1.0});
        const auto all = ir::evaluate(t.graph, p);
        const std::vector<NodeId> params = t.graph.parameters();
        for (std::size_t i = 0; i < params.size(); ++i) {
            dojo::ir::Storage<double>& w = p[params[i]].data;
            const dojo::ir::Storage<double>& g = all[t.gradients[i].index].data;
            m[params[i]].resize(w.size(), 0.0);
            v[params[i]].resize(w.size(), 0.0);
            for (std::size_t j = 0; j < w.size(); ++j) {
                w[j] *= 1 - lr * config.weight_decay;
                double& mj = m[params[i]][j];
                double& vj = v[params[i]][j];
                mj = config.beta1 * mj + (1 - config.beta1) * g[j];
                vj = config.beta2 * vj + (1 - config.beta2) * g[j] * g[j];
                const double bc1 = 1 - std::pow(config.beta1, step);
                const double bc2 = 1 - std::pow(config.beta2, step);
                w[j] -= (lr / bc1) * mj / (std::sqrt(vj) / std::sqrt(bc2) + config.epsilon);
            }
        }
    }
    expect_same_parameters(t, after, p);
}

TEST(Optimizers, TrainingLowersTheLossAndRejectsBadHyperparameters) {
    std::mt19937 rng(5);
    Mlp mlp;
    const Bindings<double> start = mlp.bindings(rng);
    TrainingGraph t = build_training_graph(mlp.g, mlp.loss, SgdConfig{0.9, 0.0});
    const Bindings<double> initial = with_zero_state(t, start);
    Bindings<double> probe = initial;
    probe[t.learning_rate] = Buffer<double>(Shape{}, {0.0});
    const double before = ir::evaluate(t.graph, probe)[t.loss.index].data[0];
    Bindings<double> trained = run_steps(t, initial, 0.2, 60);
    trained[t.learning_rate] = Buffer<double>(Shape{}, {0.0});
    const double after = ir::evaluate(t.graph, trained)[t.loss.index].data[0];
    EXPECT_LT(after, before * 0.2) << "before " << before << " after " << after;

    EXPECT_THROW(build_training_graph(mlp.g, mlp.loss, SgdConfig{-0.1, 0.0}), UsageError);
    EXPECT_THROW(build_training_graph(mlp.g, mlp.loss, AdamWConfig{1.0, 0.999, 1e-8, 0.0}), UsageError);
    EXPECT_THROW(build_training_graph(mlp.g, mlp.loss, AdamWConfig{0.9, 0.999, 0.0, 0.0}), UsageError);
}

}  // namespace
}  // namespace dojo::autodiff
