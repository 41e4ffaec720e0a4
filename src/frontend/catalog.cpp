#include "dojo/frontend/catalog.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <vector>

#include "catalog_parts.h"
#include "dojo/frontend/layers.h"
#include "dojo/ir/builder.h"
#include "dojo/util/error.h"

namespace dojo::frontend {
namespace {

using catalog::batch_norm2d;
using catalog::conv;
using catalog::upsample2x;
using catalog::OptionField;
using catalog::parse_options;
using ir::NodeId;

constexpr const char* kCatalog =
    "mlp[:hidden=H1xH2x...] (fully connected with ReLU; default hidden=256), lenet (2 conv + 2 fc, for 28x28 images), "
    "resnet18, resnet34, resnet50 (torchvision's, BatchNorm in training form), "
    "vit-b16[:layers=L,hidden=H,heads=A,mlp=M,patch=P] (torchvision's ViT-B/16 by default), "
    "gpt[:layers=L,hidden=H,heads=A,seq=S,vocab=V] (GPT-2/3 decoder; GPT-2 small by default; GPT-3 175B is "
    "gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200), bert-large or bert[:layers=,hidden=,heads=,seq=,vocab=] "
    "(BERT encoder with the masked-LM head), "
    "unet[:channels=C,size=S,levels=L,blocks=N,heads=A,latent=Z] (Stable-Diffusion-style denoising UNet; SD 1.x's "
    "shape by default: channels=320, size=64, levels=4, blocks=2, heads=8, latent=4), "
    "occupancy[:cameras=N,width=W,height=H,stored=WxH,voxels=XxYxZ,channels=C,resnet=18|34|50] (multi-camera "
    "occupancy network: a small CNN stem, or with resnet= torchvision's trunk and a feature pyramid, features lifted into voxel cells by the production rig's calibration, a bird's-eye head; "
    "8 cameras at 640x480, 40x40x4 cells over +-40 m and 3.2 m by default; with clip data, the size is the data's)";

// "256x128" -> {256, 128}
std::vector<std::int64_t> parse_widths(std::string_view text, std::string_view spec) {
    std::vector<std::int64_t> widths;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find('x', start), text.size());
        std::int64_t width = 0;
        const auto result = std::from_chars(text.data() + start, text.data() + end, width);
        if (result.ec != std::errc() || result.ptr != text.data() + end || width <= 0 || width > (1 << 20) ||
            widths.size() >= 10'000) {
            throw UsageError("model '" + std::string(spec) + "': hidden=" + std::string(text) +
                             " is not a list of widths like 256 or 512x256 (each from 1 to 1048576, at most 10000 "
                             "layers)");
        }
        widths.push_back(width);
        start = end + 1;
    }
    return widths;
}

// PyTorch's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
NodeId linear(Model& model, NodeId x, std::int64_t in, std::int64_t out, const std::string& name) {
    ir::Graph& g = model.graph;
    const NodeId weight = g.add_parameter(name + ".weight", {ir::DType::F32, ir::Shape{in, out}});
    const NodeId bias = g.add_parameter(name + ".bias", {ir::DType::F32, ir::Shape{out}});
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    model.init[weight] = ParameterInit{bound};
    model.init[bias] = ParameterInit{bound};
    return ir::add(g, ir::matmul(g, x, weight, name), bias, name + ".out");
}

// LeNet-style: conv 1->6 5x5 pad 2, ReLU, 2x2 max-pool, conv 6->16 5x5, ReLU, 2x2 max-pool, fc 400->120, ReLU,
// fc 120->classes.
Model build_lenet(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes) {
    if (!(sample_shape == ir::Shape{1, 28, 28})) {
        throw UsageError("model 'lenet' takes 1x28x28 images; the data has samples of " + sample_shape.to_string());
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape{batch, 1, 28, 28}});
    NodeId x = ir::max_pool2d(g, ir::relu(g, conv(model, model.input, 1, 6, 5, 1, 2, true, "conv1")));   // [B, 6, 14, 14]
    x = ir::max_pool2d(g, ir::relu(g, conv(model, x, 6, 16, 5, 1, 0, true, "conv2")));                  // [B, 16, 5, 5]
    x = ir::reshape(g, x, ir::Shape{batch, 16 * 5 * 5}, "flatten");
    x = ir::relu(g, linear(model, x, 400, 120, "fc1"));
    model.logits = linear(model, x, 120, classes, "fc2");
    return model;
}

