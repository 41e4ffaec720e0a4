// Layout propagation for tensor parallelism (tensor_parallel.h). One pass in node order; a parameter's layout is
// chosen at its first use, which comes before any gradient or optimizer node that reads it.
#include "dojo/compiler/tensor_parallel.h"

#include <algorithm>
#include <set>

#include "dojo/ir/elementwise.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;

constexpr Layout kReplicated{};

double tensor_bytes(const ir::TensorType& type) {
    return static_cast<double>(type.shape.numel()) * ir::dtype_info(type.dtype).size_bytes;
}

class Propagation {
public:
    Propagation(const ir::Graph& graph, int tp) : g_(graph) {
        result_.tp = tp;
        result_.layout.assign(graph.size(), kReplicated);
        result_.divided.assign(graph.size(), false);
        decided_.assign(graph.size(), false);
        rounded_parameter_.assign(graph.size(), -1);
    }

    TensorParallel run() {
        for (std::uint32_t i = 0; i < g_.size(); ++i) {
            visit(NodeId{i});
        }
        for (std::uint32_t i = 0; i < g_.size(); ++i) {  // roundings of parameters take their parameter's layout
            if (rounded_parameter_[i] >= 0) {
                const Layout l = layout(NodeId{i});
                set(NodeId{i}, l, l.split());
            }
        }
        return std::move(result_);
    }

private:
    const ir::Graph& g_;
    TensorParallel result_;
    std::vector<bool> decided_;  // parameters: whether their first use has chosen their layout
    // [node]: a RoundTo or RoundGrad of a parameter (directly or through another such rounding), which is laid out as
    // that parameter is, decided by the rounding's first use as the parameter's would be (the precision policy rounds
    // every matrix product's weight operand); -1 for other nodes
    std::vector<std::int64_t> rounded_parameter_;

    int rank(NodeId id) const { return g_.type(id).shape.rank(); }
    NodeId parameter_of(NodeId id) const {
        return rounded_parameter_[id.index] >= 0 ? NodeId{static_cast<std::uint32_t>(rounded_parameter_[id.index])} : id;
    }
    Layout layout(NodeId id) const { return result_.layout[parameter_of(id).index]; }
    bool undecided_parameter(NodeId id) const {
        const NodeId p = parameter_of(id);
        return g_.node(p).op == OpKind::Parameter && !decided_[p.index];
    }
    void decide(NodeId parameter, Layout l) {
        const NodeId p = parameter_of(parameter);
        decided_[p.index] = true;
        result_.layout[p.index] = l;
    }
    void set(NodeId id, Layout l, bool divided) {
        result_.layout[id.index] = l;
        result_.divided[id.index] = divided || l.split();
    }
    void all_reduce(NodeId id, double bytes) { result_.all_reduces.push_back({id, bytes}); }
    void conflict(NodeId id) {
        result_.conflicts.push_back(id);
        set(id, kReplicated, false);
    }

    // An input's split axis as an axis of the (broadcast) output of rank `out_rank`; -1 if replicated or split along
    // an axis the output broadcasts from size 1.
    int aligned(NodeId input, int out_rank, const ir::Shape& out_shape) const {
        const Layout l = layout(input);
        if (!l.split()) {
            return -1;
        }
        const int axis = l.split_axis + (out_rank - rank(input));
        const ir::Shape& in_shape = g_.type(input).shape;
        return in_shape[static_cast<std::size_t>(l.split_axis)] == out_shape[static_cast<std::size_t>(axis)] ? axis : -1;
    }

    void visit(NodeId id) {
        const ir::Node& node = g_.node(id);
        if (result_.tp == 1) {
            return;
        }
        switch (node.op) {
        case OpKind::Input:
        case OpKind::State:
        case OpKind::Fill:
        case OpKind::Constant:
        case OpKind::Parameter:
        case OpKind::OneHot:
            return;  // replicated (parameters until their first use decides)
        case OpKind::RoundTo:
        case OpKind::RoundGrad:
            if (undecided_parameter(node.inputs[0])) {  // laid out as its parameter, by its first use
                rounded_parameter_[id.index] = parameter_of(node.inputs[0]).index;
                return;
            }
            return broadcasting(id, node);
        case OpKind::MatMul:
            return matmul(id, node);
        case OpKind::ReduceSum:
            return reduce_sum(id, node);
        case OpKind::LogSoftmax:
            return log_softmax(id, node);
        case OpKind::Reshape:
            return reshape(id, node);
        case OpKind::Transpose: {
            const Layout in = layout(node.inputs[0]);
            const auto& perm = std::get<ir::TransposeAttrs>(node.attrs).perm;
            Layout out;
            for (std::size_t axis = 0; axis < perm.size() && in.split(); ++axis) {
                if (perm[axis] == in.split_axis) {
                    out.split_axis = static_cast<int>(axis);
                }
            }
            return set(id, out, false);
        }
        case OpKind::Gather:
            return gather(id, node);
        case OpKind::GatherBackward:
            // Each device adds the rows of its vocabulary shard (the table's layout); a split g keeps its axis.
            return set(id, layout(node.inputs[0]).split() ? Layout{layout(node.inputs[0]).split_axis - rank(node.inputs[0]) + rank(id)}
                                                          : Layout{0},
                       false);
        case OpKind::Conv2d:
        case OpKind::Conv2dBackwardData:
        case OpKind::Conv2dBackwardFilter:
        case OpKind::MaxPool2d:
        case OpKind::MaxPool2dBackward:
            // Convolutional layers stay replicated (data parallelism is their scheme); their inputs must be too.
            for (const NodeId input : node.inputs) {
                if (undecided_parameter(input)) {
                    decide(input, kReplicated);
                }
                if (layout(input).split()) {
                    return conflict(id);
                }
            }
            return set(id, kReplicated, false);
        default:
            return broadcasting(id, node);  // elementwise maps, Select, BroadcastTo, Slice(Backward), RoundTo/Grad
        }
    }

