#include <filesystem>

#include "dojo/data/dataset.h"
#include "dojo/data/idx.h"
#include "dojo/util/error.h"

namespace dojo::data {
namespace {

constexpr float kMean = 0.2860f;
constexpr float kStd = 0.3530f;

}  // namespace

Dataset load_fashion_mnist(const std::string& dir, Split split, std::size_t first) {
    const std::string prefix = split == Split::Train ? "train" : "t10k";
    const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
    const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
    for (const std::string& path : {images_path, labels_path}) {
        if (!std::filesystem::exists(path)) {
            throw IoError("Fashion-MNIST file " + path + " is missing; install Debian's package "
                          "(apt-get install dataset-fashion-mnist, or run scripts/setup.sh) or point --data-dir at a "
                          "directory holding the four *-idx*-ubyte.gz files");
        }
    }
    const IdxArray images = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28) {
        throw IoError(images_path + " does not hold 28x28 images");
    }
    if (labels.dims.size() != 1 || labels.dims[0] != images.dims[0]) {
        throw IoError(labels_path + " holds " + std::to_string(labels.dims.empty() ? 0 : labels.dims[0]) +
                      " labels for " + std::to_string(images.dims[0]) + " images");
    }
    Dataset dataset;
    dataset.name = "fashion-mnist/" + prefix;
    dataset.sample_shape = ir::Shape{1, 28, 28};
    dataset.classes = 10;
    const std::size_t count = kept_samples(static_cast<std::size_t>(images.dims[0]), first);
    dataset.samples.resize(count * 28 * 28);
    for (std::size_t i = 0; i < dataset.samples.size(); ++i) {
        dataset.samples[i] = (static_cast<float>(images.values[i]) / 255.0f - kMean) / kStd;
    }
    dataset.labels.assign(labels.values.begin(), labels.values.begin() + static_cast<std::ptrdiff_t>(count));
    for (const std::uint32_t label : dataset.labels) {
        if (label >= static_cast<std::uint32_t>(dataset.classes)) {
            throw IoError(labels_path + " holds label " + std::to_string(label) + "; Fashion-MNIST has 10 classes");
        }
    }
    return dataset;
}

}  // namespace dojo::data
