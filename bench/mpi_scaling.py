#!/usr/bin/env python3
"""Data-parallel scaling on this machine, side by side in one run:

1. Training throughput: `dojo train` as one process (all cores; and one core) and as 2 ranks under mpirun (one core
   each), for the MLP and LeNet on Fashion-MNIST. Efficiency = 2-rank samples/s / (2 x one-core samples/s), and the
   ratio to the one process that uses every core.
2. All-reduce bus bandwidth (build/bench/allreduce_bench): MPI's all-reduce (the peer) and the gradient path of
   training (GradientSync: MPI order, fixed order, bf16 and cfp8 on the wire), on loopback (shared memory) and
   across two network namespaces (TCP over a veth pair; scripts/netns_mpirun.sh, root only).

Usage: bench/mpi_scaling.py BUILD_DIR [--json OUT]     (unset OPENBLAS_CORETYPE first for fair figures)
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def run(cmd, env=None):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
    return result.stdout


def train_rate(dojo, model, prefix, threads, limit):
    out = run(prefix + [dojo, "train", model, "--train-limit", str(limit), "--test-limit", "1000",
                        "--threads", str(threads), "--json"])
    return json.loads(out)["epochs"][0]["samples_per_second"]


def allreduce(bench, prefix):
    rows = []
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile() as tx:
        env["NETNS_TX_BYTES_FILE"] = tx.name
        result = subprocess.run(prefix + [bench], capture_output=True, text=True, env=env)
    if result.returncode == 77:
        return None
    if result.returncode != 0:
        sys.exit(f"allreduce_bench failed: {result.stderr[-3000:]}")
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", help="the build directory (with apps/dojo/dojo and bench/allreduce_bench)")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    dojo = os.path.join(args.build, "apps/dojo/dojo")
    bench = os.path.join(args.build, "bench/allreduce_bench")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cores = os.cpu_count()
    figures = {"cores": cores, "training": [], "allreduce": {}}

    print(f"## Training throughput, {cores} cores (samples/s, one epoch slice each)\n")
    print("| model | 1 process, 1 thread | 1 process, all cores | 2 ranks x 1 thread | efficiency vs 2 x 1 thread "
          "| 2 ranks / all-core process |")
    print("|---|---:|---:|---:|---:|---:|")
    for model, limit in (("mlp", 32000), ("lenet", 6400)):
        one = train_rate(dojo, model, [], 1, limit)
        full = train_rate(dojo, model, [], 0, limit)
        two = train_rate(dojo, model, MPIRUN + ["-np", "2"], 1, limit)
        figures["training"].append({"model": model, "one_thread": one, "all_cores": full, "two_ranks": two})
        print(f"| {model} | {one:.0f} | {full:.0f} | {two:.0f} | {two / (2 * one):.2f} | {full and two / full:.2f} |")

    for where, prefix in (("loopback (shared memory)", MPIRUN + ["-np", "2"]),
                          ("two network namespaces (TCP over veth)", [os.path.join(ROOT, "scripts/netns_mpirun.sh")])):
        rows = allreduce(bench, prefix)
        print(f"\n## All-reduce bus bandwidth, 2 ranks, {where} (GB/s)\n")
        if rows is None:
            print("skipped: network namespaces need root")
            continue
        figures["allreduce"][where] = rows
        modes = ["mpi", "sync", "fixed", "bf16", "cfp8"]
        print("| FP32 bytes | " + " | ".join(modes) + " | sync / mpi |")
        print("|---:|" + "---:|" * (len(modes) + 1))
        for size in sorted({r["bytes"] for r in rows}):
            by_mode = {r["mode"]: r for r in rows if r["bytes"] == size}
            cells = " | ".join(f"{by_mode[m]['bus_gb_s']:.3f}" for m in modes)
            ratio = by_mode["sync"]["bus_gb_s"] / by_mode["mpi"]["bus_gb_s"]
            print(f"| {size} | {cells} | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
