#!/usr/bin/python3
"""Training throughput of dojo against PyTorch 1.13 on the CPU, side by side in one run: same models (the MLP
784-256-10, the LeNet-style CNN, and ResNet-18 at batch 32 on 3x224x224 images), same batch, same optimizer (SGD,
momentum 0.9), same thread count, fp32 (and dojo's bf16/cfp8 emulation). PyTorch runs fairly: tcmalloc preloaded,
OPENBLAS_CORETYPE unset. dojo trains the ResNet from the ONNX file PyTorch exports (models/export_model.py).

    bench/train_vs_pytorch.py build/apps/dojo/dojo [--threads 2] [--steps 200] [--resnet-steps 10] [--skip-resnet]

Prints samples/s for each and the ratio dojo / PyTorch. Both are timed step by step after the same warm-up steps (20
for the small models, 2 for ResNet-18), and a rate is the batch over the median step time: on a shared VM the odd
step that another tenant slows down moves a mean a lot and a median little. dojo's steps come from its `--json`
(`step_seconds`); its rate over its whole epoch, cold steps included, is printed below each row. The issue's
targets: MLP and LeNet >= 1.5x PyTorch fp32; ResNet-18 >= 1.0x in fp32 and >= 1.5x in bf16 and cfp8 (against
PyTorch fp32).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

TORCH_SNIPPET = r"""
import sys, time, torch
sys.path.insert(0, {models!r})
from zoo import MODELS, resnet
torch.set_num_threads({threads})
torch.manual_seed(0)
model = {constructor}
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.randn({batch}, *{shape!r})
y = torch.randint(0, 10, ({batch},))
def step():
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()
for _ in range({warmup}):
    step()
times = []
for _ in range({steps}):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
times.sort()
print({batch} / times[len(times) // 2])
"""


def torch_rate(constructor, shape, threads, batch, steps, warmup, models_dir):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    code = TORCH_SNIPPET.format(models=models_dir, threads=threads, constructor=constructor, batch=batch, steps=steps,
                                shape=tuple(shape), warmup=warmup)
    out = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def dojo_rate(dojo, model, precision, threads, batch, steps, warmup, extra=()):
    """Samples/s over the median of dojo's step times after `warmup` steps (one epoch of warmup + steps steps;
    evaluation and start-up excluded), and its rate over the whole epoch, cold steps included."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    out = subprocess.run([dojo, "train", model, "--train-limit", str(batch * (warmup + steps)), "--epochs", "1",
                          "--batch", str(batch), "--lr", "0.02", "--precision", precision, "--threads", str(threads),
                          "--json", *extra], capture_output=True, text=True, check=True, env=env)
    epoch = json.loads(out.stdout)["epochs"][0]
    timed = sorted(epoch["step_seconds"][warmup:])
    return batch / timed[len(timed) // 2], batch * (warmup + steps) / epoch["train_seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--resnet-steps", type=int, default=10)
    parser.add_argument("--skip-resnet", action="store_true")
    args = parser.parse_args()
    models_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    print(f"threads {args.threads}; tcmalloc "
          f"{'preloaded' if os.path.exists(TCMALLOC) else 'MISSING (apt-get install libtcmalloc-minimal4)'}")
    print(f"{'model':<9} {'batch':>5} {'PyTorch fp32':>14} {'dojo fp32':>12} {'ratio':>7} {'dojo bf16':>12} {'ratio':>7}"
          f" {'dojo cfp8':>12} {'ratio':>7}")

    def row(name, reference, measured, targets):
        rates = {p: measured[p][0] for p in measured}
        ratios = {p: rates[p] / reference for p in rates}
        verdicts = ", ".join(f"{p} {'met' if ratios[p] >= t else 'MISSED'} (>= {t}x)" for p, t in targets.items())
        print(f"{name:<9} {batch:>5} {reference:>12.1f}/s {rates['fp32']:>10.1f}/s {ratios['fp32']:>6.2f}x "
              f"{rates['bf16']:>10.1f}/s {ratios['bf16']:>6.2f}x {rates['cfp8']:>10.1f}/s {ratios['cfp8']:>6.2f}x   "
              f"{verdicts}")
        print(f"{'':<9} {'':>5} {'':>14} whole epoch, cold steps included: fp32 {measured['fp32'][1]:.1f}/s "
              f"({measured['fp32'][1] / reference:.2f}x)")
        sys.stdout.flush()

    batch = args.batch
    for model in ("mlp", "lenet"):
        reference = torch_rate(f"MODELS[{model!r}]()", (1, 28, 28), args.threads, batch, args.steps, 20, models_dir)
        rates = {p: dojo_rate(args.dojo, model, p, args.threads, batch, args.steps, 20) for p in ("fp32", "bf16", "cfp8")}
        row(model, reference, rates, {"fp32": 1.5})
    if args.skip_resnet:
        return
    batch = 32
    shape = (3, 224, 224)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = os.path.join(scratch, "resnet18.onnx")
        subprocess.run(["/usr/bin/python3", os.path.join(models_dir, "export_model.py"), "--model", "resnet18",
                        "--channels", "3", "--image-size", "224", "--out", onnx_path], check=True,
                       capture_output=True)
        reference = torch_rate("resnet(18, in_channels=3)", shape, args.threads, batch, args.resnet_steps, 2,
                               models_dir).__float__()
        extra = ["--data", "synthetic", "--sample-shape", ",".join(map(str, shape)), "--test-limit", str(batch),
                 "--eval-batch", str(batch)]
        rates = {p: dojo_rate(args.dojo, onnx_path, p, args.threads, batch, args.resnet_steps, 2, extra)
                 for p in ("fp32", "bf16", "cfp8")}
        row("resnet18", reference, rates, {"fp32": 1.0, "bf16": 1.5, "cfp8": 1.5})


if __name__ == "__main__":
    main()
