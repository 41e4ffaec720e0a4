#include "dojo/runtime/onednn_kernels.h"

#include <array>
#include <map>
#include <optional>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>

#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

using dnnl::memory;
using ir::NodeId;
using Tag = memory::format_tag;

memory::dims dims_of(const ir::Shape& shape) { return memory::dims(shape.dims().begin(), shape.dims().end()); }

memory::desc plain(const memory::dims& dims) {
    memory::dims strides(dims.size(), 1);
    for (std::size_t d = dims.size(); d-- > 1;) {
        strides[d - 1] = strides[d] * dims[d];
    }
    return memory::desc(dims, memory::data_type::f32, strides);
}

// oneDNN's convolution geometry from the IR's (oneDNN counts dilation from 0).
struct ConvGeometry {
    memory::dims strides, dilations, pad_left, pad_right;
    memory::desc weights;
};

ConvGeometry geometry(const ir::Conv2dAttrs& a, const ir::Shape& w) {
    ConvGeometry g{{a.strides[0], a.strides[1]},
                   {a.dilations[0] - 1, a.dilations[1] - 1},
                   {a.pads[0], a.pads[1]},
                   {a.pads[2], a.pads[3]},
                   {}};
    if (a.groups == 1) {
        g.weights = plain(dims_of(w));
    } else {  // [K, C/G, R, S] is GOIHW with O = K/G: the same bytes
        g.weights = plain({a.groups, w[0] / a.groups, w[1], w[2], w[3]});
    }
    return g;
}

// The same dimensions in whatever layout the primitive finds fastest.
memory::desc any(const memory::desc& d) { return memory::desc(d.dims(), memory::data_type::f32, Tag::any); }

}  // namespace

struct OneDnnKernels::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};

    // One argument of a primitive: the executor's plain buffer, and, when the primitive chose another layout
    // (oneDNN's blocked formats are what make its direct convolutions fast), the reorder between the two through a
    // scratch buffer. Scratch buffers are shared by all kernels (they run one at a time), one per argument slot,
    // sized for the largest user and allocated once.
    struct Role {
        memory::desc user;    // the plain layout of the executor's buffer
        memory::desc inner;   // the layout the primitive runs on (== user: no reorder)
        int arg = 0;          // DNNL_ARG_*
        NodeId id;            // the node whose buffer this is
        std::optional<dnnl::reorder> reorder;  // user -> inner for inputs, inner -> user for the output
    };
    struct Kernel {
        dnnl::primitive primitive;
        std::vector<Role> roles;  // the inputs, then the output
    };
    std::map<std::uint32_t, Kernel> kernels;
    std::array<std::vector<float>, 3> scratch;  // [slot]: storage for a reordered argument (a, b, out)

    Role role(const memory::desc& user, const memory::desc& inner, int arg, NodeId id, bool output, int slot) {
        Role r{user, inner, arg, id, std::nullopt};
        if (inner != user) {
            r.reorder = output ? dnnl::reorder(dnnl::reorder::primitive_desc(engine, inner, engine, user))
                               : dnnl::reorder(dnnl::reorder::primitive_desc(engine, user, engine, inner));
            const std::size_t floats = inner.get_size() / sizeof(float) + 1;
            if (scratch[static_cast<std::size_t>(slot)].size() < floats) {
                scratch[static_cast<std::size_t>(slot)].resize(floats);
            }
        }
        return r;
    }

    void add_kernel(NodeId id, dnnl::primitive primitive, std::vector<Role> roles) {
        kernels.emplace(id.index, Kernel{std::move(primitive), std::move(roles)});
    }

    void add(const ir::Graph& graph, NodeId id) {
        const ir::Node& node = graph.node(id);
        switch (node.op) {
            case ir::OpKind::Conv2d: {
                const ir::Conv2dAttrs& a = std::get<ir::Conv2dAttrs>(node.attrs);
                const ConvGeometry g = geometry(a, graph.type(node.inputs[1]).shape);
                const memory::desc src = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc dst = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc pd(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, any(src), any(g.weights),
                                                    any(dst), g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine);
                add_kernel(id, dnnl::convolution_forward(pd),
                           {role(src, pd.src_desc(), DNNL_ARG_SRC, node.inputs[0], false, 0),
                           role(g.weights, pd.weights_desc(), DNNL_ARG_WEIGHTS, node.inputs[1], false, 1),
                           role(dst, pd.dst_desc(), DNNL_ARG_DST, id, true, 2)});
                break;
            }
            case ir::OpKind::Conv2dBackwardData: {  // (g, w) -> dx
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, graph.type(node.inputs[1]).shape);
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_src = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc hint(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, any(diff_src),
                                                    any(g.weights), any(diff_dst), g.strides, g.dilations,
                                                    g.pad_left, g.pad_right),
                    engine);
                const dnnl::convolution_backward_data::primitive_desc pd(
                    dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(diff_src),
                                                          any(g.weights), any(diff_dst), g.strides, g.dilations,
                                                          g.pad_left, g.pad_right),
                    engine, hint);
                add_kernel(id, dnnl::convolution_backward_data(pd),
                           {role(diff_dst, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST, node.inputs[0], false, 0),
                           role(g.weights, pd.weights_desc(), DNNL_ARG_WEIGHTS, node.inputs[1], false, 1),
                           role(diff_src, pd.diff_src_desc(), DNNL_ARG_DIFF_SRC, id, true, 2)});
                break;
            }
            case ir::OpKind::Conv2dBackwardFilter: {  // (x, g) -> dw
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, node.type.shape);
                const memory::desc src = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[1]).shape));
                const dnnl::convolution_forward::primitive_desc hint(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, any(src), any(g.weights),
                                                    any(diff_dst), g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine);
                const dnnl::convolution_backward_weights::primitive_desc pd(
                    dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(src),
                                                             any(g.weights), any(diff_dst), g.strides, g.dilations,
                                                             g.pad_left, g.pad_right),
                    engine, hint);
                add_kernel(id, dnnl::convolution_backward_weights(pd),
                           {role(src, pd.src_desc(), DNNL_ARG_SRC, node.inputs[0], false, 0),
                           role(diff_dst, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST, node.inputs[1], false, 1),
                           role(g.weights, pd.diff_weights_desc(), DNNL_ARG_DIFF_WEIGHTS, id, true, 2)});
                break;
            }
            case ir::OpKind::MatMul: {
                // oneDNN wants equal ranks: pad the smaller operand's batch dimensions with leading 1s (broadcast).
                memory::dims a = dims_of(graph.type(node.inputs[0]).shape);
                memory::dims b = dims_of(graph.type(node.inputs[1]).shape);
                memory::dims out = dims_of(node.type.shape);
                if (out.size() > 6) {
                    return;  // beyond what we ask of oneDNN: the reference kernel runs
                }
                a.insert(a.begin(), out.size() - a.size(), 1);
                b.insert(b.begin(), out.size() - b.size(), 1);
                const memory::desc ma = plain(a);
                const memory::desc mb = plain(b);
                const memory::desc mo = plain(out);
                try {
                    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ma, mb, mo), engine);
                    add_kernel(id, dnnl::matmul(pd),
                           {role(ma, ma, DNNL_ARG_SRC, node.inputs[0], false, 0),
                               role(mb, mb, DNNL_ARG_WEIGHTS, node.inputs[1], false, 1),
                               role(mo, mo, DNNL_ARG_DST, id, true, 2)});
                } catch (const dnnl::error&) {
                    return;  // a broadcast pattern oneDNN does not implement: the reference kernel runs
                }
                break;
            }
            default:
                break;
        }
    }
};

