#!/usr/bin/python3
"""Exports an OpenDojo test model from PyTorch to ONNX, as a user would before `dojo train model.onnx`.

    /usr/bin/python3 models/export_model.py --model mlp --opset 13 --out mlp.onnx
    /usr/bin/python3 models/export_model.py --model lenet --out lenet.onnx

The batch dimension is dynamic; parameters keep their PyTorch names (fc1.weight, ...), so a trained model can be
loaded back into the same module by name (check_trained.py).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo import MODELS  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (default: the model's own)")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset, 13..17")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the initial weights")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = MODELS[args.model]() if args.hidden is None else MODELS[args.model](args.hidden)
    example = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(model, example, args.out, opset_version=args.opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)


if __name__ == "__main__":
    main()
