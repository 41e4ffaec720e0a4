// split_tensor_parallel (split_tensor_parallel.h): per-device programs of a tensor-parallel plan.
#include "dojo/compiler/split_tensor_parallel.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "dojo/ir/elementwise.h"
#include "dojo/ir/op.h"
#include "dojo/util/error.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;
using ir::OpKind;
using ir::Shape;


Shape local_shape(const Shape& full, int axis, int tp) {
    std::vector<std::int64_t> dims = full.dims();
    if (axis >= 0) {
        dims[static_cast<std::size_t>(axis)] /= tp;
    }
    return Shape(std::move(dims));
}

class Splitter {
public:
    Splitter(const Plan& plan, int rank) : plan_(plan), g_(plan.step.graph), tp_(plan.strategy.tp), rank_(rank) {
        program_.rank = rank;
        program_.local.assign(g_.size(), NodeId{});
        effective_.assign(g_.size(), -1);
        for (const auto& ar : plan.tensor.all_reduces) {
            reduced_.insert(ar.node.index);
        }
        sequence_ = plan.tensor.sequence_split;
        sequence_.resize(g_.size(), false);
    }

    DeviceProgram run() {
        for (std::uint32_t i = 0; i < g_.size(); ++i) {
            if (plan_.live[i]) {
                effective_[i] = effective_axis(NodeId{i});
            }
        }
        find_groups();
        for (std::uint32_t i = 0; i < g_.size(); ++i) {
            if (plan_.live[i]) {
                add(NodeId{i});
            }
        }
        program_.graph.mark_output(program_.local[plan_.step.loss.index]);
        for (const autodiff::Assignment& a : plan_.step.updates) {
            if (program_.local[a.value.index].valid()) {
                program_.graph.mark_output(program_.local[a.value.index]);
            }
        }
        return std::move(program_);
    }

private:
    [[noreturn]] void refuse(NodeId id, const std::string& why) const {
        throw UsageError("tensor-parallel programs (tp=" + std::to_string(tp_) + "): " + g_.describe(id) + " " + why +
                         "; functional simulation covers Megatron-style layers (matmuls, embeddings, "
                         "attention heads, vocabulary-parallel cross-entropy) and sequence parallelism");
    }

    int axis_of(NodeId id) const { return effective_[id.index]; }

    // The layout a node has on the devices: TensorParallel's, except that an elementwise op the layouts leave
    // replicated but whose full-size inputs are split (an optimizer moment times a constant: the moment is held
    // split, as the value assigned to it is) stays split.
    int effective_axis(NodeId id) const {
        const ir::Node& node = g_.node(id);
        if (node.op == OpKind::Parameter || node.op == OpKind::State || node.op == OpKind::Input) {
            return leaf_split_axis(plan_, id);
        }
        const int axis = plan_.tensor.layout[id.index].split_axis;
        if (sequence_[id.index]) {
            return -1;  // split along the tokens instead (add_sequence_split)
        }
        if (axis >= 0 || !(ir::is_elementwise_map(node.op) || node.op == OpKind::Select)) {
            return axis;
        }
        int found = -1;
        const int out_rank = node.type.shape.rank();
        for (const NodeId in : node.inputs) {
            const int a = effective_[in.index];
            if (a < 0) {
                continue;
            }
            const int out_axis = a + (out_rank - g_.type(in).shape.rank());
            if (found >= 0 && found != out_axis) {
                return -1;
            }
            found = out_axis;
        }
        return found;
    }

    NodeId put(OpKind op, ir::OpAttrs attrs, std::vector<NodeId> inputs, const std::string& name, NodeId origin) {
        const NodeId id = program_.graph.add(op, std::move(attrs), std::move(inputs), name);
        program_.origin.push_back(origin);
        return id;
    }