Model build_mlp(std::string_view spec, std::string_view options, std::int64_t batch, const ir::Shape& sample_shape,
                int classes) {
    std::vector<std::int64_t> hidden = {256};
    if (!options.empty()) {
        if (options.rfind("hidden=", 0) != 0) {
            throw UsageError("model '" + std::string(spec) + "': unknown option '" + std::string(options) +
                             "'; mlp takes hidden=H1xH2x...");
        }
        hidden = parse_widths(options.substr(7), spec);
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    std::vector<std::int64_t> input_dims = {batch};
    input_dims.insert(input_dims.end(), sample_shape.dims().begin(), sample_shape.dims().end());
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape(input_dims)});
    NodeId x = ir::reshape(g, model.input, ir::Shape{batch, sample_shape.numel()}, "flatten");
    std::int64_t width = sample_shape.numel();
    for (std::size_t layer = 0; layer < hidden.size(); ++layer) {
        x = ir::relu(g, linear(model, x, width, hidden[layer], "fc" + std::to_string(layer + 1)));
        width = hidden[layer];
    }
    model.logits = linear(model, x, width, classes, "fc" + std::to_string(hidden.size() + 1));
    return model;
}

// ---- ResNet (torchvision's layout) -------------------------------------------------------------------------

Model build_resnet(std::string_view spec, int depth, std::int64_t batch, const ir::Shape& sample_shape, int classes,
                   ImportMode mode) {
    if (sample_shape.rank() != 3 || sample_shape[1] < 8 || sample_shape[2] < 8) {
        throw UsageError("model '" + std::string(spec) + "' takes images [C, H, W] of at least 8x8 pixels; the data has "
                         "samples of " + sample_shape.to_string());
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape{batch, sample_shape[0], sample_shape[1], sample_shape[2]}});
    const catalog::Stage last = catalog::resnet_trunk(model, model.input, sample_shape[0], depth, "", mode).back();
    const NodeId x = ir::reduce_mean(g, last.node, {2, 3}, false, "avgpool");  // [B, channels]
    model.logits = linear(model, x, last.channels, classes, "fc");
    return model;
}

// ---- ViT (torchvision's VisionTransformer) ------------------------------------------------------------------

// Bounds of the catalog's options (see OptionField).
constexpr std::int64_t kMaxLayers = 10'000;
constexpr std::int64_t kMaxWidth = 1 << 20;   // hidden sizes, MLP widths, channels
constexpr std::int64_t kMaxHeads = 1 << 16;
constexpr std::int64_t kMaxSeq = 16'384;      // GPT's causal mask is a seq x seq constant (1 GiB at the bound)
constexpr std::int64_t kMaxVocab = 10'000'000;

// The shape of a transformer: ViT-B/16's defaults; the language models set their own.
struct TransformerOptions {
    std::int64_t layers = 12, hidden = 768, heads = 12, mlp = 3072, patch = 16, seq = 0, vocab = 0;
};

void require_whole_heads(std::string_view spec, const TransformerOptions& o) {
    if (o.hidden % o.heads != 0) {
        throw UsageError("model '" + std::string(spec) + "': hidden (" + std::to_string(o.hidden) +
                         ") must be a multiple of heads (" + std::to_string(o.heads) + ")");
    }
}

TransformerOptions parse_vit_options(std::string_view spec, std::string_view options) {
    TransformerOptions o;
    parse_options(spec, options, {{"layers", &o.layers, kMaxLayers}, {"hidden", &o.hidden, kMaxWidth},
                                  {"heads", &o.heads, kMaxHeads}, {"mlp", &o.mlp, kMaxWidth},
                                  {"patch", &o.patch, 4096}});
    require_whole_heads(spec, o);
    return o;
}

