#!/usr/bin/python3
"""The torchvision classification zoo through OpenDojo: each model exported from PyTorch 1.13 as users export it
(training mode, opset 13, dynamic batch; dropout and stochastic depth at p = 0, see zoo.torchvision_model), then
`dojo train` (two steps on synthetic images, fast kernels) and `dojo sim --machine tile`. Prints a Markdown table:
model, ONNX ops, status, dojo's step time here. Whether a model's training step also matches PyTorch's in float64
is CTest's (tests/e2e/onnx_models_test.cpp, the tv_* cases); the table says which.

    /usr/bin/python3 models/zoo_check.py build/apps/dojo/dojo [--models NAME,...] [--json FILE]
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from zoo import SAMPLE_SHAPES, TORCHVISION_ZOO  # noqa: E402

# The tv_* cases of tests/e2e/onnx_models_test.cpp, read from it so that the table cannot drift from the test.
with open(os.path.join(HERE, "..", "tests", "e2e", "onnx_models_test.cpp")) as _test:
    COMPARED = set(re.findall(r'ModelCase\{"tv_([a-z0-9_]+)"', _test.read()))


def run(command, timeout=900):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check(dojo, name, scratch):
    shape = SAMPLE_SHAPES["tv_" + name]
    path = os.path.join(scratch, name + ".onnx")
    exported = run(["/usr/bin/python3", os.path.join(HERE, "export_model.py"), "--model", "tv_" + name, "--out", path])
    row = {"model": name, "input": "x".join(map(str, shape)), "float64": name in COMPARED}
    if exported.returncode != 0:
        row["status"] = "PyTorch's exporter fails: " + exported.stderr.strip().splitlines()[-1][:120]
        return row
    import onnx
    ops = collections.Counter(node.op_type for node in onnx.load(path).graph.node)
    row["ops"] = ", ".join(sorted(ops))
    started = time.time()
    trained = run([dojo, "train", path, "--data", "synthetic", "--sample-shape", ",".join(map(str, shape)),
                   "--train-limit", "8", "--test-limit", "4", "--batch", "4", "--eval-batch", "4", "--json"])
    if trained.returncode != 0:
        row["status"] = "dojo train fails: " + trained.stderr.strip().splitlines()[-1][:200]
        return row
    epoch = json.loads(trained.stdout)["epochs"][0]
    row["step_s"] = sorted(epoch["step_seconds"])[-1]
    row["train_loss"] = epoch["train_loss"]
    simulated = run([dojo, "sim", path, "--machine", "tile", "--batch", "8", "--strategy", "dp=1", "--json"])
    if simulated.returncode != 0:
        row["status"] = "dojo sim fails: " + simulated.stderr.strip().splitlines()[-1][:200]
        return row
    row["sim_step_s"] = json.loads(simulated.stdout)["step_s"]
    row["status"] = "imports, trains, simulates"
    row["seconds"] = time.time() - started
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--models", default=",".join(TORCHVISION_ZOO))
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows = []
    print("| model | input | float64 step vs PyTorch (CTest) | status | dojo step here (slower of 2, batch 4) "
          "| ONNX ops |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models.split(","):
            row = check(os.path.abspath(args.dojo), name, scratch)
            rows.append(row)
            step = f"{row['step_s']:.2f} s" if "step_s" in row else "—"
            print(f"| {name} | {row['input']} | {'yes' if row['float64'] else '—'} | {row['status']} | {step} | "
                  f"{row.get('ops', '—')} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["status"].startswith("imports") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