    // Grouped blocks. A value split along an axis that a Slice later cuts into g equal parts (a fused QKV projection
    // cut into q, k and v) is held as Megatron lays it out: each device holds its block of each part, so that its
    // slice of part p is its block of p. Values whose split axes must line up (an elementwise op and its split
    // operands, a matmul and its column-split weight, a parameter and its update, ...) are joined, and each joined
    // set takes the part count of the slices (or slice adjoints) along it; `groups_` is 1 where nothing slices.
    std::uint32_t root(std::uint32_t i) {
        while (parent_[i] != i) {
            parent_[i] = parent_[parent_[i]];
            i = parent_[i];
        }
        return i;
    }
    void join(NodeId a, NodeId b) {
        if (effective_[a.index] >= 0 && effective_[b.index] >= 0) {
            parent_[root(a.index)] = root(b.index);
        }
    }
    void find_groups() {
        const std::size_t n = g_.size();
        parent_.resize(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            parent_[i] = i;
        }
        std::vector<std::pair<std::uint32_t, std::int64_t>> seeds;  // (node, parts)
        auto parts_of = [&](const ir::SliceAttrs& sl, std::int64_t full, int axis, NodeId id) -> std::int64_t {
            const auto a = static_cast<std::size_t>(axis);
            if (sl.steps[a] != 1 || sl.sizes[a] <= 0 || full % sl.sizes[a] != 0 || sl.starts[a] % sl.sizes[a] != 0) {
                refuse(id, "slices its split axis other than into equal parts");
            }
            return full / sl.sizes[a];
        };
        for (std::uint32_t i = 0; i < n; ++i) {
            const NodeId id{i};
            const ir::Node& node = g_.node(id);
            if (!plan_.live[i] || (effective_[i] < 0 && node.op != OpKind::Slice)) {
                continue;
            }
            switch (node.op) {
                case OpKind::Slice: {
                    const int a = effective_[node.inputs[0].index];
                    const std::int64_t full = a >= 0 ? g_.type(node.inputs[0]).shape[a] : 0;
                    if (a >= 0 && std::get<ir::SliceAttrs>(node.attrs).sizes[static_cast<std::size_t>(a)] != full) {
                        seeds.emplace_back(node.inputs[0].index,
                                           parts_of(std::get<ir::SliceAttrs>(node.attrs), full, a, id));
                    }
                    break;
                }
                case OpKind::SliceBackward: {
                    const auto& attrs = std::get<ir::SliceBackwardAttrs>(node.attrs);
                    const int a = effective_[i];
                    if (attrs.slice.sizes[static_cast<std::size_t>(a)] != node.type.shape[a]) {
                        seeds.emplace_back(i, parts_of(attrs.slice, node.type.shape[a], a, id));
                    }
                    break;
                }
                case OpKind::MatMul: {
                    const NodeId l = node.inputs[0], r = node.inputs[1];
                    const int rl = g_.type(l).shape.rank(), rr = g_.type(r).shape.rank(), ro = node.type.shape.rank();
                    if (effective_[r.index] == rr - 1 && effective_[i] == ro - 1) {
                        join(id, r);
                    }
                    if (effective_[l.index] == rl - 2 && effective_[i] == ro - 2) {
                        join(id, l);
                    }
                    break;
                }
                case OpKind::Gather:
                case OpKind::GatherBackward:
                case OpKind::LogSoftmax:
                    break;
                default:
                    for (const NodeId in : node.inputs) {
                        join(id, in);
                    }
                    break;
            }
        }
        for (const autodiff::Assignment& a : plan_.step.updates) {
            join(a.target, a.value);
        }
        // Contractions over a split axis: both operands' blocks must line up.
        for (std::uint32_t i = 0; i < n; ++i) {
            const ir::Node& node = g_.node(NodeId{i});
            if (plan_.live[i] && node.op == OpKind::MatMul) {
                const NodeId l = node.inputs[0], r = node.inputs[1];
                if (effective_[l.index] == g_.type(l).shape.rank() - 1 &&
                    effective_[r.index] == g_.type(r).shape.rank() - 2) {
                    join(l, r);
                }
            }
        }
        std::map<std::uint32_t, std::int64_t> parts;  // root -> parts
        for (const auto& [node, count] : seeds) {
            const auto [it, added] = parts.emplace(root(node), count);
            if (!added && it->second != count) {
                refuse(NodeId{node}, "is sliced into " + std::to_string(count) + " parts where a value it lines up with "
                                     "is sliced into " + std::to_string(it->second));
            }
        }
        groups_.assign(n, 1);
        for (std::uint32_t i = 0; i < n; ++i) {
            const auto it = parts.find(root(i));
            if (it != parts.end() && effective_[i] >= 0) {
                groups_[i] = it->second;
                if (node_dim(NodeId{i}) % (it->second * tp_) != 0) {
                    refuse(NodeId{i}, "holds " + std::to_string(it->second) + " parts that do not split in " +
                                          std::to_string(tp_));
                }
            }
        }
    }
    std::int64_t node_dim(NodeId id) const { return g_.type(id).shape[effective_[id.index]]; }

