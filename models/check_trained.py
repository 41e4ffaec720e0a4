#!/usr/bin/python3
"""Checks a model trained by `dojo train ... --out trained.onnx` from the PyTorch side:

  1. onnx.checker accepts the file;
  2. its initializers load into the same PyTorch module by name (strict: every parameter, right shapes);
  3. PyTorch's predictions with those weights on the Fashion-MNIST test set give the accuracy it prints (JSON), which
     must equal what dojo reported.

    /usr/bin/python3 models/check_trained.py --model mlp --onnx trained.onnx
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo import MODELS, sample_shape  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (default: the model's own)")
    parser.add_argument("--onnx", required=True)
    args = parser.parse_args()

    proto = onnx.load(args.onnx)
    onnx.checker.check_model(proto)
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    model = MODELS[args.model]() if args.hidden is None else MODELS[args.model](args.hidden)
    state = model.state_dict()
    loaded = {k: v for k, v in weights.items() if k in state}
    # BatchNorm's step counters are not part of an ONNX export; every other tensor must come from the file.
    loaded.update({k: v for k, v in state.items() if k.endswith("num_batches_tracked")})
    model.load_state_dict(loaded, strict=True)
    model.eval()

    images = read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32)
    labels = read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x = torch.from_numpy((images / 255.0 - 0.2860) / 0.3530).float().reshape(-1, *sample_shape(args.model))
    with torch.no_grad():
        predictions = model(x).argmax(dim=1).numpy()
    print(json.dumps({"test_accuracy": float((predictions == labels).mean()), "parameters": len(weights)}))


if __name__ == "__main__":
    main()
