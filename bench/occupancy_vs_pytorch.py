#!/usr/bin/python3
"""Frames trained per second on the occupancy network, end to end from the clip store: dojo against PyTorch with a
PyAV-based loader, the same network, data, batch, epochs and threads, side by side in one run (issue 31).

Both runs start from the store's files and end after the last epoch's evaluation on the held-out scenes; the wall
time of the whole run is what counts (process start, decoding, training, evaluating):

  dojo     `dojo train occupancy --data clips:STORE,size=WxH,every=N,target=occupancy --precision P --threads T`: the
           clip pipeline decodes the train and held-out samples into memory once (C++ decode threads, libav*), then
           trains and evaluates
  pytorch  models/occupancy.py's network (proved the same as the catalog's by tests/e2e/cli_occupancy_test.cpp),
           torch.set_num_threads(T), fp32 or torch.autocast("cpu", dtype=torch.bfloat16); a PyAV loader as users write
           one: each epoch, every training clip's eight camera streams opened from the store's tar shards (no
           extraction) and decoded in step (codec threads T), every N-th frame converted by
           frame.to_ndarray(width, height, format="rgb24") (swscale), normalised as dojo's pipeline does (mean 0.45,
           std 0.225), samples shuffled through a buffer of 64; the held-out clips decoded the same way for the
           evaluation after each epoch. The occupancy labels come from `dojo data export` of the same store (the
           store's label files are dojo's format; reading them is not the loader's cost being compared); the loader
           checks that its frames are the exported samples' frames.

frames trained per second = training samples x cameras x epochs / the run's wall seconds. Target: dojo >= 1.5x
PyTorch in fp32, and dojo bf16 >= 1.5x PyTorch with bf16 autocast. Both runs print their held-out IoU (they must
learn, not just run). PyTorch runs as its users run it: an optimised BLAS, tcmalloc preloaded, OPENBLAS_CORETYPE
and OPENBLAS_L2_SIZE unset (bench/train_vs_pytorch.py's environment).

    /usr/bin/python3 bench/occupancy_vs_pytorch.py build/apps/dojo/dojo [--store DIR] [--scenes 20] [--epochs 2]
        [--batch 16] [--threads 2] [--size 96x64] [--every 6] [--precisions fp32,bf16] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_vs_pytorch import benchmark_env, torch_blas, torch_env  # noqa: E402

CAMERAS = ["main", "narrow", "wide", "left_pillar", "right_pillar", "left_repeater", "right_repeater", "rear"]


def run(command, env=None):
    return subprocess.run(command, check=True, capture_output=True, text=True, env=env)


def clip_data(store, size, every):
    return f"clips:{store},size={size},every={every},target=occupancy"


def dojo_run(dojo, store, args, precision, epochs):
    """(wall seconds, final held-out IoU) of one end-to-end dojo train."""
    command = [dojo, "train", "occupancy", "--data", clip_data(store, args.size, args.every), "--epochs",
               str(epochs), "--batch", str(args.batch), "--threads", str(args.threads), "--lr", "0.002",
               "--optimizer", "adamw", "--precision", precision, "--json"]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=benchmark_env())
    seconds = time.perf_counter() - start
    return seconds, json.loads(out.stdout)["epochs"][-1]["test_iou"]


# The PyTorch side runs in its own process (the environment PyTorch's users give it), as this script's code.
TORCH_RUN = r"""
import json, os, random, sys, tarfile, time
start = time.perf_counter()
import av, numpy as np, torch
sys.path.insert(0, MODELS)
from occupancy import build
from occupancy_train import read_idx, iou
torch.set_num_threads(THREADS)
torch.manual_seed(0)
random.seed(0)
width, height = map(int, SIZE.split("x"))
model = build(DOJO, STORE, CAMERAS, width, height, tuple(map(int, GRID.split("x"))))
optimizer = torch.optim.AdamW(model.parameters(), lr=0.002)

def clip_samples(shard, clip):
    # Every EVERY-th frame of the clip's eight streams decoded in step: [(first frame, float32 [8 * 3, H, W])].
    with tarfile.open(os.path.join(STORE, shard)) as tar:
        containers = [av.open(tar.extractfile(f"{clip}.{camera}.mp4")) for camera in CAMERAS]
        for c in containers:
            c.streams.video[0].thread_count = THREADS
        decoders = [c.decode(video=0) for c in containers]
        out = []
        for index, frames in enumerate(zip(*decoders)):
            if index % EVERY == 0:
                rgb = [f.to_ndarray(width=width, height=height, format="rgb24") for f in frames]
                x = (np.stack(rgb).astype(np.float32) / 255.0 - 0.45) / 0.225       # [8, H, W, 3]
                out.append(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(-1, height, width))
        for c in containers:
            c.close()
        return out

def loader(clips, labels, shuffle):
    # Samples in clip order, through a shuffle buffer of 64 (as dojo's pipeline streams them).
    buffer, at = [], 0
    for shard, clip in clips:
        for x in clip_samples(shard, clip):
            buffer.append((x, labels[at])); at += 1
            if shuffle and len(buffer) >= 64:
                yield buffer.pop(random.randrange(len(buffer)))
    if shuffle:
        random.shuffle(buffer)
    yield from buffer

