#include "dojo/runtime/executor.h"

#include <algorithm>

#include "dojo/ir/interpreter.h"
#include "dojo/runtime/onednn_kernels.h"

namespace dojo::runtime {

std::string_view to_string(Kernels kernels) { return kernels == Kernels::Fast ? "fast" : "reference"; }

Executor::Executor(const ir::Graph& graph, Kernels kernels) : graph_(graph) {
    values_.reserve(graph.size());
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        values_.emplace_back(graph.node(ir::NodeId{i}).type.shape);
    }
    if (kernels == Kernels::Fast) {
        fast_ = std::make_unique<OneDnnKernels>(graph);
    }
}

Executor::~Executor() = default;

void Executor::run() {
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        const ir::NodeId id{i};
        if (fast_ && fast_->has(id)) {
            fast_->run(id, values_);
        } else {
            ir::evaluate_node(graph_, id, values_);  // leaves are skipped: their values are bound
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
    std::size_t total = 0;
    for (const ir::Buffer<float>& b : values_) {
        total += b.data.size() * sizeof(float);
    }
    return total;
}

}  // namespace dojo::runtime