// Parameters of a LayerNorm (scale 1, bias 0) of `width`.
std::pair<NodeId, NodeId> norm_parameters(Model& model, std::int64_t width, const std::string& name) {
    ir::Graph& g = model.graph;
    const NodeId scale = g.add_parameter(name + ".weight", {ir::DType::F32, ir::Shape{width}});
    const NodeId bias = g.add_parameter(name + ".bias", {ir::DType::F32, ir::Shape{width}});
    model.init[scale] = ParameterInit{0.0, 1.0};
    model.init[bias] = ParameterInit{};
    return {scale, bias};
}

// Multi-head self-attention on x [B, S, H] with packed q/k/v projection (torchvision's nn.MultiheadAttention);
// `mask` (valid or not) is added to the scores: 0 where a query may see a key, -1e9 where it may not.
NodeId self_attention(Model& model, NodeId x, const TransformerOptions& o, const std::string& name,
                      NodeId mask = NodeId{}) {
    ir::Graph& g = model.graph;
    const ir::Shape shape = g.type(x).shape;
    const std::int64_t b = shape[0], s = shape[1], h = o.hidden, d = o.hidden / o.heads;
    const NodeId qkv = linear(model, x, h, 3 * h, name + ".in_proj");  // [B, S, 3H]
    auto head_split = [&](int part) {  // [B, S, H] slice -> [B, heads, S, d]
        const NodeId slice = ir::slice_axis(g, qkv, 2, part * h, h);
        return ir::transpose(g, ir::reshape(g, slice, ir::Shape{b, s, o.heads, d}), {0, 2, 1, 3});
    };
    const NodeId q = head_split(0), k = head_split(1), v = head_split(2);
    NodeId scores = ir::mul(g, ir::matmul(g, q, ir::transpose_last_two(g, k)),
                            ir::scalar(g, 1.0 / std::sqrt(static_cast<double>(d))));
    if (mask.valid()) {
        scores = ir::add(g, scores, mask);
    }
    const NodeId context = ir::matmul(g, softmax(g, scores, 3), v);  // [B, heads, S, d]
    const NodeId merged = ir::reshape(g, ir::transpose(g, context, {0, 2, 1, 3}), ir::Shape{b, s, h});
    return linear(model, merged, h, h, name + ".out_proj");
}

Model build_vit(std::string_view spec, std::string_view options, std::int64_t batch, const ir::Shape& sample_shape,
                int classes) {
    const TransformerOptions o = parse_vit_options(spec, options);
    if (sample_shape.rank() != 3 || sample_shape[1] % o.patch != 0 || sample_shape[2] % o.patch != 0) {
        throw UsageError("model '" + std::string(spec) + "' takes images [C, H, W] with H and W multiples of the patch (" +
                         std::to_string(o.patch) + "); the data has samples of " + sample_shape.to_string());
    }
    Model model;
    model.spec = std::string(spec);
    ir::Graph& g = model.graph;
    const std::int64_t h = o.hidden;
    const std::int64_t patches = (sample_shape[1] / o.patch) * (sample_shape[2] / o.patch);
    model.input = g.add_input("input", {ir::DType::F32, ir::Shape{batch, sample_shape[0], sample_shape[1], sample_shape[2]}});
    // Patch embedding: a patch-strided convolution with bias, flattened to [B, patches, H].
    NodeId x = conv(model, model.input, sample_shape[0], h, o.patch, o.patch, 0, true, "conv_proj");
    x = ir::transpose(g, ir::reshape(g, x, ir::Shape{batch, h, patches}), {0, 2, 1});
    // The class token in front, then learned position embeddings (torchvision: zeros and N(0, 0.02)).
    const NodeId class_token = g.add_parameter("class_token", {ir::DType::F32, ir::Shape{1, 1, h}});
    const NodeId position = g.add_parameter("encoder.pos_embedding", {ir::DType::F32, ir::Shape{1, patches + 1, h}});
    model.init[class_token] = ParameterInit{};
    model.init[position] = ParameterInit{0.02 * std::sqrt(3.0)};  // uniform with the normal's standard deviation
    x = ir::concat(g, {ir::broadcast_to(g, class_token, ir::Shape{batch, 1, h}), x}, 1);
    x = ir::add(g, x, position);
    for (std::int64_t layer = 0; layer < o.layers; ++layer) {
        const std::string name = "encoder.layers.encoder_layer_" + std::to_string(layer);
        const auto [s1, b1] = norm_parameters(model, h, name + ".ln_1");
        x = ir::add(g, x, self_attention(model, layer_norm(g, x, s1, b1, 2, 1e-6, name + ".ln_1"), o,
                                         name + ".self_attention"));
        const auto [s2, b2] = norm_parameters(model, h, name + ".ln_2");
        NodeId y = layer_norm(g, x, s2, b2, 2, 1e-6, name + ".ln_2");
        y = linear(model, gelu(g, linear(model, y, h, o.mlp, name + ".mlp.0")), o.mlp, h, name + ".mlp.3");
        x = ir::add(g, x, y);
    }
    const auto [sf, bf] = norm_parameters(model, h, "encoder.ln");
    x = layer_norm(g, x, sf, bf, 2, 1e-6, "encoder.ln");
    x = ir::reshape(g, ir::slice_axis(g, x, 1, 0, 1), ir::Shape{batch, h});  // the class token
    model.logits = linear(model, x, h, classes, "heads.head");
    return model;
}

