#!/usr/bin/python3
"""Training throughput and peak memory of dojo against PyTorch 1.13 on the CPU, like for like, side by side in one
run: same models (the MLP 784-256-10, the LeNet-style CNN, and ResNet-18 at batch 32 on 3x224x224 images), same
batch, same optimizer (SGD, momentum 0.9), same thread count. Each dojo precision is compared with PyTorch's nearest:
fp32 with fp32; bf16 with PyTorch's own bf16 autocast (torch.autocast("cpu", dtype=torch.bfloat16)); cfp8 with bf16
autocast too (PyTorch has no CFloat8: the emulated rounding is dojo's cost to carry).

PyTorch runs as its users run it: on an optimised BLAS (Debian's python3-torch calls whatever libblas.so.3 is, and
this script refuses to report against the reference BLAS: `apt-get install libopenblas0-pthread`, which
scripts/setup.sh installs), tcmalloc preloaded, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset. The BLAS and oneDNN it
loaded are printed. dojo trains the ResNet from the ONNX file PyTorch exports (models/export_model.py).

    bench/train_vs_pytorch.py build/apps/dojo/dojo [--threads 2] [--steps 200] [--resnet-steps 10] [--rounds 3]
                              [--skip-resnet] [--json FILE]

Prints samples/s for each and the ratio dojo / PyTorch. Both are timed step by step after the same warm-up steps (20
for the small models, 2 for ResNet-18), and a rate is the batch over the median step time: on a shared VM the odd
step that another tenant slows down moves a mean a lot and a median little. dojo's steps come from its `--json`
(`step_seconds`). Each model runs in rounds (PyTorch fp32, PyTorch bf16, then dojo in each precision), a ratio is
taken within a round, and the row shows the medians over the rounds with the ratios' range below. Peak resident
memory (the largest over the rounds) is each process's own, from wait4's rusage. Targets (issue 34): MLP and LeNet
>= 1.5x in every precision; ResNet-18 fp32 >= 1.2x, bf16 >= 1.3x, cfp8 >= 1.2x; peak memory <= PyTorch's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"

TORCH_SNIPPET = r"""
import contextlib, sys, time, torch
sys.path.insert(0, {models!r})
from zoo import MODELS, resnet
torch.set_num_threads({threads})
torch.manual_seed(0)
model = {constructor}
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.randn({batch}, *{shape!r})
y = torch.randint(0, 10, ({batch},))
precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if {bf16} else contextlib.nullcontext
def step():
    opt.zero_grad(set_to_none=True)
    with precision():
        loss = loss_fn(model(x), y)
    loss.backward()
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


BLAS_PROBE = r"""
import torch
a = torch.randn(64, 64)
torch.nn.functional.linear(a, a)  # loads the BLAS behind Linear
maps = open("/proc/self/maps").read()
blas = sorted({line.split()[-1] for line in maps.splitlines() if "blas" in line.split()[-1]})
onednn = [l.strip() for l in torch.__config__.show().splitlines() if "MKL-DNN" in l or "oneDNN" in l]
print(" ".join(blas) + "|" + " ".join(onednn))
"""


def benchmark_env():
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def torch_env():
    env = benchmark_env()
    if os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    return env


