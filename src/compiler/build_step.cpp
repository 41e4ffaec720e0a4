// build_step: forward graph -> precision policy -> loss -> autodiff and optimizer (build_step.h).
#include "dojo/compiler/build_step.h"

#include <bit>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "dojo/autodiff/loss.h"
#include "dojo/ir/builder.h"

namespace dojo::compiler {
namespace {

using ir::NodeId;

// The model's ids after the policy's rewrite.
Forward rewrite(frontend::Model model, const PrecisionPolicy& precision) {
    PolicyResult rewritten = apply_precision_policy(model.graph, precision);
    const auto map = [&](NodeId id) { return rewritten.remap[id.index]; };
    Forward f;
    f.input = map(model.input);
    f.logits = map(model.logits);
    f.step_input = rewritten.step;
    for (const auto& [id, rule] : model.init) {
        f.init[map(id)] = rule;
    }
    for (auto& [id, given] : model.values) {
        f.values[map(id)] = std::move(given);
    }
    for (const frontend::StateUpdate& u : model.state_updates) {
        f.state_updates.push_back({map(u.target), map(u.value)});
    }
    f.from_onnx = model.from_onnx;
    f.graph = std::move(rewritten.graph);
    return f;
}

// FNV-1a 64 over values and text.
class Fnv {
public:
    void bytes(const void* data, std::size_t size) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            hash_ = (hash_ ^ p[i]) * 0x100000001b3ULL;
        }
    }
    template <typename T>
        requires std::is_arithmetic_v<T> || std::is_enum_v<T>
    void add(T value) {
        bytes(&value, sizeof value);
    }
    void add(std::string_view text) {
        add(text.size());
        bytes(text.data(), text.size());
    }
    void add(const ir::Shape& shape) {
        add(shape.dims().size());
        for (const std::int64_t d : shape.dims()) {
            add(d);
        }
    }
    void add(const ir::TensorType& type) {
        add(type.dtype);
        add(type.shape);
    }
    void add(const ir::Conv2dAttrs& conv) {
        add(conv.strides);
        add(conv.pads);
        add(conv.dilations);
        add(conv.groups);
    }
    void add(const ir::SliceAttrs& slice) {
        add(slice.starts);
        add(slice.sizes);
        add(slice.steps);
    }
    template <typename T, std::size_t N>
    void add(const std::array<T, N>& values) {
        for (const T& v : values) {
            add(v);
        }
    }
    template <typename T>
    void add(const std::vector<T>& values) {
        add(values.size());
        for (const T& v : values) {
            add(v);
        }
    }
    std::uint64_t value() const { return hash_; }

private:
    std::uint64_t hash_ = 0xcbf29ce484222325ULL;
};

void add_attrs(Fnv& h, const ir::OpAttrs& attrs) {
    h.add(attrs.index());
    std::visit(
        [&h](const auto& a) {
            using A = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<A, ir::LeafAttrs>) {
                h.add(a.type);
            } else if constexpr (std::is_same_v<A, ir::FillAttrs>) {
                h.add(a.value);
                h.add(a.type);
            } else if constexpr (std::is_same_v<A, ir::ReduceAttrs>) {
                h.add(a.axes);
                h.add(a.keep_dims);
            } else if constexpr (std::is_same_v<A, ir::ReshapeAttrs> || std::is_same_v<A, ir::BroadcastAttrs>) {
                h.add(a.shape);
            } else if constexpr (std::is_same_v<A, ir::TransposeAttrs>) {
                h.add(a.perm);
            } else if constexpr (std::is_same_v<A, ir::AxisAttrs>) {
                h.add(a.axis);
            } else if constexpr (std::is_same_v<A, ir::RoundAttrs>) {
                h.add(a.format);
                h.add(a.rounding);
                h.add(a.headroom_binades);
                h.add(a.seed);
                h.add(a.tensor_id);
            } else if constexpr (std::is_same_v<A, ir::Conv2dAttrs> || std::is_same_v<A, ir::SliceAttrs>) {
                h.add(a);
            } else if constexpr (std::is_same_v<A, ir::ConvBackwardAttrs>) {
                h.add(a.conv);
                h.add(a.shape);
            } else if constexpr (std::is_same_v<A, ir::PoolAttrs>) {
                h.add(a.kernel);
                h.add(a.strides);
                h.add(a.pads);
            } else if constexpr (std::is_same_v<A, ir::ConstantAttrs>) {
                h.add(a.type);
                if (a.values) {
                    h.bytes(a.values->data(), a.values->size() * sizeof(float));
                }
            } else if constexpr (std::is_same_v<A, ir::SliceBackwardAttrs>) {
                h.add(a.slice);
                h.add(a.shape);
            } else if constexpr (std::is_same_v<A, ir::GatherBackwardAttrs>) {
                h.add(a.table);
            } else if constexpr (std::is_same_v<A, ir::OneHotAttrs>) {
                h.add(a.depth);
            } else if constexpr (std::is_same_v<A, ir::DropoutAttrs>) {
                h.add(a.ratio);
                h.add(a.seed);
                h.add(a.tensor_id);
            } else {
                static_assert(std::is_same_v<A, ir::NoAttrs>, "canonical_hash: an attribute type is not hashed");
            }
        },
        attrs);
}

}  // namespace

