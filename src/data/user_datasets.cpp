// The user-data format (IDX files) and the synthetic dataset.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numbers>
#include <string>
#include <vector>

#include <unistd.h>

#include "dojo/data/dataset.h"
#include "dojo/data/idx.h"
#include "dojo/util/error.h"
#include "dojo/util/random.h"

namespace dojo::data {
namespace {

std::string find_file(const std::string& dir, const std::string& stem) {
    for (const std::string& name : {stem + ".idx", stem + ".idx.gz"}) {
        const std::string path = dir + "/" + name;
        if (std::filesystem::exists(path)) {
            return path;
        }
    }
    throw IoError("dataset file " + dir + "/" + stem + ".idx (or .idx.gz) is missing; an IDX dataset directory holds "
                  "train-images, train-labels, test-images and test-labels (see docs/training.md)");
}

}  // namespace

Dataset load_idx_dataset(const std::string& dir, Split split, std::size_t first) {
    const std::string prefix = split == Split::Train ? "train" : "test";
    const std::string images_path = find_file(dir, prefix + "-images");
    const std::string labels_path = find_file(dir, prefix + "-labels");
    const IdxArray images = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    if (images.dims.size() < 2) {
        throw IoError(images_path + " must be N x (sample dimensions...), got rank " + std::to_string(images.dims.size()));
    }
    if (labels.is_float || labels.dims.size() != 1 || labels.dims[0] != images.dims[0]) {
        throw IoError(labels_path + " must hold " + std::to_string(images.dims[0]) + " unsigned-byte labels, one per image");
    }
    Dataset dataset;
    dataset.name = dir + "/" + prefix;
    dataset.sample_shape = ir::Shape(std::vector<std::int64_t>(images.dims.begin() + 1, images.dims.end()));
    const std::size_t count = kept_samples(static_cast<std::size_t>(images.dims[0]), first);
    const auto kept_values = static_cast<std::ptrdiff_t>(count * static_cast<std::size_t>(dataset.sample_shape.numel()));
    if (images.is_float) {
        dataset.samples.assign(images.floats.begin(), images.floats.begin() + kept_values);
    } else {
        dataset.samples.resize(static_cast<std::size_t>(kept_values));
        std::transform(images.values.begin(), images.values.begin() + kept_values, dataset.samples.begin(),
                       [](std::uint8_t v) { return static_cast<float>(v) / 255.0f; });
    }
    dataset.labels.assign(labels.values.begin(), labels.values.begin() + static_cast<std::ptrdiff_t>(count));
    dataset.classes = dataset.labels.empty() ? 0 : *std::max_element(dataset.labels.begin(), dataset.labels.end()) + 1;
    return dataset;
}

namespace {

// Synthetic data held in memory: a request for more than the machine has is refused before it is attempted.
void require_memory_for(std::size_t samples, std::int64_t floats_per_sample, const std::string& what) {
    const double bytes = static_cast<double>(samples) * static_cast<double>(floats_per_sample) * sizeof(float);
    const double physical = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
    if (bytes > physical / 2) {
        throw UsageError(what + ": " + std::to_string(samples) + " samples of " + std::to_string(floats_per_sample) +
                         " values would take " + std::to_string(std::llround(bytes / 1e9)) +
                         " GB, more than half of this machine's " + std::to_string(std::llround(physical / 1e9)) + " GB; use fewer samples (--train-limit, --test-limit) or "
                         "smaller ones (--sample-shape)");
    }
}

// The 65,536 quantiles of N(0, 1) at the midpoints (i + 1/2) / 65,536: Newton's method on the distribution function
// (0.5 erfc(-x / sqrt 2)), each from its neighbour, the upper half the mirror of the lower (so they sum to exactly 0).
// Made once, on first use (about 10 ms).
const std::vector<float>& normal_quantiles() {
    static const std::vector<float> table = [] {
        constexpr std::size_t n = std::size_t{1} << 16;
        std::vector<float> q(n);
        double x = 0;
        for (std::size_t i = n / 2; i-- > 0;) {
            const double p = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
            for (int step = 0; step < 60; ++step) {
                const double density = std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi);
                const double dx = (0.5 * std::erfc(-x / std::numbers::sqrt2) - p) / density;
                x -= dx;
                if (std::fabs(dx) < 1e-13) {
                    break;
                }
            }
            q[i] = static_cast<float>(x);
            q[n - 1 - i] = -q[i];
        }
        return q;
    }();
    return table;
}

// Values [first, first + out.size()) of the normal stream from `seed`: value v is the quantile (normal_quantiles) that
// bits 16 (v % 4) up of SplitMix64 draw v / 4 pick. A table look-up, not Box-Muller's logarithm, cosine and sine:
// a batch is made while the step runs, on a core the step wants, and those cost about 0.65 ms per 64 MNIST-sized
// samples.
void normal_values(std::uint64_t seed, std::uint64_t first, std::span<float> out) {
    const std::vector<float>& quantile = normal_quantiles();
    std::uint64_t v = first;
    SplitMix64 random = SplitMix64::after(seed, v / 4);
    std::uint64_t draw = random.next();
    for (std::size_t k = 0; k < out.size(); ++k, ++v) {
        if (v % 4 == 0 && k > 0) {
            draw = random.next();
        }
        out[k] = quantile[(draw >> (16 * (v % 4))) & 0xFFFF];
    }
}

}  // namespace

