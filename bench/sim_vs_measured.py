#!/usr/bin/env python3
"""The simulator against the machine it describes, in two parts.

steps: whole training steps of one process (bench/whole_steps.py): `dojo sim` of MLP, LeNet, ResNet-18 and a small
GPT in fp32, bf16 and cfp8 on machines/dev-vm.toml against `dojo train` of the same step, with a per-op-kind table.

allreduce: `dojo sim`'s gradient all-reduce for a data-parallel plan on
machines/dev-vm.toml (a description of this VM's MPI hosts, calibrated by bench/host_calibration), side by side with
`mpirun -np 2 dojo train` of the same plan on this VM.

For each model and bucket size, on loopback (2 ranks on one host: dev-vm) and across two network namespaces (one rank
in each, TCP over a veth pair: dev-vm:hosts=2,ranks_per_host=1; root only):
  measured   dojo train --json: data_parallel.allreduce_seconds_per_step (the buckets' reductions of a step, each the
             minimum over the ranks, mean over the steps after the first)
  predicted  dojo sim --strategy dp=2 --json: stages[0].grad_allreduce_s, the same buckets
             (compiler/gradient_buckets.h), twice: with the figures in machines/lib/hosts.toml, and with the calibration (bench/host_calibration)
             rerun here minutes before the measurement. This VM shares its host, and its link and reduction rates
             drift by up to 2x between hours; the second prediction takes the drift out of the comparison.

Usage: bench/sim_vs_measured.py BUILD_DIR [--part steps|allreduce|all] [--json OUT] [--steps N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import calibrated_dev_vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"]
NETNS = [os.path.join(ROOT, "scripts/netns_mpirun.sh")]
# (model, --bucket-mib): gradients from 0.2 MB to 13 MB, one bucket or several.
CASES = [("mlp:hidden=64", 8), ("lenet", 8), ("mlp", 8), ("mlp:hidden=1024", 8), ("mlp:hidden=2048", 8),
         ("mlp:hidden=4096", 8), ("mlp:hidden=1024x1024x1024", 8), ("mlp:hidden=1024x1024x1024", 2)]
BATCH = 64


def run(cmd, env=None, allow_skip=False):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if allow_skip and result.returncode == 77:
        return None
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
    return result.stdout


def calibrate(build, prefix):
    env = dict(os.environ, OMPI_MCA_mpi_yield_when_idle="1")
    extra = ["-x", "OMPI_MCA_mpi_yield_when_idle"] if prefix == NETNS else []
    out = run(prefix + extra + [os.path.join(build, "bench/host_calibration")], env=env, allow_skip=True)
    if out is None:
        return None
    return json.loads([line for line in out.splitlines() if line.startswith('{"fit"')][-1])["fit"]


def calibrated_machine(fit, where_key, directory):
    """A copy of machines/dev-vm.toml whose link and reduction figures are `fit`'s; returns its path."""
    gb_s = lambda name: f'"{fit[name]:.3f} GB/s"'
    figures = {"reduce_bandwidth": gb_s("reduce_bandwidth_gb_s"),
               "reduce_bandwidth_beyond_cache": gb_s("reduce_bandwidth_beyond_cache_gb_s")}
    if where_key == "link":
        figures["link_bandwidth"] = gb_s("transfer_bandwidth_gb_s")
        figures["link_bandwidth_beyond_cache"] = gb_s("transfer_bandwidth_beyond_cache_gb_s")
        figures["link_latency"] = f'"{fit["one_way_latency_us"]:.3f} us"'
    else:  # across the NIC: TCP's rate, whatever the cache
        figures["injection_bandwidth"] = gb_s("transfer_bandwidth_gb_s")
        figures["injection_latency"] = f'"{fit["one_way_latency_us"]:.3f} us"'
    return calibrated_dev_vm.write_dev_vm(figures, directory)


