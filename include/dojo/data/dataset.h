/** \file
 * In-memory labelled datasets for classification (and byte-level text for language models), and Fashion-MNIST as
 * shipped by Debian's dataset-fashion-mnist package (IDX gz files in /usr/share/datasets/fashion-mnist).
 */
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "dojo/ir/shape.h"

namespace dojo::data {

/// N samples of `sample_shape` (row-major, float) with labels_per_sample class labels each.
struct Dataset {
    std::string name;
    ir::Shape sample_shape;          ///< e.g. [1, 28, 28]; a language model's: [sequence length] of token ids
    int classes = 0;                 ///< classes, or a language model's vocabulary
    std::vector<float> samples;      ///< N * sample_shape.numel(); empty where `make` makes them
    /// Where samples are made on demand instead of held (synthetic data): writes sample `index`'s values to `out`
    /// (sample_numel() of them). copy_sample reads either.
    std::function<void(std::size_t index, std::span<float> out)> make;
    /// N * labels_per_sample, each < classes: one label per image, or a sequence's next token at every position.
    std::vector<std::uint32_t> labels;
    std::size_t labels_per_sample = 1;
    bool tokens = false;             ///< samples are token ids (a language model's), not pixel or feature values
    /// Labels are 0 or 1 (classes = 2), labels_per_sample of them, one per output of the model: independent yes/no
    /// targets (an occupancy grid's voxels), trained by sigmoid binary cross-entropy, scored by IoU.
    bool binary = false;

    std::size_t size() const { return labels.size() / labels_per_sample; }
    std::int64_t sample_numel() const { return sample_shape.numel(); }
};

enum class Split : std::uint8_t { Train, Test };

/// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// A labelled dataset from IDX files in `dir` (the user-data format; docs/training.md):
///   train-images.idx, train-labels.idx, test-images.idx, test-labels.idx   (each may also end in .gz)
/// Images: N x d1 x ... float32 (used as they are) or unsigned bytes (scaled to [0, 1]); the sample shape is
/// d1 x ... (a rank-2 image file gives flat samples). Labels: N unsigned bytes; classes = largest label + 1.
/// `first` > 0: only the first that many samples are kept (the rest are read but never converted or held).
/// Throws IoError naming the missing or inconsistent file.
Dataset load_idx_dataset(const std::string& dir, Split split, std::size_t first = 0);

/// The samples a loader keeps of `available`: the first `first` of them, or all when `first` is 0 or more.
inline std::size_t kept_samples(std::size_t available, std::size_t first) {
    return first == 0 || first > available ? available : first;
}

/// Sample `index`'s values (dataset.sample_numel() of them) into `out`: held ones copied, or made (Dataset::make).
void copy_sample(const Dataset& dataset, std::size_t index, std::span<float> out);

/// `samples` seeded random samples of `sample_shape` with labels in [0, classes): normal N(0, 1) values to 16 bits
/// (each one of the distribution's 65,536 midpoint quantiles, equally likely), labels uniform, independent of each
/// other. For benchmarks and tests that need data of a given size, not learnable data. The values are one stream
/// (SplitMix64 from `seed`, four values a draw, sample after sample, the labels after the last sample), made on
/// demand where a batch reads them, at a table look-up a value: only the labels are held.
Dataset make_synthetic(std::size_t samples, const ir::Shape& sample_shape, int classes, std::uint64_t seed);

/// A text file as byte-level language-model data: the file's bytes are token ids (vocabulary 256), cut into
/// sequences of `sequence` tokens, each labelled with the tokens that follow at every position (the sequence shifted
/// by one). Sequences start every `sequence` bytes; the first 90% of the sequences are the train split, the rest the
/// test split. Throws IoError naming the file if it cannot be read, and UsageError if it is too short for a sequence
/// in each split.
Dataset load_text(const std::string& path, std::int64_t sequence, Split split);

/// `samples` seeded random token sequences of `sequence` ids in [0, vocabulary), labelled with random next tokens:
/// a language model's synthetic data for benchmarks (not learnable).
Dataset make_synthetic_tokens(std::size_t samples, std::int64_t sequence, int vocabulary, std::uint64_t seed);

/// Fashion-MNIST from `dir` (train: 60,000 samples, test: 10,000; 10 classes, samples [1, 28, 28]). Pixels are
/// scaled to [0, 1] and normalised with the training set's mean 0.2860 and standard deviation 0.3530, as
/// torchvision users commonly do. `first` > 0: only the first that many samples are kept (a run limited to them
/// holds no more). Throws IoError naming the missing or bad file and how to get it.
Dataset load_fashion_mnist(const std::string& dir, Split split, std::size_t first = 0);

}  // namespace dojo::data