// ---- Language models: GPT (decoder, GPT-2/3 layout) and BERT (encoder, masked-LM head) -------------------------

// A token embedding table [vocab, H] (also the output projection: the weights are tied, as in GPT-2/3 and BERT) and
// learned positions [seq, H]; initialised uniformly with the standard deviation 0.02 of the original normal init.
std::pair<NodeId, NodeId> token_embeddings(Model& model, const TransformerOptions& o, const std::string& prefix) {
    ir::Graph& g = model.graph;
    const NodeId tokens = g.add_parameter(prefix + "wte", {ir::DType::F32, ir::Shape{o.vocab, o.hidden}});
    const NodeId positions = g.add_parameter(prefix + "wpe", {ir::DType::F32, ir::Shape{o.seq, o.hidden}});
    model.init[tokens] = ParameterInit{0.02 * std::sqrt(3.0)};
    model.init[positions] = ParameterInit{0.02 * std::sqrt(3.0)};
    return {tokens, positions};
}

// Logits [B * S, vocab] of x [B, S, H] through the tied embedding table.
NodeId tied_logits(Model& model, NodeId x, NodeId table, const TransformerOptions& o, std::int64_t batch) {
    ir::Graph& g = model.graph;
    const NodeId flat = ir::reshape(g, x, ir::Shape{batch * o.seq, o.hidden});
    return ir::matmul(g, flat, ir::transpose(g, table, {1, 0}), "logits");
}

// A language model's options (from `defaults` and the spec's overrides; the MLP is 4 H) and its token-id input.
std::pair<Model, TransformerOptions> start_language_model(std::string_view spec, std::string_view options,
                                                          TransformerOptions defaults, std::int64_t batch) {
    TransformerOptions o = defaults;
    parse_options(spec, options, {{"layers", &o.layers, kMaxLayers}, {"hidden", &o.hidden, kMaxWidth},
                                  {"heads", &o.heads, kMaxHeads}, {"seq", &o.seq, kMaxSeq},
                                  {"vocab", &o.vocab, kMaxVocab}});
    require_whole_heads(spec, o);
    o.mlp = 4 * o.hidden;
    Model model;
    model.spec = std::string(spec);
    model.token_labels = true;
    model.input = model.graph.add_input("input_ids", {ir::DType::I64, ir::Shape{batch, o.seq}});
    return {std::move(model), o};
}