Forward build_forward(frontend::Model model, const PrecisionPolicy& precision) {
    return rewrite(std::move(model), precision);
}

Step build_step(frontend::Model model, const StepOptions& options) {
    const bool dense = model.dense_target;
    const bool binary = model.binary_target;
    const bool token_labels = model.token_labels;
    Forward f = rewrite(std::move(model), options.precision);
    ir::Graph& g = f.graph;
    Step step;
    step.input = f.input;
    step.step_input = f.step_input;
    step.init = std::move(f.init);
    step.values = std::move(f.values);
    step.model_states = g.states();
    step.from_onnx = f.from_onnx;
    step.precision = options.precision.named;
    step.logits = f.logits;
    const ir::Shape output = g.type(step.logits).shape;
    NodeId loss;
    if (dense) {
        step.target_kind = TargetKind::Dense;
        step.target = g.add_input("target", {ir::DType::F32, output});
        loss = autodiff::mean_squared_error(g, step.logits, step.target);
    } else if (binary) {
        step.target_kind = TargetKind::Binary;
        const ir::Shape flat{output[0], output.numel() / output[0]};
        if (!(output == flat)) {
            step.logits = ir::reshape(g, step.logits, flat);
        }
        step.target = g.add_input("target", {ir::DType::F32, flat});
        loss = autodiff::sigmoid_binary_cross_entropy(g, step.logits, step.target);
    } else {
        if (output.rank() > 2) {  // an imported language model's [B, S, V]: one label per position
            step.logits = ir::reshape(g, step.logits, ir::Shape{output.numel() / output.dims().back(),
                                                                output.dims().back()});
        }
        const bool ids = token_labels || output.rank() > 2;
        step.target_kind = ids ? TargetKind::ClassIds : TargetKind::ClassProbabilities;
        const autodiff::CrossEntropy ce = autodiff::add_cross_entropy(g, step.logits, ids);
        step.target = ce.target;
        loss = ce.loss;
    }
    step.training = autodiff::build_training_graph(std::move(g), loss, options.optimizer, f.state_updates);
    return step;
}

StepFactory step_factory(std::string spec, StepOptions options) {
    return [spec = std::move(spec), options = std::move(options)](std::int64_t batch) {
        return build_step(frontend::load_model_as_declared(spec, batch), options);
    };
}

std::uint64_t canonical_hash(const ir::Graph& graph) {
    Fnv h;
    h.add(graph.size());
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        const ir::Node& node = graph.node(NodeId{i});
        h.add(node.op);
        add_attrs(h, node.attrs);
        h.add(node.type);
        h.add(node.name);
        h.add(node.inputs.size());
        for (const NodeId in : node.inputs) {
            h.add(in.index);
        }
    }
    for (const auto* list : {&graph.inputs(), &graph.parameters(), &graph.states(), &graph.outputs()}) {
        h.add(list->size());
        for (const NodeId id : *list) {
            h.add(id.index);
        }
    }
    return h.value();
}

}  // namespace dojo::compiler
