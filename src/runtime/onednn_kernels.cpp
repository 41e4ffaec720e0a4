#include "dojo/runtime/onednn_kernels.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>

#include "dojo/runtime/arena_plan.h"
#include "dojo/runtime/channel_blocked.h"
#include "dojo/util/check.h"

namespace dojo::runtime {
namespace {

using dnnl::memory;
using ir::NodeId;
using Tag = memory::format_tag;

memory::dims dims_of(const ir::Shape& shape) { return memory::dims(shape.dims().begin(), shape.dims().end()); }

// Row-major (NCHW, OIHW, ...) dimensions holding `type`.
memory::desc plain(const memory::dims& dims, memory::data_type type = memory::data_type::f32) {
    memory::dims strides(dims.size(), 1);
    for (std::size_t d = dims.size(); d-- > 1;) {
        strides[d - 1] = strides[d] * dims[d];
    }
    return memory::desc(dims, type, strides);
}

// The elements a layout holds, its padding left out.
std::size_t element_count(const memory::desc& d) {
    std::size_t n = 1;
    for (const memory::dim extent : d.dims()) {
        n *= static_cast<std::size_t>(extent);
    }
    return n;
}

std::size_t element_bytes(const memory::desc& d) { return memory::data_type_size(d.data_type()); }

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

// The same dimensions in whatever layout the primitive finds fastest, holding `type`.
memory::desc any(const memory::desc& d, memory::data_type type = memory::data_type::f32) {
    return memory::desc(d.dims(), type, Tag::any);
}

// Whether this CPU multiplies BF16 in hardware (AVX512-BF16's VDPBF16PS, or AMX): only then is a BF16 kernel faster
// than FP32 (oneDNN also runs BF16 on plain AVX-512, by conversion, at FP32 speed or worse).
bool cpu_has_native_bf16() {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

// Whether value `id` is a RoundTo output, or one moved about by ops that only copy values (a transposed weight in a
// backward MatMul, say): values on a BF16 or CFloat grid, which BF16 holds exactly (every CFloat8 value has at most 3
// mantissa bits and, with a bias in [0, 63], an exponent inside BF16's normal range; cfloat.md 2.3).
bool exact_in_bf16(const ir::Graph& graph, NodeId id) {
    for (;;) {
        const ir::Node& node = graph.node(id);
        switch (node.op) {
            case ir::OpKind::RoundTo:
                return numerics::traits(std::get<ir::RoundAttrs>(node.attrs).format).mantissa_bits <= 7;
            case ir::OpKind::Reshape:
            case ir::OpKind::Transpose:
            case ir::OpKind::BroadcastTo:
            case ir::OpKind::Slice:
            case ir::OpKind::RoundGrad:  // the identity forward
                id = node.inputs[0];
                break;
            default:
                return false;
        }
    }
}

// Whether a kernel loses nothing reading every operand of `node` as BF16.
bool operands_exact_in_bf16(const ir::Graph& graph, const ir::Node& node) {
    return std::all_of(node.inputs.begin(), node.inputs.end(),
                       [&](NodeId input) { return exact_in_bf16(graph, input); });
}

// A BF16 kernel is only worth taking when oneDNN has a fast one for the shape. Its reference implementations are
// orders of magnitude slower than its JIT kernels. For a convolution, its im2col implementations ("gemm:jit", chosen
// where no direct BF16 kernel takes the shape: a filter gradient over one input channel, say) also lose: 8 times
// slower here than the direct FP32 kernel of the same convolution (LeNet's first filter gradient, 1.1 ms against
// 0.135). A matmul's "gemm" is a true BF16 GEMM and stays.
bool is_slow_bf16_implementation(const char* impl_info, bool convolution) {
    const std::string_view name(impl_info);
    return name.starts_with("ref") || (convolution && name.find("gemm") != std::string_view::npos);
}

}  // namespace

struct OneDnnKernels::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};