Dataset make_synthetic(std::size_t samples, const ir::Shape& sample_shape, int classes, std::uint64_t seed) {
    if (classes < 1 || classes > 256) {
        throw UsageError("synthetic data needs 1..256 classes, got " + std::to_string(classes));
    }
    require_memory_for(samples, 1, "synthetic labels");
    require_memory_for(1, sample_shape.numel(), "synthetic data of shape " + sample_shape.to_string());  // a batch
    Dataset dataset;
    dataset.name = "synthetic";
    dataset.sample_shape = sample_shape;
    dataset.classes = classes;
    const auto numel = static_cast<std::uint64_t>(sample_shape.numel());
    dataset.make = [seed, numel](std::size_t index, std::span<float> out) {
        normal_values(seed, index * numel, out.first(static_cast<std::size_t>(numel)));
    };
    const std::uint64_t values = samples * numel;
    SplitMix64 random = SplitMix64::after(seed, (values + 3) / 4);  // past every value's draw
    dataset.labels.resize(samples);
    for (std::uint32_t& label : dataset.labels) {
        label = static_cast<std::uint32_t>(random.below(static_cast<std::uint64_t>(classes)));
    }
    return dataset;
}

Dataset make_synthetic_tokens(std::size_t samples, std::int64_t sequence, int vocabulary, std::uint64_t seed) {
    if (sequence < 1 || vocabulary < 1) {
        throw UsageError("synthetic tokens need a sequence length and a vocabulary of at least 1");
    }
    require_memory_for(samples, 2 * sequence, "synthetic tokens");  // ids and labels
    Dataset dataset;
    dataset.name = "synthetic tokens";
    dataset.sample_shape = ir::Shape{sequence};
    dataset.classes = vocabulary;
    dataset.labels_per_sample = static_cast<std::size_t>(sequence);
    dataset.tokens = true;
    SplitMix64 random(seed);
    dataset.samples.resize(samples * static_cast<std::size_t>(sequence));
    for (float& id : dataset.samples) {
        id = static_cast<float>(random.below(static_cast<std::uint64_t>(vocabulary)));
    }
    dataset.labels.resize(dataset.samples.size());
    for (std::uint32_t& label : dataset.labels) {
        label = static_cast<std::uint32_t>(random.below(static_cast<std::uint64_t>(vocabulary)));
    }
    return dataset;
}

Dataset load_text(const std::string& path, std::int64_t sequence, Split split) {
    if (sequence < 1) {
        throw UsageError("text data needs a sequence length of at least 1, got " + std::to_string(sequence));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw IoError("cannot read the text file '" + path + "' (--data text --data-dir FILE names one file)");
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto length = static_cast<std::size_t>(sequence);
    // Sequences start every `sequence` bytes and need one byte more for their last label.
    const std::size_t sequences = bytes.size() > length ? (bytes.size() - 1) / length : 0;
    const std::size_t train = sequences * 9 / 10;
    if (train < 1 || train == sequences) {
        throw UsageError("the text file '" + path + "' has " + std::to_string(bytes.size()) + " bytes: too few for " +
                         "a sequence of " + std::to_string(sequence) + " tokens in both the train and the test " +
                         "split (90% / 10%); use a longer file or a shorter seq");
    }
    const std::size_t first = split == Split::Train ? 0 : train;
    const std::size_t count = split == Split::Train ? train : sequences - train;
    Dataset dataset;
    dataset.name = path;
    dataset.sample_shape = ir::Shape{sequence};
    dataset.classes = 256;
    dataset.labels_per_sample = length;
    dataset.tokens = true;
    dataset.samples.resize(count * length);
    dataset.labels.resize(count * length);
    for (std::size_t i = 0; i < count * length; ++i) {
        const std::size_t at = first * length + i;
        dataset.samples[i] = static_cast<float>(static_cast<unsigned char>(bytes[at]));
        dataset.labels[i] = static_cast<unsigned char>(bytes[at + 1]);
    }
    return dataset;
}

}  // namespace dojo::data
