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