// GPT-2/3: pre-LayerNorm decoder blocks with causal attention and a 4H MLP, a final LayerNorm, tied output
// projection. Parameters: layers * (12 H^2 + 13 H) + (vocab + seq) H + 2 H (GPT-3 175B: 174,615,846,912).
Model build_gpt(std::string_view spec, std::string_view options, std::int64_t batch) {
    // GPT-2 small unless told.
    auto [model, o] = start_language_model(spec, options, TransformerOptions{12, 768, 12, 0, 0, 1024, 50257}, batch);
    ir::Graph& g = model.graph;
    const auto [wte, wpe] = token_embeddings(model, o, "");
    NodeId x = ir::add(g, ir::gather(g, wte, model.input), wpe);  // [B, S, H]
    // The causal mask, shared by every layer: a query sees itself and the keys before it.
    std::vector<float> causal(static_cast<std::size_t>(o.seq * o.seq), 0.0f);
    for (std::int64_t query = 0; query < o.seq; ++query) {
        for (std::int64_t key = query + 1; key < o.seq; ++key) {
            causal[static_cast<std::size_t>(query * o.seq + key)] = -1e9f;
        }
    }
    const NodeId mask = ir::constant(g, ir::Shape{o.seq, o.seq}, std::move(causal), "causal_mask");
    for (std::int64_t layer = 0; layer < o.layers; ++layer) {
        const std::string name = "h." + std::to_string(layer);
        const auto [s1, b1] = norm_parameters(model, o.hidden, name + ".ln_1");
        x = ir::add(g, x, self_attention(model, layer_norm(g, x, s1, b1, 2, 1e-5, name + ".ln_1"), o,
                                         name + ".attn", mask));
        const auto [s2, b2] = norm_parameters(model, o.hidden, name + ".ln_2");
        NodeId y = layer_norm(g, x, s2, b2, 2, 1e-5, name + ".ln_2");
        y = linear(model, gelu(g, linear(model, y, o.hidden, o.mlp, name + ".mlp.c_fc")), o.mlp, o.hidden,
                   name + ".mlp.c_proj");
        x = ir::add(g, x, y);
    }
    const auto [sf, bf] = norm_parameters(model, o.hidden, "ln_f");
    model.logits = tied_logits(model, layer_norm(g, x, sf, bf, 2, 1e-5, "ln_f"), wte, o, batch);
    return model;
}

// BERT (bert-large by default): post-LayerNorm encoder blocks, token + position + segment embeddings with a
// LayerNorm, and the masked-LM head (dense, GELU, LayerNorm, tied decoder with a bias) over every position; no
// pooler or next-sentence head. Parameters: layers * (12 H^2 + 13 H) + (vocab + seq + 2) H + 2 H + H^2 + 3 H + vocab
// (bert-large: 335,174,458, as Hugging Face's BertForMaskedLM).
Model build_bert(std::string_view spec, std::string_view options, std::int64_t batch) {
    auto [model, o] = start_language_model(spec, options, TransformerOptions{24, 1024, 16, 0, 0, 512, 30522}, batch);
    ir::Graph& g = model.graph;
    const auto [wte, wpe] = token_embeddings(model, o, "embeddings.");
    // Every sequence is one segment: segment 0's embedding is added everywhere (segment 1's trains with pairs).
    const NodeId segments = g.add_parameter("embeddings.token_type", {ir::DType::F32, ir::Shape{2, o.hidden}});
    model.init[segments] = ParameterInit{0.02 * std::sqrt(3.0)};
    NodeId x = ir::add(g, ir::add(g, ir::gather(g, wte, model.input), wpe), ir::slice_axis(g, segments, 0, 0, 1));
    const auto [se, be] = norm_parameters(model, o.hidden, "embeddings.LayerNorm");
    x = layer_norm(g, x, se, be, 2, 1e-12, "embeddings.LayerNorm");
    for (std::int64_t layer = 0; layer < o.layers; ++layer) {
        const std::string name = "encoder.layer." + std::to_string(layer);
        const auto [s1, b1] = norm_parameters(model, o.hidden, name + ".attention.LayerNorm");
        x = layer_norm(g, ir::add(g, x, self_attention(model, x, o, name + ".attention")), s1, b1, 2, 1e-12,
                       name + ".attention.LayerNorm");
        NodeId y = linear(model, gelu(g, linear(model, x, o.hidden, o.mlp, name + ".intermediate")), o.mlp,
                          o.hidden, name + ".output");
        const auto [s2, b2] = norm_parameters(model, o.hidden, name + ".output.LayerNorm");
        x = layer_norm(g, ir::add(g, x, y), s2, b2, 2, 1e-12, name + ".output.LayerNorm");
    }
    NodeId head = gelu(g, linear(model, x, o.hidden, o.hidden, "cls.predictions.transform.dense"));
    const auto [sh, bh] = norm_parameters(model, o.hidden, "cls.predictions.transform.LayerNorm");
    head = layer_norm(g, head, sh, bh, 2, 1e-12, "cls.predictions.transform.LayerNorm");
    const NodeId decoder_bias = g.add_parameter("cls.predictions.bias", {ir::DType::F32, ir::Shape{o.vocab}});
    model.init[decoder_bias] = ParameterInit{};
    model.logits = ir::add(g, tied_logits(model, head, wte, o, batch), decoder_bias, "logits");
    return model;
}