    // One argument of a primitive: the executor's plain buffer, and, when the primitive chose another layout
    // (oneDNN's blocked formats are what make its direct convolutions fast), the reorder between the two. A reordered
    // argument lives either in one of the scratch buffers shared by all kernels (they run one at a time), or, for an
    // input several kernels read in the same layout, in a shared copy (below).
    struct Role {
        memory::desc user;    // the plain layout of the executor's buffer
        memory::desc inner;   // the layout the primitive runs on (== user: no reorder)
        int arg = 0;          // DNNL_ARG_*
        NodeId id;            // the node whose buffer this is
        std::optional<dnnl::reorder> reorder;  // user -> inner for inputs, inner -> user for the output
        int shared = -1;      // the shared copy holding this input (index into copies), or -1: a scratch buffer
    };
    struct Kernel {
        dnnl::primitive primitive;
        std::vector<Role> roles;     // the inputs, then the output
        std::string implementation;  // oneDNN's name for it
        double reorder_seconds = 0;  // its reorders' time over its runs (time_reorders only)
    };
    std::map<std::uint32_t, Kernel> kernels;  // by node, so in the order the executor runs them
    std::set<std::uint32_t> bf16_nodes;  // the kernels whose operands are read as BF16
    std::array<std::vector<float>, 3> scratch;  // for reordered arguments, each sized for the largest; a kernel has
                                                // at most 3 arguments
    // A value several kernels read in the same layout is reordered once per step, by the first of them, into a copy
    // the later ones read: a convolution's input, which its filter adjoint reads again in the backward pass, and an
    // output gradient, which both adjoints read. Values never change within a step, so the copy stays current until
    // the last reader; the copies live in one arena, placed by their lifetimes in kernel order (runtime/arena_plan.h),
    // so copies whose readers do not overlap share bytes. A value one kernel reads as BF16 in its buffer's own layout
    // has such a copy too, for its producer to write (bf16_copy()).
    struct SharedCopy {
        std::size_t offset_floats = 0;  // where it lies in `copies_arena`
        std::uint64_t step = 0;         // the step whose value it holds (0: none yet)
        bool bf16_as_buffer = false;    // BF16 in the buffer's own layout: its producer may write it (bf16_copy())
    };
    std::vector<SharedCopy> copies;
    std::vector<float> copies_arena;
    std::uint64_t step = 1;
    bool timing_reorders = false;
    bool planned = false;  // the copies and scratch are allocated (once: use_blocked(), or the first use)

    Role role(const memory::desc& user, const memory::desc& inner, int arg, NodeId id, bool output) {
        Role r{user, inner, arg, id, std::nullopt};
        if (inner != user) {
            r.reorder = output ? dnnl::reorder(dnnl::reorder::primitive_desc(engine, inner, engine, user))
                               : dnnl::reorder(dnnl::reorder::primitive_desc(engine, user, engine, inner));
        }
        return r;
    }

    // Gives every input that two or more kernels read in the same layout a shared copy, and every input one kernel
    // reads as BF16 in its buffer's layout a copy of its own (see SharedCopy).
    void plan_shared_copies() {
        struct Reads {
            std::uint32_t node = 0;
            memory::desc layout;
            Lifetime lifetime;          // in kernel positions
            std::vector<Role*> roles;   // its readers
        };
        std::vector<Reads> reads;  // few (a few per kernel): a linear search is fine
        std::uint32_t position = 0;
        for (auto& [index, k] : kernels) {
            for (std::size_t r = 0; r + 1 < k.roles.size(); ++r) {
                Role& role = k.roles[r];
                if (!role.reorder) {
                    continue;
                }
                auto it = std::find_if(reads.begin(), reads.end(), [&](const Reads& x) {
                    return x.node == role.id.index && x.layout == role.inner;
                });
                if (it == reads.end()) {
                    reads.push_back({role.id.index, role.inner, {position, position, role.inner.get_size()}, {}});
                    it = reads.end() - 1;
                }
                it->lifetime.last = position;
                it->roles.push_back(&role);
            }
            ++position;
        }
        // A value one kernel reads keeps a copy only where it is BF16 in the buffer's own layout: its producer may
        // then write it (bf16_copy()) in place of the FP32 value and the conversion.
        std::erase_if(reads, [](const Reads& x) {
            return x.roles.size() < 2 && !is_bf16_as(x.roles.front()->user, x.roles.front()->inner);
        });
        std::vector<Lifetime> lifetimes;
        std::vector<bool> bf16_as_buffer;
        for (std::size_t c = 0; c < reads.size(); ++c) {
            const Role& first = *reads[c].roles.front();
            bf16_as_buffer.push_back(is_bf16_as(first.user, first.inner));
            if (bf16_as_buffer.back()) {
                // Its producer may write it (bf16_copy()): reserve it from the first kernel after that node on.
                const auto after_producer = static_cast<std::uint32_t>(std::distance(
                    kernels.begin(), kernels.lower_bound(reads[c].node)));
                reads[c].lifetime.first = std::min(reads[c].lifetime.first, after_producer);
            }
            lifetimes.push_back(reads[c].lifetime);
            for (Role* role : reads[c].roles) {
                role->shared = static_cast<int>(c);
            }
        }
        const ArenaPlan plan = plan_arena(lifetimes);
        copies_arena.resize(plan.arena_bytes / sizeof(float) + 1);
        for (std::size_t c = 0; c < plan.offset_bytes.size(); ++c) {
            copies.push_back({plan.offset_bytes[c] / sizeof(float), 0, bf16_as_buffer[c]});
        }
        std::size_t scratch_floats = 0;  // the largest argument a scratch buffer holds; any buffer may hold any
        for (const auto& [index, k] : kernels) {
            for (const Role& role : k.roles) {
                if (role.reorder && role.shared < 0) {
                    scratch_floats = std::max(scratch_floats, role.inner.get_size() / sizeof(float) + 1);
                }
            }
        }
        for (std::vector<float>& buffer : scratch) {
            buffer.resize(scratch_floats);
        }
    }