OneDnnKernels::OneDnnKernels(const ir::Graph& graph, const std::vector<bool>& live) : impl_(std::make_unique<Impl>()) {
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        if (live[i]) {
            impl_->add(graph, NodeId{i});
        }
    }
}

OneDnnKernels::~OneDnnKernels() = default;

bool OneDnnKernels::has(NodeId id) const { return impl_->kernels.contains(id.index); }

std::size_t OneDnnKernels::count() const { return impl_->kernels.size(); }

void OneDnnKernels::run(NodeId id, std::vector<ir::Buffer<float>>& values) const {
    Impl::Kernel& k = impl_->kernels.at(id.index);
    // Memory objects only wrap the executor's buffers and the shared scratch (no allocation of tensor data).
    std::unordered_map<int, memory> args;
    const std::size_t output = k.roles.size() - 1;
    for (std::size_t slot = 0; slot < k.roles.size(); ++slot) {
        const Impl::Role& r = k.roles[slot];
        memory user(r.user, impl_->engine, values[r.id.index].data.data());
        if (!r.reorder) {
            args.emplace(r.arg, user);
            continue;
        }
        memory inner(r.inner, impl_->engine, impl_->scratch[slot].data());
        if (slot != output) {
            r.reorder->execute(impl_->stream, user, inner);
        }
        args.emplace(r.arg, inner);
    }
    k.primitive.execute(impl_->stream, args);
    const Impl::Role& out = k.roles[output];
    if (out.reorder) {
        memory inner(out.inner, impl_->engine, impl_->scratch[output].data());
        memory user(out.user, impl_->engine, values[id.index].data.data());
        out.reorder->execute(impl_->stream, inner, user);
    }
    impl_->stream.wait();
}

}  // namespace dojo::runtime