// ---- UNet (Stable Diffusion's denoiser, without its conditioning) ----------------------------------------------

struct UnetOptions {
    std::int64_t channels = 320, size = 64, levels = 4, blocks = 2, heads = 8, latent = 4;
};

// GroupNorm of x [B, C, H, W] over `groups` groups of channels, with a per-channel scale and bias (PyTorch's
// nn.GroupNorm, eps 1e-5).
NodeId group_norm(Model& model, NodeId x, std::int64_t groups, const std::string& name) {
    ir::Graph& g = model.graph;
    const ir::Shape shape = g.type(x).shape;
    const std::int64_t b = shape[0], c = shape[1], h = shape[2], w = shape[3];
    const NodeId grouped = ir::reshape(g, x, ir::Shape{b, groups, (c / groups) * h * w});
    const NodeId centred = ir::sub(g, grouped, ir::reduce_mean(g, grouped, {2}, true));
    const NodeId var = ir::reduce_mean(g, ir::mul(g, centred, centred), {2}, true);
    const NodeId normal = ir::reshape(g, ir::div(g, centred, ir::sqrt(g, ir::add(g, var, ir::scalar(g, 1e-5)))), shape);
    const auto [scale, bias] = norm_parameters(model, c, name);
    return ir::add(g, ir::mul(g, normal, ir::reshape(g, scale, ir::Shape{c, 1, 1})),
                   ir::reshape(g, bias, ir::Shape{c, 1, 1}), name);
}

NodeId silu(ir::Graph& g, NodeId x) { return ir::mul(g, x, ir::sigmoid(g, x)); }

// ResBlock: GroupNorm, SiLU, 3x3 conv, twice, plus the input (through a 1x1 conv when the width changes).
NodeId unet_res_block(Model& model, NodeId x, std::int64_t out, const std::string& name) {
    ir::Graph& g = model.graph;
    const std::int64_t in = g.type(x).shape[1];
    NodeId h = conv(model, silu(g, group_norm(model, x, 32, name + ".norm1")), in, out, 3, 1, 1, true, name + ".conv1");
    h = conv(model, silu(g, group_norm(model, h, 32, name + ".norm2")), out, out, 3, 1, 1, true, name + ".conv2");
    const NodeId skip = in == out ? x : conv(model, x, in, out, 1, 1, 0, true, name + ".skip");
    return ir::add(g, h, skip);
}

// Spatial transformer: GroupNorm, 1x1 projection in, pre-LayerNorm self-attention and GELU MLP (4 C) over the H W
// positions, 1x1 projection out, plus the input. (Stable Diffusion adds a cross-attention to the text here.)
NodeId unet_attention_block(Model& model, NodeId x, std::int64_t heads, const std::string& name) {
    ir::Graph& g = model.graph;
    const ir::Shape shape = g.type(x).shape;
    const std::int64_t b = shape[0], c = shape[1], hw = shape[2] * shape[3];
    NodeId h = conv(model, group_norm(model, x, 32, name + ".norm"), c, c, 1, 1, 0, true, name + ".proj_in");
    h = ir::transpose(g, ir::reshape(g, h, ir::Shape{b, c, hw}), {0, 2, 1});  // [B, HW, C]
    TransformerOptions o;
    o.hidden = c;
    o.heads = heads;
    const auto [s1, b1] = norm_parameters(model, c, name + ".norm1");
    h = ir::add(g, h, self_attention(model, layer_norm(g, h, s1, b1, 2, 1e-5, name + ".norm1"), o, name + ".attn1"));
    const auto [s2, b2] = norm_parameters(model, c, name + ".norm3");
    const NodeId y = layer_norm(g, h, s2, b2, 2, 1e-5, name + ".norm3");
    h = ir::add(g, h, linear(model, gelu(g, linear(model, y, c, 4 * c, name + ".ff.0")), 4 * c, c, name + ".ff.2"));
    h = ir::reshape(g, ir::transpose(g, h, {0, 2, 1}), shape);
    return ir::add(g, conv(model, h, c, c, 1, 1, 0, true, name + ".proj_out"), x);
}