    // This rank's block of `value` (a local node holding all of training node `of`) along `axis`.
    NodeId slice_of(NodeId value, NodeId of, int axis, NodeId reader) {
        if (groups_[reader.index] > 1) {
            refuse(reader, "reads a whole value where its blocks are grouped by a later slice");
        }
        const Shape& full = program_.graph.type(value).shape;
        ir::SliceAttrs s;
        for (int a = 0; a < full.rank(); ++a) {
            const std::int64_t size = a == axis ? full[a] / tp_ : full[a];
            s.starts.push_back(a == axis ? size * rank_ : 0);
            s.sizes.push_back(size);
            s.steps.push_back(1);
        }
        return put(OpKind::Slice, s, {value}, "block of #" + std::to_string(of.index), reader);
    }

    // LogSoftmax along the split axis (Megatron's vocabulary-parallel cross-entropy), kept stable without a max
    // all-reduce: each device's log-sum-exp of its block, lse_r = x - LogSoftmax(x) at any one element, goes into
    // slot r of a [..., tp] tensor that the group sums (an all-gather by all-reduce); the whole axis's log-sum-exp is
    // then that tensor's own, the same way, and the result is x - it.
    void split_log_softmax(NodeId id, NodeId x, const Shape& want) {
        const int rank = want.rank();
        const int axis = rank - 1;
        if (axis_of(g_.node(id).inputs.front()) != axis) {
            refuse(id, "is a LogSoftmax split along an axis other than the last");
        }
        auto first_along_axis = [&](NodeId v, std::int64_t at) {  // v[..., at:at+1]
            const Shape& shape = program_.graph.type(v).shape;
            ir::SliceAttrs s;
            for (int a = 0; a < shape.rank(); ++a) {
                s.starts.push_back(a == axis ? at : 0);
                s.sizes.push_back(a == axis ? 1 : shape[a]);
                s.steps.push_back(1);
            }
            return put(OpKind::Slice, s, {v}, "", id);
        };
        const NodeId local = put(OpKind::LogSoftmax, ir::AxisAttrs{axis}, {x}, "", id);
        const NodeId lse = put(OpKind::Sub, {}, {first_along_axis(x, 0), first_along_axis(local, 0)}, "", id);
        std::vector<float> slot(static_cast<std::size_t>(tp_), 0.0f);
        slot[static_cast<std::size_t>(rank_)] = 1.0f;
        const NodeId one_hot =
            put(OpKind::Constant,
                ir::ConstantAttrs{ir::TensorType{ir::DType::F32, Shape({tp_})},
                                  std::make_shared<const std::vector<float>>(std::move(slot))},
                {}, "", id);
        const NodeId placed = put(OpKind::Mul, {}, {lse, one_hot}, "", id);  // [..., tp], lse_r in slot r
        program_.all_reduce_after.push_back(placed);
        const NodeId all = put(OpKind::LogSoftmax, ir::AxisAttrs{axis}, {placed}, "", id);
        const NodeId whole_lse = put(OpKind::Sub, {}, {first_along_axis(placed, 0), first_along_axis(all, 0)}, "", id);
        const NodeId made = put(OpKind::Sub, {}, {x, whole_lse}, g_.node(id).name, id);
        if (program_.graph.type(made).shape != want) {
            refuse(id, "split log-softmax comes out as " + program_.graph.type(made).shape.to_string());
        }
        program_.local[id.index] = made;
    }