    // Whether `inner` is `user` (FP32) with BF16 elements in the same places: the same dims, strides and blocking.
    static bool is_bf16_as(const memory::desc& user, const memory::desc& inner) {
        if (user.data_type() != memory::data_type::f32 || inner.data_type() != memory::data_type::bf16) {
            return false;
        }
        memory::desc as_bf16 = user;
        as_bf16.data.data_type = dnnl_bf16;
        return as_bf16 == inner;
    }

    // The shared copy every role reading node `id` reads, if they all read the same one (else -1).
    int sole_copy_of(NodeId id) const {
        int copy = -1;
        for (const auto& [index, k] : kernels) {
            for (std::size_t r = 0; r + 1 < k.roles.size(); ++r) {
                const Role& role = k.roles[r];
                if (role.id != id) {
                    continue;
                }
                if (role.shared < 0 || (copy >= 0 && role.shared != copy)) {
                    return -1;
                }
                copy = role.shared;
            }
        }
        return copy;
    }

    // The channel-blocked layout (runtime/channel_blocked.h) of a plain 4-D desc, holding `type`.
    static std::optional<memory::desc> blocked_like(const memory::desc& plain_desc, memory::data_type type) {
        const memory::dims dims = plain_desc.dims();
        if (!can_store_channel_blocked(ir::Shape(std::vector<std::int64_t>(dims.begin(), dims.end())))) {
            return std::nullopt;
        }
        return memory::desc(dims, type, Tag::aBcd16b);
    }

    BlockedFit blocked_fit(NodeId id) const {
        BlockedFit fit = BlockedFit::Untouched;
        for (const auto& [index, k] : kernels) {
            for (const Role& role : k.roles) {
                if (role.id != id) {
                    continue;
                }
                if (role.inner != blocked_like(role.user, role.inner.data_type())) {
                    return BlockedFit::Conflicts;
                }
                fit = BlockedFit::Fits;
            }
        }
        return fit;
    }

    // Plans and allocates the shared copies and the scratch for the arguments' layouts as they now stand.
    void plan_once() {
        if (!planned) {
            plan_shared_copies();
            planned = true;
        }
    }

    void use_blocked(const std::vector<bool>& blocked) {
        DOJO_CHECK(!planned) << "use_blocked() after the kernels' buffers were planned";
        for (auto& [index, k] : kernels) {
            for (std::size_t r = 0; r < k.roles.size(); ++r) {
                Role& role = k.roles[r];
                if (blocked[role.id.index]) {
                    const std::optional<memory::desc> user = blocked_like(role.user, memory::data_type::f32);
                    DOJO_CHECK(user.has_value()) << "node " << role.id.index << " cannot be channel-blocked";
                    role = this->role(*user, role.inner, role.arg, role.id, r + 1 == k.roles.size());
                }
            }
        }
        plan_once();
    }

