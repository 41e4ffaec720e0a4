#include "dojo/runtime/executor.h"

#include <algorithm>

#include "dojo/ir/interpreter.h"

namespace dojo::runtime {

Executor::Executor(const ir::Graph& graph) : graph_(graph) {
    values_.reserve(graph.size());
    for (std::uint32_t i = 0; i < graph.size(); ++i) {
        values_.emplace_back(graph.node(ir::NodeId{i}).type.shape);
    }
}

void Executor::run() {
    for (std::uint32_t i = 0; i < graph_.size(); ++i) {
        ir::evaluate_node(graph_, ir::NodeId{i}, values_);  // leaves are skipped: their values are bound
    }
}

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