    void add(NodeId id) {
        const ir::Node& node = g_.node(id);
        const int axis = axis_of(id);
        if (axis >= 0 && node.type.shape[axis] % tp_ != 0) {
            refuse(id, "splits axis " + std::to_string(axis) + " of " + node.type.to_string() + " unevenly");
        }
        const Shape want = local_shape(node.type.shape, axis, tp_);
        NodeId made;
        if (node.op == OpKind::Parameter || node.op == OpKind::State || node.op == OpKind::Input) {
            const int leaf_axis = leaf_split_axis(plan_, id);
            const ir::TensorType type{node.type.dtype, local_shape(node.type.shape, leaf_axis, tp_)};
            made = node.op == OpKind::Parameter ? program_.graph.add_parameter(node.name, type)
                   : node.op == OpKind::State   ? program_.graph.add_state(node.name, type)
                                                : program_.graph.add_input(node.name, type);
            program_.origin.push_back(id);
            program_.leaves.push_back({made, id, leaf_axis, leaf_axis >= 0 ? groups_[id.index] : 1});
            program_.local[id.index] = made;
            return;
        }
        if (std::count(plan_.tensor.conflicts.begin(), plan_.tensor.conflicts.end(), id) != 0) {
            refuse(id, "has inputs split along different axes");
        }
        if (sequence_[id.index]) {
            return add_sequence_split(id);
        }
        ir::OpAttrs attrs = node.attrs;
        std::vector<NodeId> inputs;
        for (const NodeId in : node.inputs) {
            inputs.push_back(program_.local[in.index]);
        }
        if (reduces_tokens(id)) {  // a sum over the tokens of a sequence-split value: this device's share, then summed
            const NodeId partial = put(node.op, std::move(attrs), std::move(inputs), node.name, id);
            finish(id, partial, want);
            if (reduced_.count(id.index) == 0) {
                program_.all_reduce_after.push_back(partial);
            }
            return;
        }
        for (std::size_t k = 0; k < inputs.size(); ++k) {  // a sequence-split value read whole: all-gathered
            if (sequence_[node.inputs[k].index]) {
                inputs[k] = gathered(node.inputs[k], id);
            }
        }
        switch (node.op) {
            case OpKind::Fill: std::get<ir::FillAttrs>(attrs).type.shape = want; break;
            case OpKind::Constant:
                if (axis >= 0) {
                    refuse(id, "is a constant split along an axis");
                }
                break;
            case OpKind::Reshape: std::get<ir::ReshapeAttrs>(attrs).shape = want; break;
            case OpKind::BroadcastTo: std::get<ir::BroadcastAttrs>(attrs).shape = want; break;
            case OpKind::Slice: {
                const int in_axis = axis_of(node.inputs.front());
                if (in_axis >= 0) {
                    auto& sl = std::get<ir::SliceAttrs>(attrs);
                    localize(sl, g_.type(node.inputs.front()).shape[in_axis], in_axis,
                             groups_[node.inputs.front().index], id);
                }
                break;
            }
            case OpKind::SliceBackward:
                if (axis >= 0) {
                    auto& sb = std::get<ir::SliceBackwardAttrs>(attrs);
                    localize(sb.slice, node.type.shape[axis], axis, groups_[id.index], id);
                    sb.shape = want;
                } else if (axis_of(node.inputs.front()) >= 0) {
                    refuse(id, "scatters a split value into a whole one");
                }
                break;
            case OpKind::MatMul: {
                // Contraction: a split operand's block meets the matching block of a replicated one.
                const int left = axis_of(node.inputs[0]), right = axis_of(node.inputs[1]);
                const int left_k = g_.type(node.inputs[0]).shape.rank() - 1;
                const int right_k = g_.type(node.inputs[1]).shape.rank() - 2;
                if (left == left_k && right < 0) {
                    inputs[1] = slice_of(inputs[1], node.inputs[1], right_k, id);
                } else if (right == right_k && left < 0) {
                    inputs[0] = slice_of(inputs[0], node.inputs[0], left_k, id);
                }
                break;
            }
            case OpKind::LogSoftmax:
                if (axis_of(node.inputs.front()) >= 0) {
                    const int in_rank = g_.type(node.inputs.front()).shape.rank();
                    const int softmax_axis = std::get<ir::AxisAttrs>(node.attrs).axis;
                    if ((softmax_axis + in_rank) % in_rank == axis_of(node.inputs.front())) {
                        return split_log_softmax(id, inputs.front(), want);
                    }
                    break;  // split along another axis (attention heads): each device's rows are whole
                }
                [[fallthrough]];
            case OpKind::Gather:
                if (axis_of(node.inputs[0]) == 0) {
                    return finish(id, vocabulary_gather(id, inputs[0], node.inputs[1]), want);
                }
                [[fallthrough]];
            case OpKind::GatherBackward:
                if (node.op == OpKind::GatherBackward && axis == 0 && axis_of(node.inputs[0]) < 0) {
                    return finish(id, vocabulary_gather_backward(id, inputs[0], node.inputs[1], want), want);
                }
                [[fallthrough]];
            case OpKind::Conv2d:
            case OpKind::Conv2dBackwardData:
            case OpKind::Conv2dBackwardFilter:
            case OpKind::MaxPool2d:
            case OpKind::MaxPool2dBackward:
                for (const NodeId in : node.inputs) {
                    if (axis_of(in) >= 0) {
                        refuse(id, "reads a value split along axis " + std::to_string(axis_of(in)));
                    }
                }
                if (axis >= 0) {
                    refuse(id, "is split along axis " + std::to_string(axis));
                }
                break;
            default: break;
        }
        // An elementwise op whose result is split reads the block of each replicated full-size operand.
        if (axis >= 0 && (ir::is_elementwise_map(node.op) || node.op == OpKind::Select)) {
            const int out_rank = node.type.shape.rank();
            for (std::size_t k = 0; k < inputs.size(); ++k) {
                const Shape& in_shape = g_.type(node.inputs[k]).shape;
                const int in_axis = axis - (out_rank - in_shape.rank());
                if (axis_of(node.inputs[k]) < 0 && in_axis >= 0 && in_shape[in_axis] == node.type.shape[axis]) {
                    inputs[k] = slice_of(inputs[k], node.inputs[k], in_axis, id);
                }
            }
        }
        finish(id, put(node.op, std::move(attrs), std::move(inputs), node.name, id), want);
    }

