"""A copy of machines/dev-vm.toml whose host figures are ones measured minutes ago, for the benches that set `dojo sim`
against this VM (bench/sim_vs_measured.py, bench/whole_steps.py). The VM shares its host: its core clock (3.7 and 4.15
GHz on the same day, 2026-12-07), its BF16 product rate and its link rates drift between hours, so each bench
predicts twice: from machines/lib/hosts.toml as committed, and from this copy, which takes the drift out of the
comparison. Nothing here is fitted to what the benches then measure: every figure comes from a calibration program's
own shapes (bench/cpu_calibration, bench/host_calibration).
"""
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# flop_per_cycle of the core kind (machines/lib/hosts.toml): FP32 and the 16-bit products.
FP32_FLOP_PER_CYCLE = 64
BF16_FLOP_PER_CYCLE = 128


def kernel_figures(fit, threads):
    """hosts.toml's figures for the runtime's kernels (kinds epyc-zen5-core and dev-vm-rank) from
    bench/cpu_calibration's fit line, run with `threads` threads (the rank's cores). Not reference_bandwidth: the fit's reference_gb_s times
    attention's transposes, which the runtime now runs as tiled copies (runtime/transpose.h) and the simulator times
    at copy_bandwidth; hosts.toml's reference_bandwidth is the rate of the reference kernels that have no rate of
    their own, which cpu_calibration does not measure."""
    clock = fit["clock_ghz"]
    quantity = lambda value, unit: f'"{value:.4g} {unit}"'
    figures = {
        "clock": quantity(clock, "GHz"),
        # The sustained fractions are of the cores' peak at the running clock (sim/topology.cpp).
        "sustained_matrix_fraction": f"{fit['matmul_fp32_gflop_s'] / (clock * FP32_FLOP_PER_CYCLE * threads):.4g}",
        "sustained_matrix_fraction_16bit":
            f"{fit['matmul_bf16_gflop_s'] / (clock * BF16_FLOP_PER_CYCLE * threads):.4g}",
        "fused_memory_bandwidth": quantity(fit["fused_gb_s"], "GB/s"),
        "cache_bandwidth": quantity(fit["fused_in_cache_gb_s"] / threads, "GB/s"),  # a core's, as the kind holds it
        "node_overhead": quantity(fit["small_node_us"], "us"),
        "matrix_call_overhead": quantity(fit["matrix_call_overhead_us"], "us"),
        "kernel_overhead": quantity(fit["parallel_kernel_overhead_us"], "us"),
        "copy_bandwidth": quantity(fit["copy_gb_s"], "GB/s"),
    }
    for name, value in fit.items():
        if name.endswith("_ns") and (name.startswith(("fused_", "pool_", "round_", "transpose_"))):
            figures[name[:-len("_ns")] + "_time"] = quantity(value, "ns")
        elif name.startswith("reference_") and name.endswith("_gb_s") and name != "reference_gb_s":
            figures[name[:-len("_gb_s")] + "_bandwidth"] = quantity(value, "GB/s")
        elif name.startswith(("conv_", "matmul_small_")) and name.endswith("_efficiency"):
            figures[name] = f"{min(1.0, value):.4g}"
    return figures


def write_dev_vm(figures, directory):
    """Writes machines/dev-vm.toml and a lib/hosts.toml with `figures` (hosts.toml key -> TOML value) in place of its
    own into `directory`; returns the description's path. Each key must appear exactly once in hosts.toml."""
    os.makedirs(os.path.join(directory, "lib"), exist_ok=True)
    shutil.copy(os.path.join(ROOT, "machines/dev-vm.toml"), directory)
    with open(os.path.join(ROOT, "machines/lib/hosts.toml")) as f:
        text = f.read()
    for key, value in figures.items():
        text, count = re.subn(rf"^{key} = (\"[^\"]*\"|[0-9.e+-]+)", f"{key} = {value}", text, flags=re.M)
        if count != 1:
            sys.exit(f"machines/lib/hosts.toml: expected one {key} line, found {count}")
    with open(os.path.join(directory, "lib/hosts.toml"), "w") as f:
        f.write(text)
    return os.path.join(directory, "dev-vm.toml")
