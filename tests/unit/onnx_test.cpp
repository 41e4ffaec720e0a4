// ONNX import/export on models built here with the protobuf classes: what maps to what, and every error a user
// can meet (missing, corrupt or truncated files, opsets, unsupported ops, dynamic dimensions).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <numeric>

#include "dojo/frontend/onnx.h"
#include "dojo/ir/interpreter.h"
#include "dojo/util/error.h"
#include "onnx/onnx_pb.h"

namespace dojo::frontend {
namespace {

namespace fs = std::filesystem;

class OnnxFiles : public ::testing::Test {
protected:
    fs::path dir_ = fs::temp_directory_path() / ("dojo-onnx-test-" + std::to_string(::getpid()));
    void SetUp() override { fs::create_directories(dir_); }
    void TearDown() override { fs::remove_all(dir_); }

    // y = Gemm(x [N, 3], w [2, 3], b [2], transB=1, alpha=2) -> Relu
    static onnx::ModelProto gemm_model(std::int64_t opset = 13, const std::string& activation = "Relu") {
        onnx::ModelProto model;
        model.set_ir_version(8);
        model.add_opset_import()->set_version(opset);
        onnx::GraphProto* g = model.mutable_graph();
        onnx::ValueInfoProto* x = g->add_input();
        x->set_name("x");
        x->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
        x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param("batch");
        x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(3);
        auto add_init = [&](const std::string& name, std::vector<std::int64_t> dims, std::vector<float> values) {
            onnx::TensorProto* t = g->add_initializer();
            t->set_name(name);
            t->set_data_type(onnx::TensorProto::FLOAT);
            for (const std::int64_t d : dims) {
                t->add_dims(d);
            }
            for (const float v : values) {
                t->add_float_data(v);
            }
        };
        add_init("w", {2, 3}, {1, 2, 3, -1, 0, 1});
        add_init("b", {2}, {0.5f, -10});
        onnx::NodeProto* gemm = g->add_node();
        gemm->set_op_type("Gemm");
        gemm->set_name("fc");
        gemm->add_input("x");
        gemm->add_input("w");
        gemm->add_input("b");
        gemm->add_output("h");
        onnx::AttributeProto* trans = gemm->add_attribute();
        trans->set_name("transB");
        trans->set_i(1);
        onnx::AttributeProto* alpha = gemm->add_attribute();
        alpha->set_name("alpha");
        alpha->set_f(2.0f);
        onnx::NodeProto* act = g->add_node();
        act->set_op_type(activation);
        act->set_name("act");
        act->add_input("h");
        act->add_output("y");
        g->add_output()->set_name("y");
        return model;
    }
    // An opset-13 model with one FLOAT input "x" of [batch, dims...] and nothing else yet.
    static onnx::ModelProto model_with_input(const std::vector<std::int64_t>& dims) {
        onnx::ModelProto model;
        model.set_ir_version(8);
        model.add_opset_import()->set_version(13);
        onnx::ValueInfoProto* x = model.mutable_graph()->add_input();
        x->set_name("x");
        x->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
        auto* shape = x->mutable_type()->mutable_tensor_type()->mutable_shape();
        shape->add_dim()->set_dim_param("batch");
        for (const std::int64_t d : dims) {
            shape->add_dim()->set_dim_value(d);
        }
        return model;
    }
    std::string save(const onnx::ModelProto& model, const std::string& name) const {
        const std::string path = (dir_ / name).string();
        std::ofstream file(path, std::ios::binary);
        model.SerializeToOstream(&file);
        return path;
    }
    void expect_import_error(const std::string& path, const std::string& needle) const {
        try {
            import_onnx(path, 4);
            FAIL() << "expected ImportError: " << needle;
        } catch (const ImportError& error) {
            EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
        }
    }
};

TEST_F(OnnxFiles, GemmImportsWithItsAttributesAndParameters) {
    const OnnxModel m = import_onnx(save(gemm_model(), "gemm.onnx"), 4);
    EXPECT_EQ(m.opset, 13);
    EXPECT_EQ(m.graph.type(m.input).shape, (ir::Shape{4, 3}));
    EXPECT_EQ(m.graph.type(m.output).shape, (ir::Shape{4, 2}));
    ASSERT_EQ(m.graph.parameters().size(), 2u);
    EXPECT_EQ(m.graph.node(m.graph.parameters()[0]).name, "w");
    ir::Bindings<double> bind;
    bind[m.input] = ir::Buffer<double>(ir::Shape{4, 3}, {1, 1, 1, 0, 0, 0, 1, 0, 0, -1, -1, -1});
    for (const auto& [id, values] : m.initial_values) {
        bind[id] = ir::Buffer<double>(m.graph.type(id).shape, std::vector<double>(values.begin(), values.end()));
    }
    const std::vector<double> y = ir::evaluate(m.graph, bind)[m.output.index].data.to_vector();
    // relu(2 * x W^T + b): row (1,1,1): (2*6+0.5, 2*0-10) -> (12.5, 0); row (1,0,0): (2.5, 0); row (-1,-1,-1): 0, 0
    EXPECT_EQ(y, (std::vector<double>{12.5, 0, 0.5, 0, 2.5, 0, 0, 0}));
}

// The activation `op` (with extra constant scalar inputs `bounds`) applied to the Gemm's output, evaluated in double.
std::vector<double> activation_values(const OnnxModel& m) {
    ir::Bindings<double> bind;
    bind[m.input] = ir::Buffer<double>(ir::Shape{4, 3}, {1, 1, 1, 0, 0, 0, 1, 0, 0, -1, -1, -1});
    for (const auto& [id, values] : m.initial_values) {
        bind[id] = ir::Buffer<double>(m.graph.type(id).shape, std::vector<double>(values.begin(), values.end()));
    }
    return ir::evaluate(m.graph, bind)[m.output.index].data.to_vector();
}

// ONNX's own definitions (onnx.ai operator docs), applied to the Gemm's pre-activation values.
TEST_F(OnnxFiles, ClipMinMaxHardSigmoidAndHardSwishFollowOnnxsDefinitions) {
    const std::vector<double> h = activation_values(import_onnx(save(gemm_model(13, "Identity"), "id.onnx"), 4));
    ASSERT_EQ(h, (std::vector<double>{12.5, -10, 0.5, -10, 2.5, -12, -11.5, -10}));
    auto with_inputs = [&](const std::string& op, const std::vector<std::pair<std::string, float>>& scalars) {
        onnx::ModelProto model = gemm_model(13, op);
        onnx::NodeProto* act = model.mutable_graph()->mutable_node(1);
        for (const auto& [name, value] : scalars) {
            act->add_input(name);
            if (!name.empty()) {
                onnx::TensorProto* t = model.mutable_graph()->add_initializer();
                t->set_name(name);
                t->set_data_type(onnx::TensorProto::FLOAT);
                t->add_float_data(value);
            }
        }
        return activation_values(import_onnx(save(model, op + ".onnx"), 4));
    };
    const std::vector<double> relu6 = with_inputs("Clip", {{"lo", 0.0f}, {"hi", 6.0f}});
    const std::vector<double> clipped = with_inputs("Clip", {{"lo", -11.0f}, {"hi", 1.0f}});
    const std::vector<double> upper = with_inputs("Clip", {{"", 0.0f}, {"hi", 1.0f}});  // no lower bound
    const std::vector<double> maximum = with_inputs("Max", {{"c", -10.5f}});
    const std::vector<double> minimum = with_inputs("Min", {{"c", -10.5f}});
    const std::vector<double> hard_sigmoid = activation_values(import_onnx(save(gemm_model(13, "HardSigmoid"), "hs.onnx"), 4));
    const std::vector<double> hard_swish = activation_values(import_onnx(save(gemm_model(13, "HardSwish"), "hw.onnx"), 4));
    for (std::size_t i = 0; i < h.size(); ++i) {
        EXPECT_EQ(relu6[i], std::clamp(h[i], 0.0, 6.0)) << i;
        EXPECT_EQ(clipped[i], std::clamp(h[i], -11.0, 1.0)) << i;
        EXPECT_EQ(upper[i], std::min(h[i], 1.0)) << i;
        EXPECT_EQ(maximum[i], std::max(h[i], -10.5)) << i;
        EXPECT_EQ(minimum[i], std::min(h[i], -10.5)) << i;
        EXPECT_DOUBLE_EQ(hard_sigmoid[i], std::clamp(static_cast<double>(0.2f) * h[i] + 0.5, 0.0, 1.0)) << i;  // alpha: a float attribute
        EXPECT_DOUBLE_EQ(hard_swish[i], h[i] * std::clamp(h[i] / 6 + 0.5, 0.0, 1.0)) << i;
    }
}

// MaxPool with ceil_mode keeps the last partial window (PyTorch's and ONNX's output size) unless it would start in
// the trailing padding; expected values are PyTorch's.
TEST_F(OnnxFiles, CeilModeMaxPoolKeepsTheLastPartialWindow) {
    auto pooled = [&](std::int64_t size, std::int64_t k, std::int64_t stride, std::int64_t pad) {
        onnx::ModelProto model = model_with_input({1, size, size});
        onnx::GraphProto* g = model.mutable_graph();
        onnx::NodeProto* pool = g->add_node();
        pool->set_op_type("MaxPool");
        pool->add_input("x");
        pool->add_output("y");
        auto ints = [&](const char* name, std::vector<std::int64_t> values) {
            onnx::AttributeProto* a = pool->add_attribute();
            a->set_name(name);
            for (const std::int64_t v : values) {
                a->add_ints(v);
            }
        };
        ints("kernel_shape", {k, k});
        ints("strides", {stride, stride});
        ints("pads", {pad, pad, pad, pad});
        onnx::AttributeProto* ceil = pool->add_attribute();
        ceil->set_name("ceil_mode");
        ceil->set_i(1);
        g->add_output()->set_name("y");
        const OnnxModel m = import_onnx(save(model, "pool.onnx"), 1);
        std::vector<double> in(static_cast<std::size_t>(size * size));
        std::iota(in.begin(), in.end(), 0.0);
        ir::Bindings<double> bind;
        bind[m.input] = ir::Buffer<double>(ir::Shape{1, 1, size, size}, in);
        return std::pair{m.graph.type(m.output).shape, ir::evaluate(m.graph, bind)[m.output.index].data.to_vector()};
    };
    const auto [five, five_values] = pooled(5, 2, 2, 0);
    EXPECT_EQ(five, (ir::Shape{1, 1, 3, 3}));
    EXPECT_EQ(five_values, (std::vector<double>{6, 8, 9, 16, 18, 19, 21, 23, 24}));
    // The values PyTorch gives (torch.nn.functional.max_pool2d(torch.arange(36.).view(1, 1, 6, 6), 3, 2, 1,
    // ceil_mode=True)): 4 windows, the last partial.
    const auto [six, six_values] = pooled(6, 3, 2, 1);
    EXPECT_EQ(six, (ir::Shape{1, 1, 4, 4}));
    EXPECT_EQ(six_values, (std::vector<double>{7, 9, 11, 11, 19, 21, 23, 23, 31, 33, 35, 35, 31, 33, 35, 35}));
    // 5x5, k 2, s 2, pad 1: a 4th window would start in the trailing padding, so PyTorch keeps 3.
    const auto [padded, padded_values] = pooled(5, 2, 2, 1);
    EXPECT_EQ(padded, (ir::Shape{1, 1, 3, 3}));
    EXPECT_EQ(padded_values, (std::vector<double>{0, 2, 4, 10, 12, 14, 20, 22, 24}));
}

TEST_F(OnnxFiles, BadFilesAndUnsupportedContentAreNamed) {
    EXPECT_THROW(import_onnx((dir_ / "missing.onnx").string(), 4), IoError);  // util/files.h: what any reader says
    const std::string garbage = (dir_ / "garbage.onnx").string();
    std::ofstream(garbage) << "this is not a protobuf \xff\xff\xff";
    expect_import_error(garbage, "is not a valid ONNX model");
    std::string bytes;
    gemm_model().SerializeToString(&bytes);
    const std::string truncated = (dir_ / "truncated.onnx").string();
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    expect_import_error(truncated, "is not a valid ONNX model");
    expect_import_error(save(gemm_model(11), "old.onnx"), "opset 11; supported are 13..17");
    expect_import_error(save(gemm_model(13, "LSTM"), "lstm.onnx"),
                        "node 'act' (LSTM): op type LSTM (opset 13) is not supported; supported: Add, AveragePool, BatchNormalization");
    expect_import_error(save(gemm_model(13, "LeakyRelu"), "leaky.onnx"),
                        "op type LeakyRelu (opset 13) is not supported; instead: replace LeakyReLU by Max(x, alpha * x)");
    onnx::ModelProto dynamic = gemm_model();
    dynamic.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)
        ->set_dim_param("features");
    expect_import_error(save(dynamic, "dynamic.onnx"), "dimension 1 is not fixed");
}

// Gather with constant indices: a few are slices, many (Swin's relative position bias) one Gather of rows; both give
// data[..., indices[...], ...] on an inner axis, negative indices counted from the end (axis 0 of a table: the Swin
// case of tests/e2e/onnx_models_test.cpp).
TEST_F(OnnxFiles, GatherWithConstantIndicesOnInnerAxes) {
    for (const int axis : {1, 2}) {
        for (const std::size_t count : {std::size_t{3}, std::size_t{20}}) {
            onnx::ModelProto model = model_with_input({5, 4});  // [batch, 5, 4]
            onnx::GraphProto* g = model.mutable_graph();
            const std::int64_t extent = axis == 1 ? 5 : 4;
            onnx::TensorProto* ids = g->add_initializer();
            ids->set_name("ids");
            ids->set_data_type(onnx::TensorProto::INT64);
            ids->add_dims(static_cast<std::int64_t>(count));
            std::vector<std::int64_t> picked;
            for (std::size_t k = 0; k < count; ++k) {
                const std::int64_t i = static_cast<std::int64_t>((k * 7 + 2) % static_cast<std::size_t>(extent));
                picked.push_back(i);
                ids->add_int64_data(k % 2 ? i - extent : i);  // every other one negative
            }
            onnx::NodeProto* node = g->add_node();
            node->set_op_type("Gather");
            node->set_name("gather");
            node->add_input("x");
            node->add_input("ids");
            node->add_output("y");
            onnx::AttributeProto* a = node->add_attribute();
            a->set_name("axis");
            a->set_type(onnx::AttributeProto::INT);
            a->set_i(axis);
            g->add_output()->set_name("y");
            const OnnxModel m = import_onnx(save(model, "gather.onnx"), 3);
            std::vector<double> input(60);
            std::iota(input.begin(), input.end(), 0.0);
            ir::Bindings<double> bind;
            bind[m.input] = ir::Buffer<double>(ir::Shape{3, 5, 4}, input);
            const ir::Buffer<double> y = ir::evaluate(m.graph, bind)[m.output.index];
            std::vector<std::int64_t> dims{3, 5, 4};
            dims[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(count);
            ASSERT_EQ(y.shape, ir::Shape(dims)) << "axis " << axis << ", " << count << " indices";
            const std::vector<double> got = y.data.to_vector();
            std::size_t at = 0;
            for (std::int64_t i = 0; i < dims[0]; ++i) {
                for (std::int64_t j = 0; j < dims[1]; ++j) {
                    for (std::int64_t k = 0; k < dims[2]; ++k, ++at) {
                        std::int64_t src[3] = {i, j, k};
                        src[axis] = picked[static_cast<std::size_t>(src[axis])];
                        EXPECT_EQ(got[at], static_cast<double>(src[0] * 20 + src[1] * 4 + src[2]))
                            << "axis " << axis << ", " << count << " indices, at " << at;
                    }
                }
            }
        }
    }
}

// Regression (found by fuzz/onnx_import_fuzzer): nodes with too few inputs must be errors, not crashes.
TEST_F(OnnxFiles, NodesWithMissingInputsAreErrors) {
    for (const char* op : {"Identity", "Cast", "Relu", "Add", "Gemm", "Reshape", "Shape", "Unsqueeze", "Gather",
                           "Conv", "MaxPool", "Flatten", "Transpose", "Softmax", "BatchNormalization", "LayerNormalization",
                           "Slice", "Split", "Concat", "Where", "Expand", "Pow", "ReduceMean", "Squeeze"}) {
        onnx::ModelProto model = gemm_model();
        onnx::NodeProto* node = model.mutable_graph()->add_node();
        node->set_op_type(op);
        node->add_output("z");
        expect_import_error(save(model, std::string(op) + ".onnx"), "node #2 (" + std::string(op) + ")");
    }
}

// Regression (found by fuzz/onnx_import_fuzzer, a 15 s timeout; a minute in a release build): a constant expanded to
// a huge shape is refused at once, not built element by element.
TEST_F(OnnxFiles, AHugeFoldedConstantIsRefused) {
    onnx::ModelProto model = gemm_model();
    onnx::GraphProto* graph = model.mutable_graph();
    onnx::TensorProto* one = graph->add_initializer();
    one->set_name("one");
    one->set_data_type(onnx::TensorProto::INT64);
    one->add_int64_data(1);
    onnx::TensorProto* shape = graph->add_initializer();
    shape->set_name("huge");
    shape->set_data_type(onnx::TensorProto::INT64);
    shape->add_dims(2);
    shape->add_int64_data(4096);
    shape->add_int64_data(8192);  // 2^25 elements
    onnx::NodeProto* node = graph->add_node();
    node->set_name("expand");
    node->set_op_type("Expand");
    node->add_input("one");
    node->add_input("huge");
    node->add_output("z");
    expect_import_error(save(model, "huge.onnx"), "node 'expand' (Expand): a constant of more than 2^24 elements");
}

TEST_F(OnnxFiles, ExportReplacesInitializersAndKeepsEverythingElse) {
    const std::string source = save(gemm_model(), "source.onnx");
    const std::string out = (dir_ / "trained.onnx").string();
    export_onnx(source, out, {{"w", {6, 5, 4, 3, 2, 1}}, {"b", {7, 8}}});
    const OnnxModel reread = import_onnx(out, 2);
    const auto& values = reread.initial_values;
    EXPECT_EQ(values.at(reread.graph.parameters()[0]), (std::vector<float>{6, 5, 4, 3, 2, 1}));
    EXPECT_EQ(values.at(reread.graph.parameters()[1]), (std::vector<float>{7, 8}));
    EXPECT_EQ(reread.graph.size(), import_onnx(source, 2).graph.size());
    EXPECT_THROW(export_onnx(source, out, {{"w", {1, 2}}}), ImportError);        // wrong size
    EXPECT_THROW(export_onnx(source, out, {{"nope", {1}}}), ImportError);        // unknown name
    EXPECT_THROW(export_onnx(source, "/dev/null/x.onnx", {{"b", {1, 2}}}), IoError);
}

}  // namespace
}  // namespace dojo::frontend
