#!/usr/bin/python3
"""Runs bench/numerics_convert_bench once and prints every row with its ratios against the peers measured in the
same run: the portable path (same format, rounding, threads) and the FP32 -> 8-bit narrowing copy (same threads),
and the RoundTo passes of a training step (max-abs and one-pass rounding) against an FP32 copy, plus the issue's
per-core targets (nearest >= 1 G elements/s, stochastic >= 0.5 G elements/s), judged on the path
that Isa::Auto picks on this CPU (the best one measured).

Usage: bench/numerics_ratios.py path/to/numerics_convert_bench [extra benchmark flags]
"""
import json
import os
import re
import subprocess
import sys

TARGET_PER_CORE = {"nearest": 1.0e9, "stochastic": 0.5e9}


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    run = subprocess.run([binary, "--benchmark_format=json", *extra], env=env, capture_output=True, text=True,
                         check=True)
    report = json.loads(run.stdout)
    rows = {}
    for b in report["benchmarks"]:
        if b.get("error_occurred"):
            continue
        rows[b["name"]] = (b["items_per_second"], b.get("label", ""))

    def copy_rate(threads):
        return rows.get(f"BM_NarrowingCopy/unused:0/threads:{threads}/real_time", (None,))[0]

    # The targets apply to the path Isa::Auto picks: the best one measured here. Portable is the fallback.
    best_isa = max(int(re.search(r"isa:(\d)", name).group(1)) for name in rows if "isa:" in name)

    ctx = report["context"]
    print(f"machine: {ctx['num_cpus']} CPUs at {ctx['mhz_per_cpu']} MHz; {ctx.get('host_name', '')}")
    print(f"{'conversion':<26} {'path':<9} {'thr':>3} {'G elem/s':>9} {'per core':>9} {'vs portable':>12}"
          f" {'vs copy':>8} {'target/core':>12}")
    for name, (rate, label) in rows.items():
        m = re.match(r"BM_EncodeCfp8/(\w+)_(nearest|stochastic)/isa:(\d)/threads:(\d+)/real_time", name)
        if not m:
            continue
        fmt, rounding, isa, threads_arg = m.groups()
        threads = int(re.search(r"(\d+) thread", label).group(1))
        path = label.split(",")[0]
        portable = rows.get(name.replace(f"isa:{isa}", "isa:1"), (None,))[0]
        copy = copy_rate(threads_arg)
        per_core = rate / threads
        target = TARGET_PER_CORE[rounding]
        verdict = ("met" if per_core >= target else "MISSED") if int(isa) == best_isa else "(fallback)"
        print(f"{fmt + ' ' + rounding:<26} {path:<9} {threads:>3} {rate / 1e9:>9.3f} {per_core / 1e9:>9.3f}"
              f" {rate / portable:>11.2f}x {rate / copy:>7.2f}x {target / 1e9:>6.1f} {verdict}")
    # The training step's RoundTo (max-abs, bias, FP32 -> FP32 onto the grid) against the FP32 copy: its floor is
    # two reads and a write, the copy's one of each.
    for name, (rate, label) in rows.items():
        m = re.match(r"BM_RoundCfp8/(\w+)_(nearest|stochastic)/unused:0/threads:(\d+)/real_time", name)
        if not m:
            continue
        fmt, rounding, threads_arg = m.groups()
        threads = int(re.search(r"(\d+) thread", label).group(1))
        copy = rows.get(f"BM_Copy/unused:0/threads:{threads_arg}/real_time", (None,))[0]
        print(f"{'round ' + fmt + ' ' + rounding:<26} {'auto':<9} {threads:>3} {rate / 1e9:>9.3f}"
              f" {rate / threads / 1e9:>9.3f} {'':>12} {rate / copy:>7.2f}x (vs FP32 copy)")
    for threads_arg in ("1", "0"):
        rate = rows.get(f"BM_Copy/unused:0/threads:{threads_arg}/real_time", (None,))[0]
        if rate:
            print(f"{'peer: FP32 copy':<26} {'-':<9} {'all' if threads_arg == '0' else '1':>3} {rate / 1e9:>9.3f}")
    for threads_arg in ("1", "0"):
        rate = copy_rate(threads_arg)
        if rate:
            print(f"{'peer: narrowing copy':<26} {'-':<9} {'all' if threads_arg == '0' else '1':>3}"
                  f" {rate / 1e9:>9.3f}")


if __name__ == "__main__":
    main()