    // Sequence parallelism (plan.tensor.sequence_split): a value split along the tokens is held as a block of its
    // leading axis (the micro-batch's samples, whose tokens lead every such value: [batch, sequence, ...] or
    // [batch * sequence, ...]), rank r the r-th; any contiguous share of the tokens computes the same per-token
    // values, and this one needs no strided copies. A node split so reads its sequence-split inputs' blocks, and the
    // block of each replicated input that holds tokens (after an all-reduce: a reduce-scatter, as the sums are the
    // same); shape attributes take the local shape.
    void add_sequence_split(NodeId id) {
        const ir::Node& node = g_.node(id);
        if (node.type.shape[0] % tp_ != 0) {
            refuse(id, "is split along the tokens as blocks of its leading axis " + std::to_string(node.type.shape[0]) +
                           ", which tp does not divide (use a micro-batch that is a multiple of tp)");
        }
        const Shape want = local_shape(node.type.shape, 0, tp_);
        auto needs_block = [&](NodeId in) {
            return !sequence_[in.index] && effective_[in.index] < 0 && holds_tokens(g_, g_.type(in).shape);
        };
        if (std::any_of(node.inputs.begin(), node.inputs.end(),
                        [&](NodeId in) { return needs_block(in) && g_.type(in).dtype != ir::DType::F32; })) {
            // Integer token ids (a one-hot of the labels): Slice computes in f32, so the node runs whole on its
            // whole inputs and the device keeps its block of the result.
            std::vector<NodeId> inputs;
            for (const NodeId in : node.inputs) {
                inputs.push_back(sequence_[in.index] ? gathered(in, id) : program_.local[in.index]);
            }
            const NodeId whole = put(node.op, node.attrs, std::move(inputs), "", id);
            return finish(id, slice_of(whole, id, 0, id), want);
        }
        ir::OpAttrs attrs = node.attrs;
        std::vector<NodeId> inputs;
        for (const NodeId in : node.inputs) {
            NodeId here = program_.local[in.index];
            if (needs_block(in)) {
                here = slice_of(here, in, 0, id);
            }
            inputs.push_back(here);
        }
        switch (node.op) {
            case OpKind::Fill: std::get<ir::FillAttrs>(attrs).type.shape = want; break;
            case OpKind::Reshape: std::get<ir::ReshapeAttrs>(attrs).shape = want; break;
            case OpKind::BroadcastTo: std::get<ir::BroadcastAttrs>(attrs).shape = want; break;
            case OpKind::Slice: {
                const auto& sl = std::get<ir::SliceAttrs>(attrs);
                if (sl.starts[0] != 0 || sl.sizes[0] != g_.type(node.inputs[0]).shape[0]) {
                    refuse(id, "slices the tokens of a sequence-split value");
                }
                std::get<ir::SliceAttrs>(attrs).sizes[0] = want[0];
                break;
            }
            default: break;
        }
        finish(id, put(node.op, std::move(attrs), std::move(inputs), node.name, id), want);
    }

