// ONNX import of the networks PyTorch users bring (ResNet-18/50 with BatchNormalization in training mode, a ViT and
// a causal GPT-style transformer), checked against PyTorch itself: models/export_model.py --reference writes what
// PyTorch computes on one batch (train-mode logits, the gradient of the cross-entropy with respect to the first
// parameter, and eval-mode logits after that forward updated the running statistics), and the imported graph,
// evaluated by the reference interpreter in double with autodiff, must reproduce all three (PyTorch computes in
// float64 from the same float32 weights, so the comparison is tight and tests the import, not float rounding; what
// remains is the file's float32 constants, e.g. BatchNorm's epsilon and 1/sqrt(head width), ~1e-7 relative).
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "dojo/autodiff/grad.h"
#include "dojo/autodiff/loss.h"
#include "dojo/frontend/onnx.h"
#include "dojo/ir/interpreter.h"

namespace dojo {
namespace {

namespace fs = std::filesystem;
using frontend::ImportMode;
using frontend::OnnxModel;
using ir::NodeId;

struct ModelCase {
    std::string model;
    int opset;
    std::string first_parameter;  // PyTorch's next(model.parameters())
    std::vector<std::int64_t> sample;
    std::string export_options = "";
    /// Eval-mode logits: a model whose BatchNorm momentum is far from 1 - a float32 (MNASNet's 3e-4 is stored as
    /// 1 - 0.9997f, 7e-5 off) carries that difference into its running statistics.
    double eval_tolerance = 1e-6;
};

std::vector<double> read_doubles(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::vector<double> values(bytes.size() / sizeof(double));
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(double));
    return values;
}

// Largest |a - b| relative to the largest |b| (a scale-aware comparison for whole tensors).
double relative_error(std::span<const double> a, std::span<const double> b) {
    double worst = 0;
    double scale = 1e-12;
    for (std::size_t i = 0; i < b.size(); ++i) {
        worst = std::max(worst, std::fabs(a[i] - b[i]));
        scale = std::max(scale, std::fabs(b[i]));
    }
    return worst / scale;
}

ir::Bindings<double> initial_bindings(const OnnxModel& m) {
    ir::Bindings<double> bind;
    for (const auto& [id, values] : m.initial_values) {
        bind[id] = ir::Buffer<double>(m.graph.type(id).shape, std::vector<double>(values.begin(), values.end()));
    }
    return bind;
}

class OnnxModels : public testing::TestWithParam<ModelCase> {};

TEST_P(OnnxModels, ImportReproducesPyTorchForwardGradientAndRunningStatistics) {
    const ModelCase& c = GetParam();
    // One directory per case (ctest runs cases of one model side by side) and per process.
    const fs::path dir = fs::temp_directory_path() /
                         ("dojo-onnx-models-" + c.model + std::to_string(c.opset) + "-" +
                          std::to_string(std::hash<std::string>{}(c.export_options)) + "-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path onnx_path = dir / "model.onnx";
    const fs::path reference_path = dir / "model.ref";
    const std::string command = "/usr/bin/python3 " DOJO_MODELS_DIR "/export_model.py --model " + c.model +
                                " --opset " + std::to_string(c.opset) + " " + c.export_options + " --out " + onnx_path.string() +
                                " --reference " + reference_path.string() + " > " + (dir / "export.log").string() +
                                " 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;

    std::int64_t sample_numel = 1;
    for (const std::int64_t d : c.sample) {
        sample_numel *= d;
    }
    const std::vector<double> reference = read_doubles(reference_path);
    const std::size_t n_x = static_cast<std::size_t>(2 * sample_numel);
    const std::vector<double> x(reference.begin(), reference.begin() + static_cast<std::ptrdiff_t>(n_x));

    // Training mode: logits and the gradient of the mean cross-entropy for labels (0, 1).
    OnnxModel train = frontend::import_onnx(onnx_path.string(), 2, ImportMode::Training);
    ir::Graph& g = train.graph;
    const NodeId target = g.add_input("target", {ir::DType::F32, ir::Shape{2, 10}});
    const NodeId loss = autodiff::softmax_cross_entropy(g, train.output, target);
    NodeId first;
    for (const NodeId p : g.parameters()) {
        if (g.node(p).name == c.first_parameter) {
            first = p;
        }
    }
    ASSERT_TRUE(first.valid()) << c.first_parameter;
    const NodeId grad = autodiff::gradients(g, loss, std::vector<NodeId>{first}).front();
    ir::Bindings<double> bind = initial_bindings(train);
    bind[train.input] = ir::Buffer<double>(g.type(train.input).shape, x);
    std::vector<double> one_hot(20, 0.0);
    one_hot[0] = 1.0;   // sample 0: class 0
    one_hot[11] = 1.0;  // sample 1: class 1
    bind[target] = ir::Buffer<double>(ir::Shape{2, 10}, one_hot);
    const std::vector<ir::Buffer<double>> values = ir::evaluate(g, bind);

    std::size_t at = n_x;
    // The reference is logits, the first parameter's gradient and eval logits: a size that disagrees (another
    // first parameter than the case names) fails here rather than reading past the end.
    ASSERT_EQ(reference.size(), n_x + 20 + values[grad.index].data.size() + 20)
        << "the reference's gradient is not " << c.first_parameter << "'s (PyTorch's first parameter)";
    auto next = [&](std::size_t n) {
        std::vector<double> part(reference.begin() + static_cast<std::ptrdiff_t>(at),
                                reference.begin() + static_cast<std::ptrdiff_t>(at + n));
        at += n;
        return part;
    };
    const std::vector<double> torch_logits = next(20);
    const std::vector<double> torch_grad = next(values[grad.index].data.size());
    const std::vector<double> torch_eval_logits = next(20);
    ASSERT_EQ(at, reference.size()) << "the reference holds what the test expects";
    EXPECT_LT(relative_error(values[train.output.index].data, torch_logits), 1e-6);
    EXPECT_LT(relative_error(values[grad.index].data, torch_grad), 1e-5);

    // Inference mode with the running statistics the training forward produced, as model.eval() after it.
    OnnxModel eval = frontend::import_onnx(onnx_path.string(), 2, ImportMode::Inference);
    EXPECT_TRUE(eval.state_updates.empty());
    ir::Bindings<double> eval_bind = initial_bindings(eval);
    eval_bind[eval.input] = ir::Buffer<double>(eval.graph.type(eval.input).shape, x);
    for (const frontend::StateUpdate& u : train.state_updates) {
        const std::string& name = g.node(u.target).name;
        for (const NodeId s : eval.graph.states()) {
            if (eval.graph.node(s).name == name) {
                eval_bind[s] = values[u.value.index];
            }
        }
    }
    EXPECT_EQ(train.state_updates.size(), eval.graph.states().size());
    const std::vector<ir::Buffer<double>> eval_values = ir::evaluate(eval.graph, eval_bind);
    EXPECT_LT(relative_error(eval_values[eval.output.index].data, torch_eval_logits), c.eval_tolerance);
    fs::remove_all(dir);
}

const std::vector<std::int64_t> kImage{1, 28, 28};
const std::vector<std::int64_t> kRgb64{3, 64, 64};
const std::vector<std::int64_t> kRgb224{3, 224, 224};
const std::vector<std::int64_t> kRgb96{3, 96, 96};  // Inception v3 needs 75 pixels or more
// ResNets also at 48x48, where the last stage is 2x2 rather than 1x1 (BatchNorm then sees 8 values per channel, not 2).
const std::vector<std::int64_t> kLargerImage{1, 48, 48};
INSTANTIATE_TEST_SUITE_P(PyTorch, OnnxModels,
                         testing::Values(ModelCase{"pools", 13, "conv1.weight", kImage},
                                         // torchvision's zoo (models/zoo.py tv_*: dropout at p = 0), 3x64x64.
                                         ModelCase{"tv_squeezenet1_1", 13, "features.0.weight", kRgb64},
                                         ModelCase{"tv_mobilenet_v2", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_mobilenet_v3_small", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_mnasnet0_5", 13, "layers.0.weight", kRgb64, "", 1e-4},
                                         ModelCase{"tv_shufflenet_v2_x0_5", 13, "conv1.0.weight", kRgb64},
                                         ModelCase{"tv_regnet_y_400mf", 13, "stem.0.weight", kRgb64},
                                         ModelCase{"tv_efficientnet_b0", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_googlenet", 13, "conv1.conv.weight", kRgb64},
                                         ModelCase{"tv_densenet121", 13, "features.conv0.weight", kRgb64},
                                         ModelCase{"tv_convnext_tiny", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_resnext50_32x4d", 13, "conv1.weight", kRgb64},
                                         ModelCase{"tv_wide_resnet50_2", 13, "conv1.weight", kRgb64},
                                         ModelCase{"tv_regnet_x_400mf", 13, "stem.0.weight", kRgb64},
                                         ModelCase{"tv_efficientnet_v2_s", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_vit_b_16", 13, "class_token", kRgb64},
                                         ModelCase{"tv_inception_v3", 13, "Conv2d_1a_3x3.conv.weight", kRgb96},
                                         ModelCase{"tv_swin_t", 13, "features.0.0.weight", kRgb64},
                                         ModelCase{"tv_vgg11", 13, "features.0.weight", kRgb224},
                                         ModelCase{"tv_alexnet", 13, "features.0.weight", kRgb224},
                                         ModelCase{"mobile", 13, "stem.0.weight", kImage},
                                         ModelCase{"mobile", 17, "stem.0.weight", kImage},
                                         ModelCase{"resnet18", 13, "conv1.weight", kImage},
                                         ModelCase{"resnet18", 13, "conv1.weight", kLargerImage, "--image-size 48"},
                                         ModelCase{"resnet18", 15, "conv1.weight", kLargerImage, "--image-size 48"},
                                         ModelCase{"resnet50", 13, "conv1.weight", kLargerImage, "--image-size 48"},
                                         ModelCase{"vit", 13, "cls", kImage},
                                         ModelCase{"vit", 17, "cls", kImage},
                                         ModelCase{"gpt", 13, "pos", {28, 28}},
                                         ModelCase{"gpt", 17, "pos", {28, 28}},
                                         // Token ids in, nn.Embedding as Gather with data indices.
                                         ModelCase{"gpt_tokens", 13, "embed.weight", {16}},
                                         ModelCase{"gpt_tokens", 17, "embed.weight", {16}}),
                         [](const testing::TestParamInfo<ModelCase>& param_info) {
                             return param_info.param.model + "_opset" + std::to_string(param_info.param.opset) + "_" +
                                    std::to_string(param_info.param.sample.back()) + "px";
                         });

}  // namespace
}  // namespace dojo
