"""The PyTorch models OpenDojo imports in its tests and examples, shared by export_model.py and check_trained.py.

Run with Debian's Python (/usr/bin/python3), which has python3-torch 1.13 and python3-onnx.
"""
import math

import torch
import torchvision
from torch import nn


class Mlp(nn.Module):
    """784-256-10 with ReLU, flattening with nn.Flatten (exports as ONNX Flatten)."""

    def __init__(self, hidden=256):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.flatten(x))))


class MlpView(Mlp):
    """The same network flattening with x.view(x.size(0), -1): torch emits Shape/Gather/Unsqueeze/Concat/Reshape."""

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))


class LeNet(nn.Module):
    """2 conv + 2 fc, the same architecture as dojo's catalog 'lenet' (hidden is the first fc width)."""

    def __init__(self, hidden=120):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def resnet(depth, hidden=None, in_channels=1, classes=10):
    """torchvision's ResNet-18/50 with a stem for `in_channels` (1 for Fashion-MNIST). `hidden` is unused."""
    model = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](num_classes=classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


class Block(nn.Module):
    """A pre-LayerNorm transformer block: multi-head self-attention (optionally causal) and an erf-GELU MLP."""

    def __init__(self, width, heads, tokens, causal):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.causal = causal
        self.register_buffer("mask", torch.tril(torch.ones(tokens, tokens)).bool(), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        if self.causal:
            scores = scores.masked_fill(~self.mask[:t, :t], float("-inf"))
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(attended)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    """A small ViT: 7x7 patches of a 28x28 image, a class token, learned positions, blocks, a head on the class token
    (exercises Conv, Concat, Expand, Gather, LayerNormalization, Softmax, Erf)."""

    def __init__(self, hidden=64, depth=2, heads=4):
        super().__init__()
        self.patch = nn.Conv2d(1, hidden, kernel_size=7, stride=7)
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos = nn.Parameter(torch.randn(1, 17, hidden) * 0.02)
        self.blocks = nn.Sequential(*[Block(hidden, heads, 17, causal=False) for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class Gpt(nn.Module):
    """A GPT-style causal transformer reading an image as a sequence of 28 rows (28 features each) and classifying
    from the last position (exercises the causal mask: Slice, Not, Where on constants)."""

    def __init__(self, hidden=64, depth=2, heads=4):
        super().__init__()
        self.embed = nn.Linear(28, hidden)
        self.pos = nn.Parameter(torch.randn(1, 28, hidden) * 0.02)
        self.blocks = nn.Sequential(*[Block(hidden, heads, 28, causal=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.embed(x) + self.pos
        return self.head(self.norm(self.blocks(x))[:, -1])


class GptTokens(nn.Module):
    """A GPT-style causal transformer on token ids, as language models take them: an embedding table (nn.Embedding,
    exported as Gather with data indices), learned positions, causal blocks, a head on the last position."""

    VOCAB = 32
    TOKENS = 16

    def __init__(self, hidden=32, depth=2, heads=4):
        super().__init__()
        self.embed = nn.Embedding(self.VOCAB, hidden)  # first parameter: the tests check its gradient
        self.positions = nn.Embedding(self.TOKENS, hidden)
        self.blocks = nn.Sequential(*[Block(hidden, heads, self.TOKENS, causal=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 10)

    def forward(self, ids):
        x = self.embed(ids) + self.positions(torch.arange(ids.shape[1]))
        return self.head(self.norm(self.blocks(x))[:, -1])


class MobileBlock(nn.Module):
    """The ops of MobileNet v2/v3 and SqueezeNet in a small network: Conv-BN-ReLU6 (exported as Clip), a depthwise
    convolution (groups = channels), ceil-mode max-pooling, Hardswish and Hardsigmoid, an inverted residual, a global
    average pool and a linear head (no dropout: its random mask cannot match PyTorch's)."""

    def __init__(self, hidden=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.Hardswish())
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.gate = nn.Sequential(nn.Conv2d(hidden, hidden, 1), nn.Hardsigmoid())
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.pool(x + self.depthwise(x))
        x = x * self.gate(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Pools(nn.Module):
    """The average pools torchvision's zoo exports (GoogLeNet, Inception, DenseNet): padded, ceil-mode, with and
    without the padding in the divisor, between convolutions."""

    def __init__(self, hidden=6, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, hidden, 3, padding=1)
        self.pool1 = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.pool2 = nn.AvgPool2d(2, ceil_mode=True)
        self.pool3 = nn.AvgPool2d(3, 1, padding=1)  # count_include_pad=True, PyTorch's default
        self.head = nn.Linear(hidden * 64, classes)  # 28 -> 15 -> 8 (both ceil-mode pools keep a partial window)

    def forward(self, x):
        x = self.pool2(torch.relu(self.conv2(self.pool1(torch.relu(self.conv1(x))))))
        return self.head(torch.flatten(self.pool3(x), 1))


MODELS = {
    "mlp": Mlp,
    "pools": Pools,
    "mobile": MobileBlock,
    # torchvision's, as users export them (training mode: BatchNorm and Dropout), for 3x32x32 images and 10 classes.
    "mobilenet_v2": lambda hidden=None: torchvision.models.mobilenet_v2(num_classes=10),
    "squeezenet1_1": lambda hidden=None: torchvision.models.squeezenet1_1(num_classes=10),
    "mlp_view": MlpView,
    "lenet": LeNet,
    "resnet18": lambda hidden=None: resnet(18, hidden),
    "resnet50": lambda hidden=None: resnet(50, hidden),
    "vit": ViT,
    "gpt": Gpt,
    "gpt_tokens": GptTokens,
}

# The shape of one sample each model takes (the batch dimension comes first).
SAMPLE_SHAPES = {"gpt": (28, 28), "gpt_tokens": (GptTokens.TOKENS,), "mobilenet_v2": (3, 32, 32),
                 "squeezenet1_1": (3, 32, 32)}


def torchvision_model(name):
    """torchvision's classifier `name` for 10 classes, with dropout and stochastic depth at p = 0, so that a training
    step is deterministic and can be compared with PyTorch's in float64 (its random masks cannot be matched)."""
    kwargs = {"num_classes": 10}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True)
    if name == "vit_b_16":
        kwargs.update(image_size=64)  # 4 x 4 patches: ViT-B/16's layers, a sequence the float64 check can hold
    model = getattr(torchvision.models, name)(**kwargs)
    for module in model.modules():
        if isinstance(module, nn.Dropout) or type(module).__name__ == "StochasticDepth":
            module.p = 0.0
    return model


# torchvision's zoo as `tv_NAME`, on 3x64x64 images (inception_v3 needs 75 pixels or more: 96; ViT-B/16 is built for
# 64x64 images, Swin-T takes them as they are).
TORCHVISION_ZOO = ["alexnet", "vgg11", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "googlenet",
                   "inception_v3", "squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5",
                   "shufflenet_v2_x0_5", "efficientnet_b0", "efficientnet_v2_s", "regnet_x_400mf", "regnet_y_400mf",
                   "convnext_tiny", "vit_b_16", "swin_t"]
for _name in TORCHVISION_ZOO:
    MODELS["tv_" + _name] = lambda hidden=None, name=_name: torchvision_model(name)
    SAMPLE_SHAPES["tv_" + _name] = {"inception_v3": (3, 96, 96), "alexnet": (3, 224, 224), "vgg11": (3, 224, 224),
                                    }.get(_name, (3, 64, 64))

# Models whose input is token ids (int64 in [0, vocabulary)) rather than floats.
TOKEN_VOCABULARIES = {"gpt_tokens": GptTokens.VOCAB}


def sample_shape(name):
    return SAMPLE_SHAPES.get(name, (1, 28, 28))
