// Gradient buckets for the data-parallel all-reduce (gradient_buckets.h).
#include "dojo/compiler/gradient_buckets.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "dojo/util/error.h"

namespace dojo::compiler {

std::size_t bucket_bytes_from_mib(double mib) {
    if (!(mib > 0) || mib > 1e6) {  // also NaN
        std::ostringstream text;
        text << "--bucket-mib must be a positive size in MiB (at most 1000000), got " << mib;
        throw UsageError(text.str());
    }
    return static_cast<std::size_t>(std::ceil(mib * 1024 * 1024));
}

std::vector<GradientBucket> cut_gradient_buckets(std::span<const std::size_t> sizes,
                                                 std::span<const std::size_t> ready_order, std::size_t bucket_bytes) {
    if (bucket_bytes < sizeof(float)) {
        throw UsageError("the gradient bucket size must be at least 4 bytes (one FP32 value); got " +
                         std::to_string(bucket_bytes));
    }
    const std::size_t limit = bucket_bytes / sizeof(float);
    std::vector<bool> seen(sizes.size(), false);
    std::vector<GradientBucket> buckets;
    for (const std::size_t k : ready_order) {
        if (k >= sizes.size() || seen[k]) {
            throw Error("gradient buckets: the ready order names gradient " + std::to_string(k) + " of " +
                        std::to_string(sizes.size()) + (k < sizes.size() ? " twice" : ""));
        }
        seen[k] = true;
        if (buckets.empty() || (buckets.back().elements > 0 && buckets.back().elements + sizes[k] > limit)) {
            buckets.emplace_back();
        }
        buckets.back().gradients.push_back(k);
        buckets.back().elements += sizes[k];
    }
    return buckets;
}

std::vector<std::size_t> gradient_ready_order(const autodiff::TrainingGraph& step) {
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < step.gradients.size(); ++k) {
        if (step.gradients[k].valid()) {
            order.push_back(k);
        }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return step.gradients[a].index < step.gradients[b].index;
    });
    return order;
}

std::vector<std::size_t> gradient_sizes(const autodiff::TrainingGraph& step) {
    std::vector<std::size_t> sizes;
    for (const ir::NodeId grad : step.gradients) {
        sizes.push_back(grad.valid() ? static_cast<std::size_t>(step.graph.type(grad).shape.numel()) : 0);
    }
    return sizes;
}

}  // namespace dojo::compiler
