#include "dojo/runtime/executor.h"

#include <algorithm>

#include "dojo/ir/interpreter.h"
#include "dojo/runtime/onednn_kernels.h"

namespace dojo::runtime {

std::string_view to_string(Kernels kernels) { return kernels == Kernels::Fast ? "fast" : "reference"; }

Executor::Executor(const ir::Graph& graph, ExecutorOptions options)
    : graph_(graph), release_after_(graph.size()), pooled_(graph.size(), false), size_class_(graph.size(), 0) {
    const std::uint32_t n = static_cast<std::uint32_t>(graph.size());
    std::vector<bool> kept(n, false);
    for (const ir::NodeId id : graph.outputs()) {
        kept[id.index] = true;
    }
    for (const ir::NodeId id : options.keep) {
        kept[id.index] = true;
    }
    std::vector<std::uint32_t> last_use(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Node& node = graph.node(ir::NodeId{i});
        const bool leaf = node.op == ir::OpKind::Input || node.op == ir::OpKind::Parameter ||
                          node.op == ir::OpKind::State;
        pooled_[i] = options.reuse_buffers && !leaf && !kept[i];
        last_use[i] = i;
        for (const ir::NodeId input : node.inputs) {
            last_use[input.index] = i;
        }
    }
    values_.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const ir::Shape& shape = graph.node(ir::NodeId{i}).type.shape;
        if (!pooled_[i]) {
            values_.emplace_back(shape);
            continue;
        }
        values_.emplace_back(ir::Buffer<float>(shape, std::vector<float>{}));  // storage arrives from the pool
        release_after_[last_use[i]].push_back(i);
        const auto count = static_cast<std::size_t>(shape.numel());
        const auto found = std::find(sizes_.begin(), sizes_.end(), count);
        size_class_[i] = static_cast<std::uint32_t>(found - sizes_.begin());
        if (found == sizes_.end()) {
            sizes_.push_back(count);
        }
    }
    pool_.resize(sizes_.size());
    if (options.kernels == Kernels::Fast) {
        fast_ = std::make_unique<OneDnnKernels>(graph);
    }
}

Executor::~Executor() = default;

void Executor::run() {
    std::size_t pool_bytes = 0;  // storage handed out by the pool and not yet returned
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        const ir::NodeId id{i};
        if (pooled_[i]) {
            std::vector<std::vector<float>>& free = pool_[size_class_[i]];
            if (free.empty()) {
                values_[i].data.assign(sizes_[size_class_[i]], 0.0f);  // the first step grows the pool
            } else {
                values_[i].data = std::move(free.back());
                free.pop_back();
            }
            pool_bytes += values_[i].data.size() * sizeof(float);
            peak_pool_bytes_ = std::max(peak_pool_bytes_, pool_bytes);
        }
        if (fast_ && fast_->has(id)) {
            fast_->run(id, values_);
        } else {
            ir::evaluate_node(graph_, id, values_);  // leaves are skipped: their values are bound
        }
        for (const std::uint32_t done : release_after_[i]) {
            pool_bytes -= values_[done].data.size() * sizeof(float);
            pool_[size_class_[done]].push_back(std::move(values_[done].data));
            values_[done].data.clear();
        }
    }
}

std::size_t Executor::fast_kernel_count() const { return fast_ ? fast_->count() : 0; }

void Executor::apply(std::span<const autodiff::Assignment> assignments) {
    for (const autodiff::Assignment& a : assignments) {
        const std::vector<float>& from = values_[a.value.index].data;
        std::copy(from.begin(), from.end(), values_[a.target.index].data.begin());
    }
}

std::size_t Executor::bytes() const {
    std::size_t total = peak_pool_bytes_;
    for (std::uint32_t i = 0; i < values_.size(); ++i) {
        if (!pooled_[i]) {
            total += values_[i].data.size() * sizeof(float);
        }
    }
    return total;
}

}  // namespace dojo::runtime
