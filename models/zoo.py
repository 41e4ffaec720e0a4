"""The PyTorch models OpenDojo imports in its tests and examples, shared by export_model.py and check_trained.py.

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


MODELS = {"mlp": Mlp, "mlp_view": MlpView, "lenet": LeNet}
