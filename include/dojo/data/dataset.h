/** \file
 * In-memory labelled datasets for classification, and Fashion-MNIST as shipped by Debian's
 * dataset-fashion-mnist package (IDX gz files in /usr/share/datasets/fashion-mnist).
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dojo/ir/shape.h"

namespace dojo::data {

/// N samples of `sample_shape` (row-major, float) with a class label each.
struct Dataset {
    std::string name;
    ir::Shape sample_shape;          ///< e.g. [1, 28, 28]
    int classes = 0;
    std::vector<float> samples;      ///< N * sample_shape.numel()
    std::vector<std::uint8_t> labels;  ///< N, each < classes

    std::size_t size() const { return labels.size(); }
    std::int64_t sample_numel() const { return sample_shape.numel(); }
};

enum class Split : std::uint8_t { Train, Test };

/// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST from `dir` (train: 60,000 samples, test: 10,000; 10 classes, samples [1, 28, 28]). Pixels are
/// scaled to [0, 1] and normalised with the training set's mean 0.2860 and standard deviation 0.3530, as
/// torchvision users commonly do. Throws IoError naming the missing or bad file and how to get it.
Dataset load_fashion_mnist(const std::string& dir, Split split);

}  // namespace dojo::data