train_y = torch.from_numpy(read_idx(os.path.join(EXPORT, "train-labels.idx")).astype(np.float32))
test_y = read_idx(os.path.join(EXPORT, "test-labels.idx")).astype(bool)
# The loader's first frames are the exported samples' (same clips, same order, same frames).
first = clip_samples(*TRAIN_CLIPS[0])[0]
exported = read_idx(os.path.join(EXPORT, "train-images.idx"))[0]
assert np.abs(first - exported).mean() < 0.05, f"the loader's frames are not dojo's: {np.abs(first - exported).mean()}"
context = torch.autocast("cpu", dtype=torch.bfloat16) if BF16 else torch.autocast("cpu", enabled=False)
for epoch in range(EPOCHS):
    model.train()
    batch_x, batch_y = [], []
    for x, y in loader(TRAIN_CLIPS, train_y, True):
        batch_x.append(torch.from_numpy(x)); batch_y.append(y)
        if len(batch_x) == BATCH:
            with context:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(torch.stack(batch_x)).float(),
                                                                          torch.stack(batch_y))
            optimizer.zero_grad(); loss.backward(); optimizer.step()
            batch_x, batch_y = [], []
    model.eval()
    predicted, pending = [], []
    with torch.no_grad(), context:
        for x, _ in loader(TEST_CLIPS, test_y, False):
            pending.append(torch.from_numpy(x))
            if len(pending) == BATCH:
                predicted.append((model(torch.stack(pending)).float() > 0).numpy()); pending = []
        if pending:
            predicted.append((model(torch.stack(pending)).float() > 0).numpy())
    score = iou(np.concatenate(predicted), test_y)
print(json.dumps({"seconds": time.perf_counter() - start, "samples": len(train_y), "iou": score}))
"""


def torch_run(dojo, store, export, args, bf16, epochs):
    """(wall seconds, final held-out IoU) of one end-to-end PyTorch run, interpreter start included."""
    clips = json.loads(run([dojo, "data", "query", store, "--json"]).stdout)
    split = {s: [(c["shard"], c["clip"]) for c in clips if c["split"] == s] for s in ("train", "test")}
    grid = "40x40x4"  # target=occupancy's default pooling of the store's default grid, and the catalog's voxels
    code = (f"MODELS={os.path.join(HERE, '..', 'models')!r}; DOJO={dojo!r}; STORE={store!r}; EXPORT={export!r}; "
            f"CAMERAS={CAMERAS!r}; SIZE={args.size!r}; GRID={grid!r}; EVERY={args.every}; THREADS={args.threads}; "
            f"EPOCHS={epochs}; BATCH={args.batch}; BF16={bf16}; TRAIN_CLIPS={split['train']!r}; "
            f"TEST_CLIPS={split['test']!r}\n" + TORCH_RUN)
    start = time.perf_counter()
    out = run(["/usr/bin/python3", "-c", code], env=torch_env())
    seconds = time.perf_counter() - start
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, result["iou"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dojo")
    parser.add_argument("--store", help="an existing clip store (default: dojo data synth makes one)")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--epochs", default="1,6",
                        help="epochs of each run, comma-separated for several runs (default 1,6: one where both sides "
                             "decode every frame once, one as the model is trained)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    dojo = os.path.abspath(args.dojo)
    blas, onednn = torch_blas()
    work = tempfile.mkdtemp(prefix="dojo-occupancy-bench-")
    store = args.store or os.path.join(work, "store")
    if not args.store:
        print(f"making a store of {args.scenes} scenes of 2 s (eight cameras at 320x240, 36 fps) ...", flush=True)
        run([dojo, "data", "synth", "--out", store, "--scenes", str(args.scenes), "--duration", "2", "--size",
             "320x240"])
    export = os.path.join(work, "export")
    os.makedirs(export)
    run([dojo, "data", "export", store, "--clips", clip_data(store, args.size, args.every).split(",", 1)[1],
         "--out", export])
    print(f"store {store}; {args.epochs} epoch(s) per run, batch {args.batch}, {args.threads} threads, size {args.size}, "
          f"every {args.every}th frame; PyTorch's BLAS {blas}; {onednn}")
    report = {"threads": args.threads, "batch": args.batch, "size": args.size,
                        "every": args.every, "pytorch_blas": blas, "runs": []}
    with open(os.path.join(export, "train-labels.idx"), "rb") as f:
        samples = int.from_bytes(f.read(8)[4:8], "big")  # the IDX header's first dimension
    for epochs in (int(e) for e in args.epochs.split(",")):
        for precision in args.precisions.split(","):
            ours = dojo_run(dojo, store, args, precision, epochs)
            theirs = torch_run(dojo, store, export, args, precision != "fp32", epochs)
            rate = lambda r: samples * len(CAMERAS) * epochs / r[0]  # noqa: E731
            ratio = rate(ours) / rate(theirs)
            peer = "PyTorch bf16 autocast" if precision != "fp32" else "PyTorch fp32"
            print(f"{epochs} epoch(s)  dojo {precision:<5} {rate(ours):6.0f} frames/s ({ours[0]:5.1f} s, IoU "
                  f"{ours[1]:.3f})   {peer:<21} {rate(theirs):6.0f} frames/s ({theirs[0]:5.1f} s, IoU "
                  f"{theirs[1]:.3f})   {ratio:.2f}x (target >= 1.5: {'met' if ratio >= 1.5 else 'NOT met'})",
                  flush=True)
            report["runs"].append({"epochs": epochs, "precision": precision, "peer": peer,
                                   "dojo_frames_per_s": rate(ours), "dojo_seconds": ours[0], "dojo_iou": ours[1],
                                   "pytorch_frames_per_s": rate(theirs), "pytorch_seconds": theirs[0],
                                   "pytorch_iou": theirs[1], "ratio": ratio, "samples": samples})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)  # the store it made and the export (a --store is the user's, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