def measured(dojo, prefix, model, bucket_mib, steps):
    out = run(prefix + [dojo, "train", model, "--batch", str(BATCH), "--train-limit", str(BATCH * steps),
                        "--test-limit", "200", "--bucket-mib", str(bucket_mib), "--json"], allow_skip=True)
    if out is None:
        return None
    d = json.loads(out)["data_parallel"]
    return d["allreduce_seconds_per_step"], d["gradient_buckets"], d["wire_bytes_per_step"]


def predicted(dojo, machine, model, bucket_mib):
    out = run([dojo, "sim", model, "--machine", machine, "--batch", str(BATCH), "--strategy", "dp=2",
               "--precision", "fp32", "--optimizer", "sgd", "--bucket-mib", str(bucket_mib), "--json"])
    d = json.loads(out)
    buckets = sum(c["count"] for c in d["collectives"] if c["what"].startswith("gradient all-reduce"))
    return d["stages"][0]["grad_allreduce_s"], buckets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", help="the build directory (apps/dojo/dojo, bench/host_calibration)")
    parser.add_argument("--json", help="also write every figure here")
    parser.add_argument("--steps", type=int, default=40, help="allreduce: training steps per measurement (default 40)")
    parser.add_argument("--part", choices=("steps", "allreduce", "all"), default="all",
                        help="whole steps, the gradient all-reduce, or both (default)")
    parser.add_argument("--no-kinds", action="store_true", help="steps: skip the per-op-kind tables (half the time)")
    args = parser.parse_args()
    dojo = os.path.join(args.build, "apps/dojo/dojo")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    figures = {"batch": BATCH, "steps": args.steps, "setups": []}
    if args.part in ("steps", "all"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import whole_steps
        figures["whole_steps"] = whole_steps.run(args.build, by_kind=not args.no_kinds)
    if args.part == "steps":
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
        return
    scratch = tempfile.mkdtemp(prefix="sim-vs-measured-")
    for where, prefix, params, where_key in (("loopback (shared memory)", MPIRUN, "", "link"),
                                             ("two network namespaces (TCP over veth)", NETNS,
                                              ":hosts=2,ranks_per_host=1", "injection")):
        fit = calibrate(args.build, prefix)
        if fit is None:
            print(f"\n## {where}: skipped (needs root and ip netns)\n")
            continue
        machine = "dev-vm" + params
        now = calibrated_machine(fit, where_key, os.path.join(scratch, where_key)) + params
        print(f"\n## {where}: `dojo sim --machine {machine}` vs `dojo train` under mpirun, 2 ranks, batch {BATCH}\n")
        print("calibration now: " + ", ".join(f"{k} {v}" for k, v in fit.items()) + "\n")
        print("| model | gradient MB | buckets | measured ms/step | predicted (hosts.toml) | measured / predicted | "
              "predicted (calibrated now) | measured / predicted |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        setup = {"where": where, "machine": machine, "calibration": fit, "rows": []}
        for model, bucket_mib in CASES:
            seconds, buckets, wire = measured(dojo, prefix, model, bucket_mib, args.steps)
            want, sim_buckets = predicted(dojo, machine, model, bucket_mib)
            want_now, _ = predicted(dojo, now, model, bucket_mib)
            if buckets != sim_buckets:
                sys.exit(f"{model}: dojo train cut {buckets} buckets, dojo sim {sim_buckets}: the plans differ")
            label = model + (f", --bucket-mib {bucket_mib}" if bucket_mib != 8 else "")
            gradient_mb = wire / 1e6  # a rank sends 2 (N - 1) / N of the FP32 gradients: all of them for N = 2
            print(f"| {label} | {gradient_mb:.2f} | {buckets} | {seconds * 1e3:.3f} | {want * 1e3:.3f} | "
                  f"{seconds / want:.2f} | {want_now * 1e3:.3f} | {seconds / want_now:.2f} |", flush=True)
            setup["rows"].append({"model": model, "bucket_mib": bucket_mib, "buckets": buckets,
                                  "gradient_mb": gradient_mb, "measured_s": seconds, "predicted_s": want,
                                  "predicted_now_s": want_now})
        figures["setups"].append(setup)
    shutil.rmtree(scratch)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