    // Elementwise and layout-preserving ops: the output is split along the one axis its split inputs agree on.
    void broadcasting(NodeId id, const ir::Node& node) {
        const ir::Shape& out_shape = node.type.shape;
        const int out_rank = out_shape.rank();
        if (node.op == OpKind::BroadcastTo || node.op == OpKind::Slice || node.op == OpKind::SliceBackward) {
            // One input; a slice of the split axis takes each device's share of it (Megatron lays q, k and v out
            // so that every device holds its heads of each).
            const Layout in = layout(node.inputs[0]);
            return set(id, in.split() ? Layout{in.split_axis + out_rank - rank(node.inputs[0])} : kReplicated, false);
        }
        int axis = -1;
        for (const NodeId input : node.inputs) {
            const int a = aligned(input, out_rank, out_shape);
            if (a >= 0 && axis >= 0 && a != axis) {
                return conflict(id);
            }
            if (a >= 0) {
                axis = a;
            } else if (layout(input).split()) {
                return conflict(id);  // split along an axis the output broadcasts
            }
        }
        for (const NodeId input : node.inputs) {
            if (undecided_parameter(input)) {
                const int in_axis = axis - (out_rank - rank(input));
                const bool follows = axis >= 0 && in_axis >= 0 &&
                                     g_.type(input).shape[static_cast<std::size_t>(in_axis)] ==
                                         out_shape[static_cast<std::size_t>(axis)];
                decide(input, follows ? Layout{in_axis} : kReplicated);
            }
        }
        set(id, Layout{axis}, false);
    }

    // [..., m, k] x [..., k, n]: column-parallel, row-parallel (partial sums, all-reduced), or batch-parallel.
    void matmul(NodeId id, const ir::Node& node) {
        const NodeId a = node.inputs[0], b = node.inputs[1];
        const int ra = rank(a), rb = rank(b), ro = rank(id);
        if (undecided_parameter(b)) {
            decide(b, layout(a).split_axis == ra - 1 ? Layout{rb - 2} : Layout{rb - 1});
        }
        if (undecided_parameter(a)) {
            decide(a, layout(b).split_axis == rb - 2 ? Layout{ra - 1} : Layout{ra - 2});
        }
        const Layout la = layout(a), lb = layout(b);
        const bool a_contracts = la.split_axis == ra - 1, b_contracts = lb.split_axis == rb - 2;
        if (a_contracts && b_contracts) {
            set(id, kReplicated, true);
            return all_reduce(id, tensor_bytes(node.type));
        }
        if (a_contracts != b_contracts) {
            return conflict(id);
        }
        // Output axes: a's m -> ro - 2, b's n -> ro - 1, batch axes aligned from the right.
        const int from_a = !la.split() ? -1 : la.split_axis == ra - 2 ? ro - 2 : la.split_axis + ro - ra;
        const int from_b = !lb.split() ? -1 : lb.split_axis == rb - 1 ? ro - 1 : lb.split_axis + ro - rb;
        if (from_a >= 0 && from_b >= 0 && from_a != from_b) {
            return conflict(id);
        }
        set(id, Layout{std::max(from_a, from_b)}, false);
    }

    void reduce_sum(NodeId id, const ir::Node& node) {
        const Layout in = layout(node.inputs[0]);
        if (!in.split()) {
            return set(id, kReplicated, false);
        }
        const auto& attrs = std::get<ir::ReduceAttrs>(node.attrs);
        const int r = rank(node.inputs[0]);
        std::vector<bool> reduced(static_cast<std::size_t>(r), attrs.axes.empty());
        for (const int axis : attrs.axes) {
            reduced[static_cast<std::size_t>(axis < 0 ? axis + r : axis)] = true;
        }
        if (reduced[static_cast<std::size_t>(in.split_axis)]) {
            set(id, kReplicated, true);
            return all_reduce(id, tensor_bytes(node.type));
        }
        int out_axis = in.split_axis;
        if (!attrs.keep_dims) {
            out_axis = static_cast<int>(std::count(reduced.begin(), reduced.begin() + in.split_axis, false));
        }
        set(id, Layout{out_axis}, false);
    }