    // Runs reorder `r` from `from` into `to` for kernel `k`, timing it there when timing_reorders.
    void run_reorder(const dnnl::reorder& r, memory& from, memory& to, Kernel& k) {
        if (!timing_reorders) {
            r.execute(stream, from, to);
            return;
        }
        const auto start = std::chrono::steady_clock::now();
        r.execute(stream, from, to);
        stream.wait();
        k.reorder_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }

    void add_kernel(NodeId id, dnnl::primitive primitive, const char* implementation, std::vector<Role> roles) {
        kernels.emplace(id.index, Kernel{std::move(primitive), std::move(roles), implementation});
    }

    // The forward convolution over src -> dst in the layouts oneDNN picks, its operands (src, weights) holding
    // `operand`, its result FP32; also the hint both adjoints need.
    dnnl::convolution_forward::primitive_desc forward(const ConvGeometry& g, const memory::desc& src,
                                                      const memory::desc& dst, memory::data_type operand) const {
        return dnnl::convolution_forward::primitive_desc(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            any(src, operand), any(g.weights, operand), any(dst), g.strides,
                                            g.dilations, g.pad_left, g.pad_right),
            engine);
    }

    // Adds node `id`'s kernel with its operands read as `operand` (f32, or bf16 when they are exact in BF16) and its
    // result written in FP32. Returns false, adding nothing, where oneDNN has no fast kernel for that.
    bool add(const ir::Graph& graph, NodeId id, memory::data_type operand) {
        const ir::Node& node = graph.node(id);
        auto fast = [&](const auto& pd) {
            return operand == memory::data_type::f32 ||
                   !is_slow_bf16_implementation(pd.impl_info_str(), node.op != ir::OpKind::MatMul);
        };
        switch (node.op) {
            case ir::OpKind::Conv2d: {
                const ir::Conv2dAttrs& a = std::get<ir::Conv2dAttrs>(node.attrs);
                const ConvGeometry g = geometry(a, graph.type(node.inputs[1]).shape);
                const memory::desc src = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc dst = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc pd = forward(g, src, dst, operand);
                if (!fast(pd)) {
                    return false;
                }
                add_kernel(id, dnnl::convolution_forward(pd), pd.impl_info_str(),
                           {role(src, pd.src_desc(), DNNL_ARG_SRC, node.inputs[0], false),
                           role(g.weights, pd.weights_desc(), DNNL_ARG_WEIGHTS, node.inputs[1], false),
                           role(dst, pd.dst_desc(), DNNL_ARG_DST, id, true)});
                return true;
            }
            case ir::OpKind::Conv2dBackwardData: {  // (g, w) -> dx
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, graph.type(node.inputs[1]).shape);
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_src = plain(dims_of(node.type.shape));
                const dnnl::convolution_forward::primitive_desc hint = forward(g, diff_src, diff_dst, operand);
                const dnnl::convolution_backward_data::primitive_desc pd(
                    dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(diff_src),
                                                          any(g.weights, operand), any(diff_dst, operand),
                                                          g.strides, g.dilations, g.pad_left, g.pad_right),
                    engine, hint);
                if (!fast(pd)) {
                    return false;
                }
                add_kernel(id, dnnl::convolution_backward_data(pd), pd.impl_info_str(),
                           {role(diff_dst, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST, node.inputs[0], false),
                           role(g.weights, pd.weights_desc(), DNNL_ARG_WEIGHTS, node.inputs[1], false),
                           role(diff_src, pd.diff_src_desc(), DNNL_ARG_DIFF_SRC, id, true)});
                return true;
            }
            case ir::OpKind::Conv2dBackwardFilter: {  // (x, g) -> dw
                const ir::ConvBackwardAttrs& a = std::get<ir::ConvBackwardAttrs>(node.attrs);
                const ConvGeometry g = geometry(a.conv, node.type.shape);
                const memory::desc src = plain(dims_of(graph.type(node.inputs[0]).shape));
                const memory::desc diff_dst = plain(dims_of(graph.type(node.inputs[1]).shape));
                const dnnl::convolution_forward::primitive_desc hint = forward(g, src, diff_dst, operand);
                const dnnl::convolution_backward_weights::primitive_desc pd(
                    dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(src, operand),
                                                             any(g.weights), any(diff_dst, operand), g.strides,
                                                             g.dilations, g.pad_left, g.pad_right),
                    engine, hint);
                if (!fast(pd)) {
                    return false;
                }
                add_kernel(id, dnnl::convolution_backward_weights(pd), pd.impl_info_str(),
                           {role(src, pd.src_desc(), DNNL_ARG_SRC, node.inputs[0], false),
                           role(diff_dst, pd.diff_dst_desc(), DNNL_ARG_DIFF_DST, node.inputs[1], false),
                           role(g.weights, pd.diff_weights_desc(), DNNL_ARG_DIFF_WEIGHTS, id, true)});
                return true;
            }
            case ir::OpKind::MatMul: {
                // oneDNN wants equal ranks: pad the smaller operand's batch dimensions with leading 1s (broadcast).
                memory::dims a = dims_of(graph.type(node.inputs[0]).shape);
                memory::dims b = dims_of(graph.type(node.inputs[1]).shape);
                memory::dims out = dims_of(node.type.shape);
                if (out.size() > 6) {
                    return false;  // beyond what we ask of oneDNN: the reference kernel runs
                }
                a.insert(a.begin(), out.size() - a.size(), 1);
                b.insert(b.begin(), out.size() - b.size(), 1);
                const memory::desc ma = plain(a);
                const memory::desc mb = plain(b);
                const memory::desc mo = plain(out);
                const dnnl::matmul::primitive_desc pd(
                    dnnl::matmul::desc(plain(a, operand), plain(b, operand), mo), engine);
                if (!fast(pd)) {
                    return false;
                }
                add_kernel(id, dnnl::matmul(pd), pd.impl_info_str(),
                           {role(ma, pd.src_desc(), DNNL_ARG_SRC, node.inputs[0], false),
                           role(mb, pd.weights_desc(), DNNL_ARG_WEIGHTS, node.inputs[1], false),
                           role(mo, mo, DNNL_ARG_DST, id, true)});
                return true;
            }
            default:
                return false;
        }
    }

    // Adds node `id`'s fastest exact kernel: BF16 operands where they are exact in BF16 and the CPU multiplies BF16,
    // FP32 otherwise; none where oneDNN implements neither (a broadcast pattern its matmul lacks, say).
    void add(const ir::Graph& graph, NodeId id, bool native_bf16) {
        if (native_bf16 && operands_exact_in_bf16(graph, graph.node(id))) {
            try {
                if (add(graph, id, memory::data_type::bf16)) {
                    bf16_nodes.insert(id.index);
                    return;
                }
            } catch (const dnnl::error&) {
                // no BF16 kernel for this shape: FP32 below
            }
        }
        try {
            add(graph, id, memory::data_type::f32);
        } catch (const dnnl::error&) {
            // the reference kernel runs
        }
    }
};

