#!/usr/bin/python3
"""The PyTorch yardstick for dojo's occupancy training (issue 31): the same network (models/occupancy.py, the same
seed, so the same initial weights as the ONNX file dojo trains), on exactly the same tensors (`dojo data export`
writes the samples dojo train reads), with the same optimizer settings (AdamW, beta 0.9/0.999, eps 1e-8, weight decay
0.01), batch and epochs. Prints each epoch's IoU on the held-out scenes, and the trivial predictors' IoU:

  empty        nothing occupied (IoU 0 wherever anything is)
  train mean   a cell is occupied where more than half of the training samples have it occupied
  ground only  the lowest layer of cells (the grid starts at the ground, so "ground" means the bottom layer)

With --onnx FILE it instead loads a model dojo trained (`dojo train ... --out FILE`) into the PyTorch module by name
and prints its test IoU, which must equal what dojo reported.

    /usr/bin/python3 models/occupancy_train.py --dojo build/apps/dojo/dojo --store fleet/ --data EXPORT_DIR
        [--cameras ...] [--size 96x64] [--grid 40x40x4] [--epochs 6] [--batch 16] [--lr 0.002] [--threads 2]
        [--bf16] [--onnx trained.onnx] [--json]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from occupancy import build  # noqa: E402

ALL_CAMERAS = "main,narrow,wide,left_pillar,right_pillar,left_repeater,right_repeater,rear"


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    kind, rank = data[2], data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    dtype = np.dtype(">f4") if kind == 0x0D else np.uint8
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * rank).reshape(dims).astype(
        np.float32 if kind == 0x0D else np.uint8)


def iou(predicted, labels):
    both = np.logical_and(predicted, labels).sum()
    either = np.logical_or(predicted, labels).sum()
    return float(both / either) if either else 1.0


def test_iou(model, x, y, batch=64):
    model.eval()
    predicted = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            predicted.append((model(x[i:i + batch]) > 0).numpy())
    model.train()
    return iou(np.concatenate(predicted), y.numpy().astype(bool))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dojo", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--data", required=True, help="a `dojo data export` directory")
    parser.add_argument("--cameras", default=ALL_CAMERAS)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--grid", default="40x40x4")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="train under PyTorch's bf16 autocast")
    parser.add_argument("--onnx", help="evaluate this dojo-trained model instead of training")
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    width, height = map(int, a.size.split("x"))
    cells = tuple(map(int, a.grid.split("x")))
    torch.manual_seed(a.seed)
    model = build(a.dojo, a.store, a.cameras.split(","), width, height, cells, a.channels)
    x_train = torch.from_numpy(read_idx(f"{a.data}/train-images.idx"))
    y_train = torch.from_numpy(read_idx(f"{a.data}/train-labels.idx").astype(np.float32))
    x_test = torch.from_numpy(read_idx(f"{a.data}/test-images.idx"))
    y_test = torch.from_numpy(read_idx(f"{a.data}/test-labels.idx").astype(np.float32))
    report = {}
    if a.onnx:
        import onnx
        from onnx import numpy_helper
        weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(a.onnx).graph.initializer}
        state = model.state_dict()
        loaded = {k: v for k, v in weights.items() if k in state}
        loaded.update({k: v for k, v in state.items() if k.endswith("num_batches_tracked") or k == "indices"})
        model.load_state_dict(loaded, strict=True)
        report["test_iou"] = test_iou(model, x_test, y_test)
        print(json.dumps(report) if a.json else f"{a.onnx}: test IoU {report['test_iou']:.4f}")
        return
    labels = y_test.numpy().astype(bool)
    mean = y_train.numpy().mean(axis=0) > 0.5
    nx, ny, nz = cells
    ground = np.zeros(nz * ny * nx, dtype=bool)
    ground[: ny * nx] = True
    report["baselines"] = {"empty": iou(np.zeros_like(labels), labels),
                           "train_mean": iou(np.broadcast_to(mean, labels.shape), labels),
                           "ground_only": iou(np.broadcast_to(ground, labels.shape), labels)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(a.seed)
    report["epochs"] = []
    for epoch in range(1, a.epochs + 1):
        start, total, steps = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order) - a.batch + 1, a.batch):
            idx = order[i:i + a.batch]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = loss_fn(model(x_train[idx]).float(), y_train[idx])
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        seconds = time.perf_counter() - start
        report["epochs"].append({"epoch": epoch, "train_loss": total / steps, "test_iou": test_iou(model, x_test, y_test),
                                 "samples_per_second": steps * a.batch / seconds})
        if not a.json:
            e = report["epochs"][-1]
            print(f"epoch {epoch}  train loss {e['train_loss']:.4f}  test IoU {e['test_iou']:.4f}  "
                  f"{e['samples_per_second']:.0f} samples/s", flush=True)
    if a.json:
        print(json.dumps(report))
    else:
        b = report["baselines"]
        print(f"trivial predictors' test IoU: empty {b['empty']:.4f}, train mean {b['train_mean']:.4f}, "
              f"ground only {b['ground_only']:.4f}")


if __name__ == "__main__":
    main()