    void log_softmax(NodeId id, const ir::Node& node) {
        const Layout in = layout(node.inputs[0]);
        const int r = rank(id);
        const int axis = std::get<ir::AxisAttrs>(node.attrs).axis;
        if (in.split() && in.split_axis == (axis < 0 ? axis + r : axis)) {
            // Row maxima and row sums of exponentials are reduced across the group: two values per row.
            const ir::Shape& shape = node.type.shape;
            all_reduce(id, 2.0 * tensor_bytes(node.type) / static_cast<double>(shape[static_cast<std::size_t>(in.split_axis)]));
        }
        set(id, in, false);
    }

    // The split axis survives a reshape when an output axis starts after the same number of elements and is at
    // least as long as the group (heads split from hidden, [B, S, H] flattened to [B * S, H], and back).
    void reshape(NodeId id, const ir::Node& node) {
        const Layout in = layout(node.inputs[0]);
        if (!in.split()) {
            return set(id, kReplicated, false);
        }
        const ir::Shape& from = g_.type(node.inputs[0]).shape;
        const ir::Shape& to = node.type.shape;
        std::int64_t before = 1;
        for (int axis = 0; axis < in.split_axis; ++axis) {
            before *= from[static_cast<std::size_t>(axis)];
        }
        std::int64_t running = 1;
        for (int axis = 0; axis < to.rank(); ++axis) {
            if (running == before && to[static_cast<std::size_t>(axis)] >= result_.tp) {
                return set(id, Layout{axis}, false);
            }
            running *= to[static_cast<std::size_t>(axis)];
        }
        conflict(id);
    }

    void gather(NodeId id, const ir::Node& node) {
        const NodeId table = node.inputs[0];
        if (undecided_parameter(table)) {
            decide(table, Layout{0});
        }
        const Layout l = layout(table);
        if (l.split_axis == 0) {  // vocabulary-parallel: each device looks up its rows, zeros elsewhere, summed
            set(id, kReplicated, true);
            return all_reduce(id, tensor_bytes(node.type));
        }
        set(id, l.split() ? Layout{l.split_axis - 1 + rank(node.inputs[1])} : kReplicated, false);
    }
};

}  // namespace

double TensorParallel::bytes_per_device(const ir::Graph& graph, ir::NodeId node) const {
    const double bytes = tensor_bytes(graph.type(node));
    const bool split = layout[node.index].split() || (!sequence_split.empty() && sequence_split[node.index]);
    return split ? bytes / tp : bytes;
}

TensorParallel shard_tensor_parallel(const ir::Graph& graph, int tp) {
    if (tp < 1) {
        throw UsageError("tensor parallelism: tp must be at least 1, got " + std::to_string(tp));
    }
    return Propagation(graph, tp).run();
}

std::int64_t token_count(const ir::Graph& graph) {
    for (const NodeId input : graph.inputs()) {
        const ir::TensorType& type = graph.type(input);
        if (type.dtype == ir::DType::I64 && type.shape.rank() == 2) {
            return type.shape.numel();
        }
    }
    return 0;
}

bool holds_tokens(const ir::Graph& graph, const ir::Shape& shape) {
    for (const NodeId input : graph.inputs()) {
        const ir::TensorType& type = graph.type(input);
        if (type.dtype == ir::DType::I64 && type.shape.rank() == 2) {
            const std::int64_t batch = type.shape[0], sequence = type.shape[1];
            return (shape.rank() >= 2 && shape[0] == batch && shape[1] == sequence) ||
                   (shape.rank() >= 1 && shape[0] == batch * sequence);
        }
    }
    return false;
}

void split_sequence(TensorParallel& tensor, const ir::Graph& graph) {
    if (tensor.tp < 2) {
        throw UsageError("sp=1 splits activations over the tensor-parallel group; it needs tp of 2 or more");
    }
    const std::int64_t tokens = token_count(graph);
    if (tokens == 0) {
        throw UsageError("sp=1 splits activations along their tokens; this model has no token input (an integer "
                         "[batch, sequence] tensor); leave sp out");
    }
    std::set<std::vector<std::int64_t>> parameter_shapes;
    for (const NodeId p : graph.parameters()) {
        parameter_shapes.insert(graph.type(p).shape.dims());
    }
    const std::size_t n = graph.size();
    std::vector<bool> from_data(n, false);  // computed, at some remove, from an input
    for (const NodeId input : graph.inputs()) {
        from_data[input.index] = true;
    }
    tensor.sequence_split.assign(n, false);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(NodeId{i});
        for (const NodeId input : node.inputs) {
            from_data[i] = from_data[i] || from_data[input.index];
        }
        if (node.inputs.empty() || !from_data[i] || tensor.layout[i].split() || tensor.divided[i]) {
            continue;
        }
        if (holds_tokens(graph, node.type.shape) && parameter_shapes.count(node.type.shape.dims()) == 0) {
            tensor.sequence_split[i] = true;
            tensor.divided[i] = true;
        }
    }
}

}  // namespace dojo::compiler