OneDnnKernels::OneDnnKernels(const ir::Graph& graph, const std::vector<bool>& live) : impl_(std::make_unique<Impl>()) {
    const bool native_bf16 = cpu_has_native_bf16();
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        if (live[i]) {
            impl_->add(graph, NodeId{i}, native_bf16);
        }
    }
}

OneDnnKernels::~OneDnnKernels() = default;

OneDnnKernels::BlockedFit OneDnnKernels::blocked_fit(NodeId id) const { return impl_->blocked_fit(id); }

void OneDnnKernels::use_blocked(const std::vector<bool>& blocked) { impl_->use_blocked(blocked); }

bool OneDnnKernels::has(NodeId id) const { return impl_->kernels.contains(id.index); }

std::size_t OneDnnKernels::count() const { return impl_->kernels.size(); }

std::size_t OneDnnKernels::shared_copy_count() const {
    impl_->plan_once();
    return impl_->copies.size();
}

bool OneDnnKernels::reads_bf16(NodeId id) const { return impl_->bf16_nodes.contains(id.index); }

std::string OneDnnKernels::implementation(NodeId id) const {
    const auto it = impl_->kernels.find(id.index);
    return it == impl_->kernels.end() ? std::string() : it->second.implementation;
}

void OneDnnKernels::begin_step() { ++impl_->step; }

