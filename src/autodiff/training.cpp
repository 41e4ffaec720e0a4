#include "dojo/autodiff/training.h"

#include <cmath>
#include <string>

#include "dojo/autodiff/grad.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::autodiff {

using ir::Graph;
using ir::NodeId;

namespace {

const ir::TensorType kScalar{ir::DType::F32, ir::Shape{}};

void validate(const SgdConfig& c) {
    if (!(c.momentum >= 0) || !(c.weight_decay >= 0)) {
        throw UsageError("sgd: momentum (" + std::to_string(c.momentum) + ") and weight decay (" +
                         std::to_string(c.weight_decay) + ") must be >= 0");
    }
}

void validate(const AdamWConfig& c) {
    if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1)) {
        throw UsageError("adamw: betas must be in [0, 1), got " + std::to_string(c.beta1) + " and " +
                         std::to_string(c.beta2));
    }
    if (!(c.epsilon > 0) || !(c.weight_decay >= 0)) {
        throw UsageError("adamw: epsilon must be > 0 and weight decay >= 0");
    }
}

void add_sgd(TrainingGraph& t, const SgdConfig& c) {
    Graph& g = t.graph;
    const std::vector<NodeId> parameters = g.parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const NodeId p = parameters[i];
        const std::string name = g.node(p).name;
        NodeId direction = t.gradients[i];
        if (c.weight_decay != 0) {
            direction = ir::add(g, direction, ir::mul(g, ir::scalar(g, c.weight_decay), p));
        }
        NodeId buffer;
        if (c.momentum != 0) {
            buffer = g.add_state(name + ".momentum", g.type(p));
            direction = ir::add(g, ir::mul(g, ir::scalar(g, c.momentum), buffer), direction, name + ".momentum.next");
        }
        t.updates.push_back({p, ir::sub(g, p, ir::mul(g, t.learning_rate, direction), name + ".next")});
        if (buffer.valid()) {
            t.updates.push_back({buffer, direction});
        }
    }
}

void add_adamw(TrainingGraph& t, const AdamWConfig& c) {
    Graph& g = t.graph;
    t.bias_correction1 = g.add_input("adamw.bias_correction1", kScalar);
    t.bias_correction2 = g.add_input("adamw.bias_correction2", kScalar);
    const NodeId step_size = ir::div(g, t.learning_rate, t.bias_correction1);
    const NodeId sqrt_bc2 = ir::sqrt(g, t.bias_correction2);
    const NodeId decay = ir::sub(g, ir::scalar(g, 1.0), ir::mul(g, t.learning_rate, ir::scalar(g, c.weight_decay)));
    const std::vector<NodeId> parameters = g.parameters();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const NodeId p = parameters[i];
        const NodeId grad = t.gradients[i];
        const std::string name = g.node(p).name;
        const NodeId m = g.add_state(name + ".adam_m", g.type(p));
        const NodeId v = g.add_state(name + ".adam_v", g.type(p));
        const NodeId m_next = ir::add(g, ir::mul(g, ir::scalar(g, c.beta1), m),
                                      ir::mul(g, ir::scalar(g, 1 - c.beta1), grad), name + ".adam_m.next");
        const NodeId v_next = ir::add(g, ir::mul(g, ir::scalar(g, c.beta2), v),
                                      ir::mul(g, ir::scalar(g, 1 - c.beta2), ir::mul(g, grad, grad)),
                                      name + ".adam_v.next");
        const NodeId denominator = ir::add(g, ir::div(g, ir::sqrt(g, v_next), sqrt_bc2), ir::scalar(g, c.epsilon));
        const NodeId delta = ir::mul(g, step_size, ir::div(g, m_next, denominator));
        const NodeId next = ir::sub(g, ir::mul(g, p, decay), delta, name + ".next");
        t.updates.push_back({p, next});
        t.updates.push_back({m, m_next});
        t.updates.push_back({v, v_next});
    }
}

}  // namespace

TrainingGraph build_training_graph(Graph forward, NodeId loss, const OptimizerConfig& optimizer,
                                   std::span<const Assignment> state_updates) {
    std::visit([](const auto& config) { validate(config); }, optimizer);
    TrainingGraph t{std::move(forward), loss, {}, {}, {}, {}, {}, optimizer};
    Graph& g = t.graph;
    g.mark_output(loss);
    const std::vector<NodeId> parameters = g.parameters();
    t.gradients = gradients(g, loss, parameters);
    t.learning_rate = g.add_input("learning_rate", kScalar);
    if (const auto* sgd = std::get_if<SgdConfig>(&optimizer)) {
        add_sgd(t, *sgd);
    } else {
        add_adamw(t, std::get<AdamWConfig>(optimizer));
    }
    t.updates.insert(t.updates.end(), state_updates.begin(), state_updates.end());
    return t;
}

OptimizerConfig optimizer_named(const std::string& name) {
    if (name == "sgd") {
        return SgdConfig{};
    }
    if (name == "adamw") {
        return AdamWConfig{};
    }
    throw UsageError("unknown optimizer '" + name + "'; expected sgd or adamw");
}

double bias_correction(double beta, std::int64_t step) { return 1.0 - std::pow(beta, static_cast<double>(step)); }

}  // namespace dojo::autodiff