    // Whether `id` sums a sequence-split input over its leading axis (a layer-norm weight's gradient): each device
    // sums its tokens and the group all-reduces the partial sums.
    bool reduces_tokens(NodeId id) const {
        const ir::Node& node = g_.node(id);
        if (node.op != OpKind::ReduceSum || !sequence_[node.inputs[0].index]) {
            return false;
        }
        const auto& axes = std::get<ir::ReduceAttrs>(node.attrs).axes;
        const int rank = g_.type(node.inputs[0]).shape.rank();
        return axes.empty() || std::any_of(axes.begin(), axes.end(), [&](int a) { return (a + rank) % rank == 0; });
    }

    // The whole of sequence-split `value` on every device for `reader` (an all-gather, done as a sum of the blocks
    // each placed in a zero tensor at its rows: adding zeros is exact). Made once per pipeline stage that reads it,
    // in the first reader's program there, so that only blocks travel between stages.
    NodeId gathered(NodeId value, NodeId reader) {
        const std::pair key{value.index, plan_.stage[reader.index]};
        if (const auto it = gathered_.find(key); it != gathered_.end()) {
            return it->second;
        }
        const Shape& full = g_.type(value).shape;
        ir::SliceBackwardAttrs place;
        for (int a = 0; a < full.rank(); ++a) {
            const std::int64_t size = a == 0 ? full[a] / tp_ : full[a];
            place.slice.starts.push_back(a == 0 ? size * rank_ : 0);
            place.slice.sizes.push_back(size);
            place.slice.steps.push_back(1);
        }
        place.shape = full;
        const NodeId whole = put(OpKind::SliceBackward, place, {program_.local[value.index]},
                                 "all-gather of #" + std::to_string(value.index), reader);
        program_.all_reduce_after.push_back(whole);
        return gathered_.emplace(key, whole).first->second;
    }

    // A slice along a split axis of `full` elements held in `groups` parts, made local: the whole axis (one part)
    // becomes this device's block; part p of several becomes this device's block of part p.
    void localize(ir::SliceAttrs& sl, std::int64_t full, int axis, std::int64_t groups, NodeId id) {
        const auto a = static_cast<std::size_t>(axis);
        const std::int64_t part = full / groups;
        if (sl.steps[a] != 1 || sl.sizes[a] != part || sl.starts[a] % part != 0) {
            refuse(id, "slices along the split axis other than into the parts its blocks are grouped by");
        }
        sl.starts[a] = sl.starts[a] / part * (part / tp_);
        sl.sizes[a] = part / tp_;
    }

    // Records `made` as training node `id` on this device, and all-reduces it where the layouts say so.
    void finish(NodeId id, NodeId made, const Shape& want) {
        if (program_.graph.type(made).shape != want) {
            refuse(id, "comes out as " + program_.graph.type(made).shape.to_string() + " on a device where its layout "
                       "expects " + want.to_string());
        }
        program_.local[id.index] = made;
        if (reduced_.count(id.index) != 0) {
            program_.all_reduce_after.push_back(made);
        }
    }

