#!/usr/bin/python3
"""Training throughput of dojo against PyTorch 1.13 on the CPU, side by side in one run: same models (the MLP
784-256-10 and the LeNet-style CNN), same batch, same optimizer (SGD, momentum 0.9), same thread count, fp32 (and
dojo's bf16/cfp8 emulation for reference). PyTorch runs fairly: tcmalloc preloaded, OPENBLAS_CORETYPE unset.

    bench/train_vs_pytorch.py build/apps/dojo/dojo [--threads 2] [--steps 200]

Prints samples/s for each and the ratio dojo / PyTorch. The issue's targets: MLP and LeNet >= 1.5x PyTorch fp32.
"""
import argparse
import json
import os
import subprocess
import sys

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

TORCH_SNIPPET = r"""
import sys, time, torch
sys.path.insert(0, {models!r})
from zoo import MODELS
torch.set_num_threads({threads})
torch.manual_seed(0)
model = MODELS[{model!r}]()
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.randn({batch}, 1, 28, 28)
y = torch.randint(0, 10, ({batch},))
def step():
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()
for _ in range(20):
    step()
start = time.perf_counter()
for _ in range({steps}):
    step()
print({batch} * {steps} / (time.perf_counter() - start))
"""


def torch_rate(model, threads, batch, steps, models_dir):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    code = TORCH_SNIPPET.format(models=models_dir, threads=threads, model=model, batch=batch, steps=steps)
    out = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def dojo_rate(dojo, model, precision, threads, batch, steps):
    out = subprocess.run([dojo, "train", model, "--train-limit", str(batch * steps), "--epochs", "1", "--batch",
                          str(batch), "--lr", "0.02", "--precision", precision, "--threads", str(threads), "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["epochs"][0]["samples_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    models_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    print(f"threads {args.threads}, batch {args.batch}, {args.steps} steps; tcmalloc "
          f"{'preloaded' if os.path.exists(TCMALLOC) else 'MISSING (apt-get install libtcmalloc-minimal4)'}")
    print(f"{'model':<8} {'PyTorch fp32':>14} {'dojo fp32':>12} {'ratio':>7} {'dojo bf16':>12} {'dojo cfp8':>12}"
          f"   target")
    for model in ("mlp", "lenet"):
        reference = torch_rate(model, args.threads, args.batch, args.steps, models_dir)
        rates = {p: dojo_rate(args.dojo, model, p, args.threads, args.batch, args.steps)
                 for p in ("fp32", "bf16", "cfp8")}
        ratio = rates["fp32"] / reference
        verdict = "met" if ratio >= 1.5 else "MISSED"
        print(f"{model:<8} {reference:>12.0f}/s {rates['fp32']:>10.0f}/s {ratio:>6.2f}x {rates['bf16']:>10.0f}/s "
              f"{rates['cfp8']:>10.0f}/s   >= 1.5x: {verdict}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
