#include "dojo/data/batches.h"

#include <algorithm>
#include <numeric>

#include "dojo/util/check.h"
#include "dojo/util/random.h"

namespace dojo::data {

std::vector<std::uint32_t> epoch_order(std::uint64_t seed, std::uint64_t epoch, std::size_t size) {
    std::vector<std::uint32_t> order(size);
    std::iota(order.begin(), order.end(), 0u);
    SplitMix64 random(seed ^ (0xD1B54A32D192ED03ULL * (epoch + 1)));
    for (std::size_t i = size; i > 1; --i) {
        std::swap(order[i - 1], order[random.below(i)]);
    }
    return order;
}

std::vector<std::uint32_t> shard_order(std::span<const std::uint32_t> order, std::size_t global_batch, int ranks,
                                       int rank) {
    DOJO_CHECK(ranks > 0 && rank >= 0 && rank < ranks && global_batch % static_cast<std::size_t>(ranks) == 0)
        << "shard " << rank << " of " << ranks << " of batch " << global_batch;
    const std::size_t share = global_batch / static_cast<std::size_t>(ranks);
    const std::size_t batches = order.size() / global_batch;
    std::vector<std::uint32_t> shard;
    shard.reserve(batches * share);
    for (std::size_t b = 0; b < batches; ++b) {
        const auto first = order.begin() + static_cast<std::ptrdiff_t>(b * global_batch + static_cast<std::size_t>(rank) * share);
        shard.insert(shard.end(), first, first + static_cast<std::ptrdiff_t>(share));
    }
    return shard;
}

void copy_sample(const Dataset& dataset, std::size_t index, std::span<float> out) {
    const auto sample = static_cast<std::size_t>(dataset.sample_numel());
    DOJO_CHECK(out.size() >= sample) << "sample buffer too small";
    if (dataset.make) {
        dataset.make(index, out.first(sample));
        return;
    }
    std::copy_n(dataset.samples.begin() + static_cast<std::ptrdiff_t>(index * sample), sample, out.begin());
}

std::size_t fill_batch(const Dataset& dataset, std::span<const std::uint32_t> order, std::size_t batch,
                       std::size_t batch_size, std::span<float> samples, std::span<float> targets,
                       TargetLayout layout) {
    const auto sample = static_cast<std::size_t>(dataset.sample_numel());
    const auto classes = static_cast<std::size_t>(dataset.classes);
    const std::size_t rows = dataset.labels_per_sample;
    const std::size_t per_label = layout == TargetLayout::OneHot ? classes : 1;
    DOJO_CHECK(samples.size() >= batch_size * sample && targets.size() >= batch_size * rows * per_label)
        << "batch buffers too small";
    const std::size_t first = batch * batch_size;
    const std::size_t count = first >= order.size() ? 0 : std::min(batch_size, order.size() - first);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t index = order[first + i];
        copy_sample(dataset, index, samples.subspan(i * sample, sample));
        const std::uint32_t* labels = dataset.labels.data() + index * rows;
        if (layout == TargetLayout::ClassIds) {
            std::transform(labels, labels + rows, targets.begin() + static_cast<std::ptrdiff_t>(i * rows),
                           [](std::uint32_t label) { return static_cast<float>(label); });
            continue;
        }
        std::fill_n(targets.begin() + static_cast<std::ptrdiff_t>(i * rows * classes), rows * classes, 0.0f);
        for (std::size_t r = 0; r < rows; ++r) {
            targets[(i * rows + r) * classes + labels[r]] = 1.0f;
        }
    }
    return count;
}

}  // namespace dojo::data