def run_measured(command, env):
    """Runs `command` and returns (stdout, peak resident bytes of that process)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:3])}... failed ({process.returncode}): {err.read().decode()}")
        return out.read().decode(), usage.ru_maxrss * 1024


def torch_blas():
    """The BLAS and oneDNN PyTorch loads here; exits if the BLAS is the reference one."""
    out = subprocess.run(["/usr/bin/python3", "-c", BLAS_PROBE], env=torch_env(), capture_output=True, text=True,
                         check=True).stdout.strip()
    blas, onednn = out.split("|")
    if "openblas" not in blas and "mkl" not in blas and "blis" not in blas:
        sys.exit(f"PyTorch would run on the reference BLAS ({blas or 'none found'}): its Linear layers would be a "
                 "quarter of their speed and every ratio inflated. Install an optimised one: "
                 "apt-get install libopenblas0-pthread (scripts/setup.sh does)")
    return blas, onednn


def torch_rate(constructor, shape, threads, batch, steps, warmup, models_dir, bf16):
    """(samples/s over the median step, peak resident bytes) of PyTorch in fp32 or bf16 autocast."""
    code = TORCH_SNIPPET.format(models=models_dir, threads=threads, constructor=constructor, batch=batch, steps=steps,
                                shape=tuple(shape), warmup=warmup, bf16=bf16)
    out, peak = run_measured(["/usr/bin/python3", "-c", code], torch_env())
    return float(out.strip().splitlines()[-1]), peak


def dojo_rate(dojo, model, precision, threads, batch, steps, warmup, extra=()):
    """Samples/s over the median of dojo's step times after `warmup` steps (one epoch of warmup + steps steps;
    evaluation and start-up excluded), its rate over the whole epoch, cold steps included, and its peak resident
    bytes."""
    out, peak = run_measured([dojo, "train", model, "--train-limit", str(batch * (warmup + steps)), "--epochs", "1",
                              "--batch", str(batch), "--lr", "0.02", "--precision", precision, "--threads",
                              str(threads), "--json", *extra], benchmark_env())
    epoch = json.loads(out)["epochs"][0]
    timed = sorted(epoch["step_seconds"][warmup:])
    return batch / timed[len(timed) // 2], batch * (warmup + steps) / epoch["train_seconds"], peak


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--resnet-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (PyTorch, dojo fp32, bf16, cfp8) per model; ratios are taken within a round")
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write every round's rates and the ratios to FILE")
    args = parser.parse_args()
    models_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    blas, onednn = torch_blas()
    print(f"threads {args.threads}; {args.rounds} round(s); PyTorch's BLAS {blas}; {onednn}; tcmalloc "
          f"{'preloaded' if os.path.exists(TCMALLOC) else 'MISSING (apt-get install libtcmalloc-minimal4)'}")
    print(f"{'model':<9} {'batch':>5} {'PyTorch fp32':>14} {'dojo fp32':>12} {'ratio':>7} {'PyTorch bf16':>14} "
          f"{'dojo bf16':>12} {'ratio':>7} {'dojo cfp8':>12} {'ratio':>7}")
    precisions = ("fp32", "bf16", "cfp8")
    like = {"fp32": "pytorch_fp32", "bf16": "pytorch_bf16", "cfp8": "pytorch_bf16"}  # each precision's peer
    report = {"threads": args.threads, "rounds": args.rounds, "pytorch_blas": blas, "pytorch_onednn": onednn,
              "models": {}}

    def measure(name, batch, reference, dojo, targets):
        """Rounds of PyTorch (fp32, bf16) then dojo in each precision, back to back, so that a ratio compares runs
        minutes apart at most (this VM's speed drifts over longer spans); prints the medians over the rounds, the
        ratios' range and the peak memory."""
        rounds = []
        for _ in range(args.rounds):
            peers = {"pytorch_fp32": reference(False), "pytorch_bf16": reference(True)}
            dojo_rates = {p: dojo(p) for p in precisions}
            rounds.append({**{k: v[0] for k, v in peers.items()}, **{p: dojo_rates[p][0] for p in precisions},
                           "whole_epoch_fp32": dojo_rates["fp32"][1],
                           "peak_bytes": {**{k: v[1] for k, v in peers.items()},
                                          **{p: dojo_rates[p][2] for p in precisions}},
                           "ratios": {p: dojo_rates[p][0] / peers[like[p]][0] for p in precisions}})
        ratio = {p: median(r["ratios"][p] for r in rounds) for p in precisions}
        low = {p: min(r["ratios"][p] for r in rounds) for p in precisions}
        high = {p: max(r["ratios"][p] for r in rounds) for p in precisions}
        rate = {p: median(r[p] for r in rounds) for p in ("pytorch_fp32", "pytorch_bf16", *precisions)}
        peak = {k: max(r["peak_bytes"][k] for r in rounds) for k in rounds[0]["peak_bytes"]}
        memory_met = {p: peak[p] <= peak[like[p]] for p in precisions}
        verdicts = ", ".join(f"{p} {'met' if ratio[p] >= t else 'MISSED'} (>= {t}x)" for p, t in targets.items())
        print(f"{name:<9} {batch:>5} {rate['pytorch_fp32']:>12.1f}/s {rate['fp32']:>10.1f}/s {ratio['fp32']:>6.2f}x "
              f"{rate['pytorch_bf16']:>12.1f}/s {rate['bf16']:>10.1f}/s {ratio['bf16']:>6.2f}x "
              f"{rate['cfp8']:>10.1f}/s {ratio['cfp8']:>6.2f}x   {verdicts}")
        print(f"{'':<9} {'':>5} {'':>14} ratios over the rounds: " +
              ", ".join(f"{p} {low[p]:.2f}-{high[p]:.2f}x" for p in precisions) +
              f"; fp32 whole epoch, cold steps included: {median(r['whole_epoch_fp32'] for r in rounds):.1f}/s")
        print(f"{'':<9} {'':>5} {'':>14} peak memory (MB): PyTorch fp32 {peak['pytorch_fp32'] / 1e6:.0f}, "
              f"bf16 {peak['pytorch_bf16'] / 1e6:.0f}; dojo " +
              ", ".join(f"{p} {peak[p] / 1e6:.0f} ({'met' if memory_met[p] else 'MISSED'})" for p in precisions))
        sys.stdout.flush()
        report["models"][name] = {"batch": batch, "rounds": rounds, "median_ratios": ratio, "peak_bytes": peak,
                                  "targets": targets, "met": {p: ratio[p] >= t for p, t in targets.items()},
                                  "memory_met": memory_met}

    for model in ("mlp", "lenet"):
        measure(model, args.batch,
                lambda bf16: torch_rate(f"MODELS[{model!r}]()", (1, 28, 28), args.threads, args.batch, args.steps, 20,
                                        models_dir, bf16),
                lambda p: dojo_rate(args.dojo, model, p, args.threads, args.batch, args.steps, 20),
                {"fp32": 1.5, "bf16": 1.5, "cfp8": 1.5})
    if not args.skip_resnet:
        batch = 32
        shape = (3, 224, 224)
        with tempfile.TemporaryDirectory() as scratch:
            onnx_path = os.path.join(scratch, "resnet18.onnx")
            subprocess.run(["/usr/bin/python3", os.path.join(models_dir, "export_model.py"), "--model", "resnet18",
                            "--channels", "3", "--image-size", "224", "--out", onnx_path], check=True,
                           capture_output=True)
            extra = ["--data", "synthetic", "--sample-shape", ",".join(map(str, shape)), "--test-limit", str(batch),
                     "--eval-batch", str(batch)]
            measure("resnet18", batch,
                    lambda bf16: torch_rate("resnet(18, in_channels=3)", shape, args.threads, batch,
                                            args.resnet_steps, 2, models_dir, bf16),
                    lambda p: dojo_rate(args.dojo, onnx_path, p, args.threads, batch, args.resnet_steps, 2, extra),
                    {"fp32": 1.2, "bf16": 1.3, "cfp8": 1.2})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
