#!/usr/bin/python3
"""A multi-camera occupancy network (issue 31): the cameras of a clip store in, an occupancy grid around the car out.

    backbone (shared by the cameras)   each camera [3, H, W] -> features [C, H/8, W/8]: three 3x3 stride-2 convolutions
                                       with BatchNorm and ReLU, then a 3x3 one (a small ResNet-style stem); or
                                       (--resnet 18|34|50) torchvision's ResNet trunk with a feature pyramid: 1x1
                                       laterals to C channels on strides 8, 16 and 32, added top-down with nearest
                                       upsampling, a 3x3 smoothing convolution on the stride-8 level
    lifting (by the calibration)       each pooled voxel's centre (ego frame) projected into every camera with the
                                       store's intrinsics and extrinsics; where it lands inside a camera's feature map,
                                       that feature vector is taken (a Gather with constant indices); the cameras'
                                       vectors are summed. Voxels no camera sees take zeros.
    head (bird's-eye view)             the voxels' features as [C * Z, Y, X] planes: two 3x3 convolutions to Z logits
                                       per column; logits [batch, Z * Y * X], z-major then y then x, as the clip
                                       store's pooled occupancy labels (dojo train --data clips:DIR,target=occupancy).

The calibration comes from the store (`dojo data inspect STORE CLIP --json`), so the network sees the cameras as the
data was rendered; the projection is the pinhole of data/fleet/cameras.h (optical frame x right, y down, z forward).

    /usr/bin/python3 models/occupancy.py --dojo build/apps/dojo/dojo --store fleet/ --cameras main,left_pillar,...
                                         --size 96x64 --grid 40x40x4 --out occupancy.onnx
"""
import argparse
import json
import math
import subprocess

import torch
import torchvision
from torch import nn


