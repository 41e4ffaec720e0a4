#include "dojo/frontend/layers.h"

#include <cmath>

#include "dojo/ir/builder.h"

namespace dojo::frontend {

using ir::NodeId;

NodeId batch_norm(ir::Graph& g, NodeId x, NodeId scale, NodeId bias, NodeId running_mean, NodeId running_var,
                  double epsilon, double momentum, bool training, std::vector<StateUpdate>& updates,
                  const std::string& name) {
    const ir::Shape shape = g.type(x).shape;
    const std::int64_t channels = shape[1];
    std::vector<std::int64_t> per_channel(static_cast<std::size_t>(shape.rank()), 1);
    per_channel[1] = channels;
    const ir::Shape channel_shape(per_channel);
    std::vector<int> axes;
    for (int d = 0; d < shape.rank(); ++d) {
        if (d != 1) {
            axes.push_back(d);
        }
    }
    const std::int64_t count = shape.numel() / channels;
    NodeId mean;
    NodeId var;
    NodeId centred;  // x - mean, one node for the variance and the normalisation: one tensor to keep, not two
    if (training) {
        mean = ir::reduce_mean(g, x, axes, true);
        centred = ir::sub(g, x, mean);
        var = ir::reduce_mean(g, ir::mul(g, centred, centred), axes, true);
        const NodeId keep = ir::scalar(g, momentum);
        const NodeId take = ir::scalar(g, 1.0 - momentum);
        const NodeId unbiased = ir::mul(g, ir::reshape(g, var, ir::Shape{channels}),
                                        ir::scalar(g, static_cast<double>(count) / static_cast<double>(count - 1)));
        updates.push_back({running_mean, ir::add(g, ir::mul(g, running_mean, keep),
                                                 ir::mul(g, ir::reshape(g, mean, ir::Shape{channels}), take),
                                                 g.node(running_mean).name + ".next")});
        updates.push_back({running_var, ir::add(g, ir::mul(g, running_var, keep), ir::mul(g, unbiased, take),
                                                g.node(running_var).name + ".next")});
    } else {
        mean = ir::reshape(g, running_mean, channel_shape);
        var = ir::reshape(g, running_var, channel_shape);
        centred = ir::sub(g, x, mean);
    }
    const NodeId inv_std = ir::div(g, ir::scalar(g, 1.0), ir::sqrt(g, ir::add(g, var, ir::scalar(g, epsilon))));
    const NodeId normalized = ir::mul(g, centred, ir::mul(g, inv_std, ir::reshape(g, scale, channel_shape)));
    return ir::add(g, normalized, ir::reshape(g, bias, channel_shape), name);
}

NodeId layer_norm(ir::Graph& g, NodeId x, NodeId scale, NodeId bias, int axis, double epsilon,
                  const std::string& name) {
    const ir::Shape shape = g.type(x).shape;
    std::vector<int> axes;
    for (int d = axis; d < shape.rank(); ++d) {
        axes.push_back(d);
    }
    const NodeId centred = ir::sub(g, x, ir::reduce_mean(g, x, axes, true));
    const NodeId var = ir::reduce_mean(g, ir::mul(g, centred, centred), axes, true);
    NodeId y = ir::div(g, centred, ir::sqrt(g, ir::add(g, var, ir::scalar(g, epsilon))));
    y = ir::mul(g, y, scale, bias.valid() ? std::string() : name);
    if (bias.valid()) {
        y = ir::add(g, y, bias, name);
    }
    return y;
}

NodeId gelu(ir::Graph& g, NodeId x) {
    const NodeId cdf = ir::mul(g, ir::add(g, ir::erf(g, ir::mul(g, x, ir::scalar(g, 1.0 / std::sqrt(2.0)))),
                                          ir::scalar(g, 1.0)),
                               ir::scalar(g, 0.5));
    return ir::mul(g, x, cdf);
}

NodeId softmax(ir::Graph& g, NodeId x, int axis) { return ir::exp(g, ir::log_softmax(g, x, axis)); }

}  // namespace dojo::frontend
