"""The PyTorch models OpenDojo imports in its tests and examples, shared by export_mlp.py and check_trained.py.

Run with Debian's Python (/usr/bin/python3), which has python3-torch 1.13 and python3-onnx.
"""
import torch
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


MODELS = {"mlp": Mlp, "mlp_view": MlpView}