// Nearest-neighbour 2x upsampling: each pixel repeated into a 2x2 block (a broadcast and two reshapes).

// Stable Diffusion 1.x's UNet layout: a 3x3 conv in; `levels` levels of `blocks` ResBlocks at channels x (1, 2, 4,
// 4, ...), each followed by a spatial transformer on every level but the deepest, a stride-2 conv between levels; a
// middle of ResBlock, transformer, ResBlock; the mirror image upward with blocks + 1 ResBlocks per level, each taking
// the matching skip connection (concatenated), nearest-neighbour upsampling and a 3x3 conv between levels; GroupNorm,
// SiLU and a 3x3 conv out to the latent's channels. It predicts the noise in a noisy latent [B, latent, size, size]
// and trains by mean squared error against it. Not modelled: the timestep embedding (a per-channel bias in each
// ResBlock) and the text cross-attention, which change neither the activations' shapes nor the larger costs.
Model build_unet(std::string_view spec, std::string_view options, std::int64_t batch) {
    UnetOptions o;
    parse_options(spec, options, {{"channels", &o.channels, kMaxWidth / 4}, {"size", &o.size, 1024},
                                  {"levels", &o.levels, 10}, {"blocks", &o.blocks, 100},
                                  {"heads", &o.heads, kMaxHeads}, {"latent", &o.latent, 64}});
    if (o.channels % 32 != 0 || o.channels % o.heads != 0) {
        throw UsageError("model '" + std::string(spec) + "': channels (" + std::to_string(o.channels) +
                         ") must be a multiple of 32 (GroupNorm's groups) and of heads (" + std::to_string(o.heads) +
                         ")");
    }
    if (o.size % (std::int64_t{1} << (o.levels - 1)) != 0) {
        throw UsageError("model '" + std::string(spec) + "': size (" + std::to_string(o.size) +
                         ") must be a multiple of 2^(levels - 1) = " + std::to_string(std::int64_t{1} << (o.levels - 1)) +
                         ", since each of the " + std::to_string(o.levels) + " levels but the last halves it");
    }
    auto width = [&](std::int64_t level) { return o.channels * std::min<std::int64_t>(std::int64_t{1} << level, 4); };
    Model model;
    model.spec = std::string(spec);
    model.dense_target = true;
    ir::Graph& g = model.graph;
    model.input = g.add_input("noisy_latent", {ir::DType::F32, ir::Shape{batch, o.latent, o.size, o.size}});
    NodeId x = conv(model, model.input, o.latent, o.channels, 3, 1, 1, true, "conv_in");
    std::vector<NodeId> skips{x};
    for (std::int64_t level = 0; level < o.levels; ++level) {
        const bool attention = level + 1 < o.levels;
        for (std::int64_t b = 0; b < o.blocks; ++b) {
            const std::string name = "down." + std::to_string(level) + "." + std::to_string(b);
            x = unet_res_block(model, x, width(level), name + ".res");
            x = attention ? unet_attention_block(model, x, o.heads, name + ".attn") : x;
            skips.push_back(x);
        }
        if (level + 1 < o.levels) {
            x = conv(model, x, width(level), width(level), 3, 2, 1, true, "down." + std::to_string(level) + ".sample");
            skips.push_back(x);
        }
    }
    x = unet_res_block(model, x, width(o.levels - 1), "mid.res1");
    x = unet_attention_block(model, x, o.heads, "mid.attn");
    x = unet_res_block(model, x, width(o.levels - 1), "mid.res2");
    for (std::int64_t level = o.levels - 1; level >= 0; --level) {
        const bool attention = level + 1 < o.levels;
        for (std::int64_t b = 0; b <= o.blocks; ++b) {
            const std::string name = "up." + std::to_string(level) + "." + std::to_string(b);
            x = ir::concat(g, {x, skips.back()}, 1);
            skips.pop_back();
            x = unet_res_block(model, x, width(level), name + ".res");
            x = attention ? unet_attention_block(model, x, o.heads, name + ".attn") : x;
        }
        if (level > 0) {
            x = conv(model, upsample2x(g, x), width(level), width(level), 3, 1, 1, true,
                     "up." + std::to_string(level) + ".sample");
        }
    }
    x = silu(g, group_norm(model, x, 32, "norm_out"));
    model.logits = conv(model, x, o.channels, o.latent, 3, 1, 1, true, "conv_out");
    return model;
}

