#!/usr/bin/python3
"""Held-out occupancy IoU of dojo's training in fp32, bf16 and cfp8 against PyTorch's, over several seeds (issue 31).

One training run's IoU moves by several points with the initial weights and the order of the samples (a few hundred
samples), so each figure here is a mean over seeds, with the spread between seeds beside it. For each seed S:

  dojo            dojo train occupancy --seed S in fp32, bf16 and cfp8, from the clip store: the catalog's network
                  (the same as models/occupancy.py's: tests/e2e/cli_occupancy_test.cpp), initial weights drawn by seed
  PyTorch         models/occupancy_train.py --seed S: models/occupancy.py's network, PyTorch's initial weights drawn by
                  seed (the same distributions: PyTorch's defaults), on exactly the tensors dojo reads
                  (`dojo data export`), the same optimizer (AdamW, lr 0.002), batch and epochs

Targets: dojo fp32 within 1 IoU point of PyTorch's; bf16 and cfp8 within 1.5 points of dojo fp32 (means over the
seeds); every run far above the trivial predictors (empty, the training set's mean occupancy, the ground layer only).

    /usr/bin/python3 bench/occupancy_iou.py build/apps/dojo/dojo --store DIR [--seeds 0,1,2,3,4] [--epochs 15]
        [--size 96x64] [--every 6] [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models")


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dojo")
    parser.add_argument("--store", required=True, help="a clip store (dojo data synth)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    dojo = os.path.abspath(args.dojo)
    work = tempfile.mkdtemp(prefix="dojo-occupancy-iou-")
    clips = f"size={args.size},every={args.every},target=occupancy"
    export = os.path.join(work, "export")
    os.makedirs(export)
    run([dojo, "data", "export", args.store, "--clips", clips, "--out", export])
    common = ["--epochs", str(args.epochs), "--batch", "16", "--lr", "0.002"]
    runs, baselines = [], None
    for seed in (int(s) for s in args.seeds.split(",")):
        row = {"seed": seed}
        for precision in ("fp32", "bf16", "cfp8"):
            report = json.loads(run([dojo, "train", "occupancy", "--data", f"clips:{args.store},{clips}",
                                     "--optimizer", "adamw", "--seed", str(seed), "--precision", precision,
                                     "--json"] + common))
            row[precision] = report["epochs"][-1]["test_iou"]
        torch_report = json.loads(run(["/usr/bin/python3", os.path.join(MODELS, "occupancy_train.py"), "--dojo", dojo,
                                       "--store", args.store, "--data", export, "--size", args.size, "--seed",
                                       str(seed), "--json"] + common))
        row["pytorch"] = torch_report["epochs"][-1]["test_iou"]
        baselines = torch_report["baselines"]
        runs.append(row)
        print(f"seed {seed}: dojo fp32 {row['fp32']:.3f}  bf16 {row['bf16']:.3f}  cfp8 {row['cfp8']:.3f}  "
              f"PyTorch fp32 {row['pytorch']:.3f}", flush=True)
    mean = {k: statistics.mean(r[k] for r in runs) for k in ("fp32", "bf16", "cfp8", "pytorch")}
    spread = {k: statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0 for k in mean}
    checks = [("dojo fp32 - PyTorch fp32", mean["fp32"] - mean["pytorch"], 0.01),
              ("dojo bf16 - dojo fp32", mean["bf16"] - mean["fp32"], 0.015),
              ("dojo cfp8 - dojo fp32", mean["cfp8"] - mean["fp32"], 0.015)]
    print(f"means over {len(runs)} seeds (standard deviation between seeds): " +
          ", ".join(f"{name} {mean[k]:.3f} ({spread[k]:.3f})" for k, name in
                    (("fp32", "dojo fp32"), ("bf16", "dojo bf16"), ("cfp8", "dojo cfp8"), ("pytorch", "PyTorch fp32"))))
    trivial = max(baselines.values())
    learned = min(mean.values()) > trivial
    for name, difference, bound in checks:
        verdict = ("met" if abs(difference) <= bound else "NOT met") if learned else "says nothing"
        print(f"  {name}: {100 * difference:+.1f} points (target within {100 * bound:.1f}: {verdict})")
    if not learned:
        print(f"  a mean IoU is at or below the best trivial predictor's {trivial:.3f}: the runs did not learn enough "
              "for the comparison to mean anything (train longer, or on a larger store)")
    print("trivial predictors: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "means": mean, "spread": spread, "baselines": baselines, "epochs": args.epochs},
                      f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