std::vector<OneDnnKernels::Reorder> OneDnnKernels::reorders(NodeId id) const {
    Impl& im = *impl_;
    im.plan_once();
    std::vector<Reorder> out;
    const auto it = im.kernels.find(id.index);
    if (it == im.kernels.end()) {
        return out;
    }
    const std::size_t output = it->second.roles.size() - 1;
    for (std::size_t r = 0; r <= output; ++r) {
        const Impl::Role& role = it->second.roles[r];
        if (!role.reorder) {
            continue;
        }
        if (role.shared >= 0) {  // filled by the first kernel reading the copy; kernels are in run order
            const auto first = std::find_if(im.kernels.begin(), im.kernels.end(), [&](const auto& entry) {
                return std::any_of(entry.second.roles.begin(), entry.second.roles.end(),
                                   [&](const Impl::Role& x) { return x.shared == role.shared; });
            });
            if (first != it) {
                continue;
            }
        }
        const std::size_t user = role.user.get_size(), inner = role.inner.get_size();
        out.push_back({role.id, r == output ? inner : user, r == output ? user : inner, role.shared >= 0,
                       element_count(role.user) * (element_bytes(role.user) + element_bytes(role.inner))});
    }
    return out;
}

void OneDnnKernels::time_reorders() { impl_->timing_reorders = true; }

double OneDnnKernels::reorder_seconds(NodeId id) const {
    const auto it = impl_->kernels.find(id.index);
    return it == impl_->kernels.end() ? 0.0 : it->second.reorder_seconds;
}

std::uint16_t* OneDnnKernels::bf16_copy(NodeId id) const {
    Impl& im = *impl_;
    im.plan_once();
    const int c = im.sole_copy_of(id);
    if (c < 0 || !im.copies[static_cast<std::size_t>(c)].bf16_as_buffer) {
        return nullptr;
    }
    // The arena is floats; the kernels read a copy's bytes as BF16 through oneDNN (its memory objects take untyped
    // handles), and the producer writes them as BF16 through this pointer alone.
    return reinterpret_cast<std::uint16_t*>(im.copies_arena.data() +
                                            im.copies[static_cast<std::size_t>(c)].offset_floats);
}

void OneDnnKernels::bf16_copy_written(NodeId id) {
    Impl& im = *impl_;
    const int c = im.sole_copy_of(id);
    DOJO_CHECK(c >= 0 && im.copies[static_cast<std::size_t>(c)].bf16_as_buffer)
        << "node " << id.index << " has no BF16 copy to write";
    im.copies[static_cast<std::size_t>(c)].step = im.step;
}

void OneDnnKernels::run(NodeId id, std::vector<ir::Buffer<float>>& values) const {
    Impl& im = *impl_;
    im.plan_once();
    Impl::Kernel& k = im.kernels.at(id.index);
    const std::size_t output = k.roles.size() - 1;
    // Memory objects only wrap the executor's buffers, the scratch and the shared copies (no allocation of data).
    std::unordered_map<int, memory> args;
    std::size_t next_scratch = 0;
    std::optional<memory> inner_output;
    for (std::size_t r = 0; r <= output; ++r) {
        const Impl::Role& role = k.roles[r];
        memory user(role.user, im.engine, values[role.id.index].data.data());
        if (!role.reorder) {
            args.emplace(role.arg, user);
            continue;
        }
        if (role.shared >= 0) {
            Impl::SharedCopy& copy = im.copies[static_cast<std::size_t>(role.shared)];
            memory inner(role.inner, im.engine, im.copies_arena.data() + copy.offset_floats);
            if (copy.step != im.step) {  // the first reader this step
                im.run_reorder(*role.reorder, user, inner, k);
                copy.step = im.step;
            }
            args.emplace(role.arg, inner);
            continue;
        }
        memory inner(role.inner, im.engine, im.scratch[next_scratch++].data());
        if (r == output) {
            inner_output = inner;
        } else {
            im.run_reorder(*role.reorder, user, inner, k);
        }
        args.emplace(role.arg, inner);
    }
    k.primitive.execute(im.stream, args);
    if (inner_output) {
        const Impl::Role& out = k.roles[output];
        memory user(out.user, im.engine, values[id.index].data.data());
        im.run_reorder(*out.reorder, *inner_output, user, k);
    }
    im.stream.wait();
}

}  // namespace dojo::runtime