    // For a table split by rows (vocabulary-parallel): ids as rows of this device's block, and a mask of the ids it
    // holds, each [ids..., 1], looked up in constant [V, 1] tables (no cast from integer ids needed). Made once per
    // ids node, shared by the lookup and its adjoint.
    std::pair<NodeId, NodeId> local_ids(NodeId id, NodeId ids, std::int64_t rows) {
        if (const auto it = masked_ids_.find(ids.index); it != masked_ids_.end()) {
            return it->second;
        }
        const std::int64_t local = rows / tp_, first = local * rank_;
        std::vector<float> remap(static_cast<std::size_t>(rows), 0.0f), mask(static_cast<std::size_t>(rows), 0.0f);
        for (std::int64_t v = first; v < first + local; ++v) {
            remap[static_cast<std::size_t>(v)] = static_cast<float>(v - first);
            mask[static_cast<std::size_t>(v)] = 1.0f;
        }
        auto table = [&](std::vector<float> values) {
            return put(OpKind::Constant,
                       ir::ConstantAttrs{ir::TensorType{ir::DType::F32, Shape({rows, 1})},
                                         std::make_shared<const std::vector<float>>(std::move(values))},
                       {}, "", id);
        };
        const NodeId here = program_.local[ids.index];
        const NodeId rows_here = put(OpKind::Gather, {}, {table(std::move(remap)), here}, "", id);  // [ids..., 1]
        const NodeId held = put(OpKind::Gather, {}, {table(std::move(mask)), here}, "", id);        // [ids..., 1]
        const NodeId flat = put(OpKind::Reshape, ir::ReshapeAttrs{g_.type(ids).shape}, {rows_here}, "", id);
        return masked_ids_.emplace(ids.index, std::pair{flat, held}).first->second;
    }

    // Gather from a row-split table: this device's rows where it holds the id, zeros elsewhere (then all-reduced).
    NodeId vocabulary_gather(NodeId id, NodeId table_here, NodeId ids) {
        const auto [rows_here, held] = local_ids(id, ids, g_.type(g_.node(id).inputs[0]).shape[0]);
        const NodeId looked_up = put(OpKind::Gather, {}, {table_here, rows_here}, "", id);
        return put(OpKind::Mul, {}, {looked_up, held}, g_.node(id).name, id);
    }

    // Its adjoint: the rows of this device's block get the gradients of the ids it holds.
    NodeId vocabulary_gather_backward(NodeId id, NodeId g_here, NodeId ids, const Shape& want) {
        const auto [rows_here, held] = local_ids(id, ids, g_.node(id).type.shape[0]);
        const NodeId masked = put(OpKind::Mul, {}, {g_here, held}, "", id);
        return put(OpKind::GatherBackward, ir::GatherBackwardAttrs{want}, {masked, rows_here}, g_.node(id).name, id);
    }

    const Plan& plan_;
    const ir::Graph& g_;
    int tp_;
    int rank_;
    DeviceProgram program_;
    std::set<std::uint32_t> reduced_;
    std::vector<bool> sequence_;                                     // [training node]: split along the tokens
    std::map<std::pair<std::uint32_t, int>, NodeId> gathered_;      // (sequence-split node, stage) -> all-gather
    std::vector<int> effective_;  // [training node]: its split axis on the devices (-1: whole)
    std::map<std::uint32_t, std::pair<NodeId, NodeId>> masked_ids_;  // ids node -> (rows here, held mask)
    std::vector<std::uint32_t> parent_;                              // joined split axes (find_groups)
    std::vector<std::int64_t> groups_;                               // [training node]: parts of its split axis
};

}  // namespace

int leaf_split_axis(const Plan& plan, NodeId leaf) {
    const ir::Graph& g = plan.step.graph;
    if (g.node(leaf).op == OpKind::State) {
        for (const autodiff::Assignment& a : plan.step.updates) {
            if (a.target == leaf) {
                return plan.tensor.layout[a.value.index].split_axis;
            }
        }
    }
    return plan.tensor.layout[leaf.index].split_axis;
}

std::vector<DeviceProgram> split_tensor_parallel(const Plan& plan) {
    std::vector<DeviceProgram> programs;
    for (int rank = 0; rank < plan.strategy.tp; ++rank) {
        programs.push_back(Splitter(plan, rank).run());
    }
    return programs;
}

}  // namespace dojo::compiler