def store_geometry(dojo, store):
    """The store's camera rig and occupancy grid, from its first clip."""
    clips = json.loads(subprocess.run([dojo, "data", "query", store, "limit=1", "--json"], check=True,
                                      capture_output=True, text=True).stdout)
    info = json.loads(subprocess.run([dojo, "data", "inspect", store, clips[0]["clip"], "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    return {c["name"]: c for c in info["cameras"]}, info["grid"]


def project(camera, point, width, height):
    """The pixel (u, v) of ego-frame `point` in `camera` scaled to width x height, or None when behind it."""
    sx, sy = width / camera["width"], height / camera["height"]
    dx, dy, dz = (point[i] - camera["position_m"][i] for i in range(3))
    yaw, pitch = math.radians(camera["yaw_deg"]), math.radians(camera["pitch_deg"])
    forward0 = math.cos(yaw) * dx + math.sin(yaw) * dy
    left = -math.sin(yaw) * dx + math.cos(yaw) * dy
    forward = math.cos(pitch) * forward0 - math.sin(pitch) * dz
    up = math.sin(pitch) * forward0 + math.cos(pitch) * dz
    if forward <= 0.05:
        return None
    u = (camera["cx"] + camera["fx"] * (-left / forward)) * sx
    v = (camera["cy"] + camera["fy"] * (-up / forward)) * sy
    return u, v


def lifting_indices(rig, cameras, width, height, stride, grid, cells):
    """For each camera and pooled voxel (z-major, y, x), the index of its feature in the cameras' flattened feature
    maps [cameras * h * w], or cameras * h * w (a row of zeros) where the camera does not see it."""
    h, w = height // stride, width // stride
    nx, ny, nz = cells
    size_x, size_y = 2 * grid["range_m"] / nx, 2 * grid["range_m"] / ny
    size_z = grid["voxel_m"] * grid["heights"] / nz
    unseen = len(cameras) * h * w
    indices = []
    for c, name in enumerate(cameras):
        for z in range(nz):
            for y in range(ny):
                for x in range(nx):
                    centre = (-grid["range_m"] + (x + 0.5) * size_x, -grid["range_m"] + (y + 0.5) * size_y,
                              (z + 0.5) * size_z)
                    pixel = project(rig[name], centre, width, height)
                    if pixel is None or not (0 <= pixel[0] < width and 0 <= pixel[1] < height):
                        indices.append(unseen)
                    else:
                        indices.append(c * h * w + int(pixel[1] // stride) * w + int(pixel[0] // stride))
    return torch.tensor(indices, dtype=torch.long)


def block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def upsample2x(x):
    """Nearest-neighbour upsampling written as Expand and Reshape (what dojo's ONNX importer takes)."""
    b, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(b, c, h, 2, w, 2).reshape(b, c, 2 * h, 2 * w)


class ResNetTrunk(nn.Module):
    """torchvision's ResNet without its head: the outputs of layer2, layer3 and layer4 (strides 8, 16 and 32)."""

    def __init__(self, depth):
        super().__init__()
        trunk = getattr(torchvision.models, f"resnet{depth}")()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(trunk, name))

    def forward(self, x):
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        return c3, c4, self.layer4(c4)


class Pyramid(nn.Module):
    """A feature pyramid over strides 8, 16 and 32: 1x1 laterals to `channels`, added top-down, out at stride 8."""

    def __init__(self, widths, channels):
        super().__init__()
        self.lateral3, self.lateral4, self.lateral5 = (nn.Conv2d(w, channels, 1) for w in widths)
        self.smooth = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, c3, c4, c5):
        top = self.lateral5(c5)
        top = self.lateral4(c4) + upsample2x(top)
        top = self.lateral3(c3) + upsample2x(top)
        return self.smooth(top)


class Occupancy(nn.Module):
    STRIDE = 8

    def __init__(self, rig, grid, cameras, width, height, cells, channels=32, resnet=0):
        super().__init__()
        self.cameras, self.width, self.height, self.cells, self.channels = len(cameras), width, height, cells, channels
        self.resnet = resnet
        if resnet:
            self.backbone = ResNetTrunk(resnet)
            self.fpn = Pyramid([128, 256, 512] if resnet < 50 else [512, 1024, 2048], channels)
        else:
            self.backbone = nn.Sequential(block(3, 16, 2), block(16, 32, 2), block(32, channels, 2),
                                          block(channels, channels, 1))
        self.register_buffer("indices", lifting_indices(rig, cameras, width, height, self.STRIDE, grid, cells))
        nx, ny, nz = cells
        self.head = nn.Sequential(nn.Conv2d(channels * nz, 64, 3, 1, 1), nn.ReLU(), nn.Conv2d(64, nz, 3, 1, 1))

    def forward(self, x):  # x: [batch, cameras * 3, height, width]
        nx, ny, nz = self.cells
        h, w = self.height // self.STRIDE, self.width // self.STRIDE
        images = x.reshape(-1, 3, self.height, self.width)
        features = self.fpn(*self.backbone(images)) if self.resnet else self.backbone(images)  # [batch * cameras, C, h, w]
        features = features.reshape(-1, self.cameras, self.channels, h * w)        # [batch, cameras, C, h * w]
        features = features.permute(0, 2, 1, 3).reshape(-1, self.channels, self.cameras * h * w)
        features = torch.cat([features, torch.zeros_like(features[:, :, :1])], dim=2)  # the unseen voxels' zeros
        voxels = features.index_select(2, self.indices)                               # [batch, C, cameras * V]
        voxels = voxels.reshape(-1, self.channels, self.cameras, nz * ny * nx).sum(dim=2)
        planes = voxels.reshape(-1, self.channels * nz, ny, nx)                       # C x Z planes over y, x
        return self.head(planes).reshape(-1, nz * ny * nx)                            # logits, z-major


def build(dojo, store, cameras, width, height, cells, channels=32, resnet=0):
    rig, grid = store_geometry(dojo, store)
    return Occupancy(rig, grid, cameras, width, height, cells, channels, resnet)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dojo", required=True, help="the dojo binary (reads the store's calibration)")
    parser.add_argument("--store", required=True, help="clip store (dojo data synth)")
    parser.add_argument("--cameras", default="main,narrow,wide,left_pillar,right_pillar,left_repeater,right_repeater,rear")
    parser.add_argument("--size", default="96x64", help="training resolution WxH (multiples of 8)")
    parser.add_argument("--grid", default="40x40x4", help="pooled occupancy cells XxYxZ")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--resnet", type=int, default=0, choices=[0, 18, 34, 50],
                        help="backbone: 0 the small stem (default), or that ResNet's trunk with a feature pyramid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    cells = tuple(map(int, args.grid.split("x")))
    cameras = args.cameras.split(",")
    torch.manual_seed(args.seed)
    model = build(args.dojo, args.store, cameras, width, height, cells, args.channels, args.resnet)
    example = torch.zeros(2, 3 * len(cameras), height, width)
    torch.onnx.export(model, example, args.out, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    seen = int((model.indices < model.indices.max()).sum()) if len(cameras) else 0
    print(f"{args.out}: {len(cameras)} cameras at {width}x{height}, grid {args.grid}, "
          f"{sum(p.numel() for p in model.parameters())} parameters; "
          f"{seen} of {model.indices.numel()} camera-voxel pairs seen")


if __name__ == "__main__":
    main()