// Not a catalog name: a file by that name is an ONNX model without its suffix (or something else), else a typo.
[[noreturn]] void unknown_model(std::string_view spec) {
    std::error_code error;
    if (std::filesystem::exists(std::string(spec), error)) {
        throw UsageError("'" + std::string(spec) + "' is a file, and models are read from files ending in .onnx (other "
                         "names are catalog models): rename it to end in .onnx");
    }
    throw UsageError("unknown model '" + std::string(spec) + "'; the catalog has: " + kCatalog);
}

}  // namespace

Model build_catalog_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes,
                          ImportMode mode) {
    if (batch <= 0 || classes <= 0) {
        throw UsageError("model '" + std::string(spec) + "': batch and class count must be positive");
    }
    const std::size_t colon = spec.find(':');
    if (colon != std::string_view::npos && colon + 1 == spec.size()) {
        throw UsageError("model '" + std::string(spec) + "': nothing follows the ':'; give options (name=value,...) "
                         "or leave out the ':' for the defaults");
    }
    const std::string_view name = spec.substr(0, colon);
    const std::string_view options = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
    if (name == "mlp") {
        return build_mlp(spec, options, batch, sample_shape, classes);
    }
    if (name == "lenet" && options.empty()) {
        return build_lenet(spec, batch, sample_shape, classes);
    }
    if ((name == "resnet18" || name == "resnet34" || name == "resnet50") && options.empty()) {
        return build_resnet(spec, std::stoi(std::string(name.substr(6))), batch, sample_shape, classes, mode);
    }
    if (name == "vit-b16") {
        return build_vit(spec, options, batch, sample_shape, classes);
    }
    if (name == "gpt") {
        return build_gpt(spec, options, batch);
    }
    if (name == "bert" || (name == "bert-large" && options.empty())) {
        return build_bert(spec, options, batch);
    }
    if (name == "unet") {
        return build_unet(spec, options, batch);
    }
    if (name == "occupancy") {
        return catalog::build_occupancy(spec, options, batch, sample_shape, classes, mode);
    }
    unknown_model(spec);
}

SampleSpec catalog_sample(std::string_view spec) {
    const std::string_view name = spec.substr(0, spec.find(':'));
    if (name == "mlp" || name == "lenet") {
        return {ir::Shape{1, 28, 28}, 10};
    }
    if (name == "resnet18" || name == "resnet34" || name == "resnet50" || name == "vit-b16") {
        return {ir::Shape{3, 224, 224}, 1000};
    }
    if (name == "unet") {  // the noisy latent, and as many outputs (the predicted noise)
        const Model model = build_catalog_model(spec, 1, ir::Shape{}, 1);  // shapes only: nothing is computed
        const ir::Shape& in = model.graph.type(model.input).shape;
        return {ir::Shape{in[1], in[2], in[3]}, static_cast<int>(in.numel())};
    }
    if (name == "occupancy") {  // the cameras' frames at the spec's size, a yes/no per voxel cell
        const Model model = build_catalog_model(spec, 1, ir::Shape{}, 1);  // shapes only: nothing is computed
        const ir::Shape& in = model.graph.type(model.input).shape;
        return {ir::Shape{in[1], in[2], in[3]}, static_cast<int>(model.graph.type(model.logits).shape[1])};
    }
    if (name == "gpt" || name == "bert" || name == "bert-large") {
        const Model model = build_catalog_model(spec, 1, ir::Shape{}, 1);  // shapes only: nothing is computed
        return {ir::Shape{model.graph.type(model.input).shape[1]},
                static_cast<int>(model.graph.type(model.logits).shape[1]), true, name == "gpt"};
    }
    unknown_model(spec);
}

std::string catalog_help() { return kCatalog; }

}  // namespace dojo::frontend
