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
from zoo import MODELS, TOKEN_VOCABULARIES, sample_shape  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (default: the model's own)")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset, 13..17")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the initial weights")
    parser.add_argument("--out", required=True)
    parser.add_argument("--image-size", type=int, default=None,
                        help="export for square images of this size instead of 28x28 (resnet models only: they are "
                             "fully convolutional, e.g. 224 for the ResNet benchmark)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (resnet models only; 3 for RGB)")
    parser.add_argument("--fixed-batch", type=int, default=None,
                        help="export as many users do: traced at this batch, without dynamic_axes (the batch is "
                             "then baked into the graph's shape values)")
    parser.add_argument("--reference", default=None,
                        help="also write a reference for tests, computed in float64 from the exported float32 "
                             "weights: a raw little-endian float64 file of the input (batch 2), the train-mode "
                             "logits, d(mean cross-entropy vs labels 0,1)/d(first parameter), and the eval-mode "
                             "logits after that train-mode forward updated the running statistics")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    shape = sample_shape(args.model)
    if args.image_size is not None or args.channels != 1:
        if not args.model.startswith("resnet"):
            parser.error("--image-size and --channels apply to the resnet models only")
        from zoo import resnet
        model = resnet(int(args.model[len("resnet"):]), in_channels=args.channels)
        shape = (args.channels, args.image_size or 28, args.image_size or 28)
    else:
        model = MODELS[args.model]() if args.hidden is None else MODELS[args.model](args.hidden)
    vocabulary = TOKEN_VOCABULARIES.get(args.model)
    batch = args.fixed_batch or 2
    example = torch.zeros(batch, *shape, dtype=torch.long) if vocabulary else torch.zeros(batch, *shape)
    dynamic = None if args.fixed_batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
    torch.onnx.export(model, example, args.out, opset_version=args.opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes=dynamic, training=torch.onnx.TrainingMode.TRAINING,
                      do_constant_folding=False)
    if args.reference:
        write_reference(model, shape, args.reference, vocabulary)


def write_reference(model, shape, path, vocabulary=None):
    """What a correct importer must reproduce, computed by PyTorch on one random batch of 2. Float64, so that the
    comparison tests the import and not float32 rounding (BatchNorm on small batches amplifies it)."""
    model = model.double()
    torch.manual_seed(1)
    x = torch.randint(0, vocabulary, (2, *shape)) if vocabulary else torch.randn(2, *shape).double()
    model.train()
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    first = next(model.parameters())
    (grad,) = torch.autograd.grad(loss, [first])
    model.eval()
    with torch.no_grad():
        eval_logits = model(x)
    parts = [x.double(), logits.detach(), grad, eval_logits]
    with open(path, "wb") as f:
        for part in parts:
            f.write(part.contiguous().numpy().astype("<f8").tobytes())


if __name__ == "__main__":
    main()
