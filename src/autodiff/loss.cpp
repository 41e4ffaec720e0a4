#include "dojo/autodiff/loss.h"

#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::autodiff {

using ir::NodeId;

NodeId softmax_cross_entropy(ir::Graph& g, NodeId logits, NodeId target) {
    const ir::Shape shape = g.type(logits).shape;
    if (shape.rank() != 2 || !(g.type(target).shape == shape)) {
        throw GraphError("softmax_cross_entropy: logits " + shape.to_string() + " and target " +
                         g.type(target).shape.to_string() + " must both be [N, C]");
    }
    const NodeId log_probabilities = ir::log_softmax(g, logits, 1);
    const NodeId total = ir::reduce_sum(g, ir::mul(g, target, log_probabilities), {});
    return ir::mul(g, total, ir::scalar(g, -1.0 / static_cast<double>(shape[0])), "loss");
}

NodeId sparse_softmax_cross_entropy(ir::Graph& g, NodeId logits, NodeId ids) {
    const ir::Shape shape = g.type(logits).shape;
    if (shape.rank() != 2 || !(g.type(ids).shape == ir::Shape{shape[0]})) {
        throw GraphError("sparse_softmax_cross_entropy: logits " + shape.to_string() + " must be [N, C] and ids " +
                         g.type(ids).shape.to_string() + " [N]");
    }
    return softmax_cross_entropy(g, logits, ir::one_hot(g, ids, shape[1], "target_one_hot"));
}

CrossEntropy add_cross_entropy(ir::Graph& g, NodeId logits, bool token_labels) {
    const ir::Shape shape = g.type(logits).shape;
    if (shape.rank() != 2) {
        throw GraphError("add_cross_entropy: logits " + shape.to_string() + " must be [N, C]");
    }
    if (token_labels) {
        const NodeId ids = g.add_input("target", {ir::DType::I64, ir::Shape{shape[0]}});
        return {ids, sparse_softmax_cross_entropy(g, logits, ids)};
    }
    const NodeId target = g.add_input("target", {ir::DType::F32, shape});
    return {target, softmax_cross_entropy(g, logits, target)};
}

NodeId sigmoid_binary_cross_entropy(ir::Graph& g, NodeId logits, NodeId target) {
    if (!(g.type(logits).shape == g.type(target).shape)) {
        throw GraphError("sigmoid_binary_cross_entropy: logits " + g.type(logits).shape.to_string() + " and target " +
                         g.type(target).shape.to_string() + " must have the same shape");
    }
    // softplus(x) = log(1 + e^x) = m + log(e^-m + e^(x-m)) with m = max(x, 0): both exponents <= 0, and the
    // gradient is sigmoid(x) for every x, 0 included (a form through |x| would have a kink there).
    const NodeId m = ir::relu(g, logits);
    const NodeId softplus = ir::add(
        g, m, ir::log(g, ir::add(g, ir::exp(g, ir::neg(g, m)), ir::exp(g, ir::sub(g, logits, m)))));
    const NodeId per_element = ir::sub(g, softplus, ir::mul(g, logits, target));
    const double count = static_cast<double>(g.type(logits).shape.numel());
    return ir::mul(g, ir::reduce_sum(g, per_element, {}), ir::scalar(g, 1.0 / count), "loss");
}

NodeId mean_squared_error(ir::Graph& g, NodeId prediction, NodeId target) {
    if (!(g.type(prediction).shape == g.type(target).shape)) {
        throw GraphError("mean_squared_error: prediction " + g.type(prediction).shape.to_string() + " and target " +
                         g.type(target).shape.to_string() + " must have the same shape");
    }
    const NodeId error = ir::sub(g, prediction, target);
    const double count = static_cast<double>(g.type(prediction).shape.numel());
    return ir::mul(g, ir::reduce_sum(g, ir::mul(g, error, error), {}), ir::scalar(g, 1.0 / count), "loss");
}

}  // namespace dojo::autodiff
