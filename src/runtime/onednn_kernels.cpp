#include "dojo/runtime/onednn_kernels.h"

#include <map>
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

}  // namespace

struct OneDnnKernels::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    struct Kernel {
        dnnl::primitive primitive;
        memory::desc a, b, out;  // the two inputs and the output, in the primitive's argument roles below
        int a_arg, b_arg, out_arg;
        NodeId a_id, b_id;  // the nodes bound to the a and b roles
    };
    std::map<std::uint32_t, Kernel> kernels;

    void add(const ir::Graph& graph, NodeId id) {
        const ir::Node& node = graph.node(id);
        switch (node.op) {
            case ir::OpKind::Conv2d: {
                const ir::Conv2dAttrs& a = std::get<ir::Conv2dAttrs>(node.attrs);
                const ir::Shape& x = graph.type(node.inputs[0]).shape;
                const ConvGeometry g = geometry(a, graph.type(node.inputs[1]).shape);
                const memory::desc src = plain(dims_of(x));
                const memory::desc dst = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc pd(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, src, g.weights, dst,
                                                    g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine);
                kernels[id.index] = {dnnl::convolution_forward(pd), src, g.weights, dst, DNNL_ARG_SRC,
                                     DNNL_ARG_WEIGHTS, DNNL_ARG_DST, node.inputs[0], node.inputs[1]};
                break;
            }
            case ir::OpKind::Conv2dBackwardData: {  // (g, w) -> dx
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, graph.type(node.inputs[1]).shape);
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_src = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc hint(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, diff_src, g.weights,
                                                    diff_dst, g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine);
                const dnnl::convolution_backward_data::primitive_desc pd(
                    dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, diff_src, g.weights,
                                                          diff_dst, g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine, hint);
                kernels[id.index] = {dnnl::convolution_backward_data(pd), diff_dst, g.weights, diff_src,
                                     DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC, node.inputs[0], node.inputs[1]};
                break;
            }
            case ir::OpKind::Conv2dBackwardFilter: {  // (x, g) -> dw
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, node.type.shape);
                const memory::desc src = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[1]).shape));
                const dnnl::convolution_forward::primitive_desc hint(
                    dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, src, g.weights, diff_dst,
                                                    g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine);
                const dnnl::convolution_backward_weights::primitive_desc pd(
                    dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, g.weights,
                                                             diff_dst, g.strides, g.dilations, g.pad_left,
                                                             g.pad_right),
                    engine, hint);
                kernels[id.index] = {dnnl::convolution_backward_weights(pd), src, diff_dst, g.weights, DNNL_ARG_SRC,
                                     DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, node.inputs[0], node.inputs[1]};
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
                    kernels[id.index] = {dnnl::matmul(pd), ma,           mb,
                                         mo,                DNNL_ARG_SRC, DNNL_ARG_WEIGHTS,
                                         DNNL_ARG_DST,      node.inputs[0], node.inputs[1]};
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

OneDnnKernels::OneDnnKernels(const ir::Graph& graph) : impl_(std::make_unique<Impl>()) {
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        impl_->add(graph, NodeId{i});
    }
}

OneDnnKernels::~OneDnnKernels() = default;

bool OneDnnKernels::has(NodeId id) const { return impl_->kernels.contains(id.index); }

std::size_t OneDnnKernels::count() const { return impl_->kernels.size(); }

void OneDnnKernels::run(NodeId id, std::vector<ir::Buffer<float>>& values) const {
    const Impl::Kernel& k = impl_->kernels.at(id.index);
    // Memory objects only wrap the executor's buffers (no copies, no allocation of tensor data).
    memory a(k.a, impl_->engine, values[k.a_id.index].data.data());
    memory b(k.b, impl_->engine, values[k.b_id.index].data.data());
    memory out(k.out, impl_->engine, values[id.index].data.data());
    k.primitive.execute(impl_->stream, {{k.a_arg, a}, {k.b_arg, b}, {k.out_arg, out}});
    impl_->stream.wait();
}

}  // namespace dojo::runtime
