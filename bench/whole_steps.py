"""Whole training steps on this machine: `dojo sim --machine dev-vm:ranks_per_host=1,cores_per_rank=2` (one process,
two threads) against `dojo train --threads 2` of the same step, for MLP, LeNet, ResNet-18 and a small GPT in fp32,
bf16 and cfp8; and, per op kind, the simulator's op times against `dojo train --profile`.

  measured   the median of `dojo train --json`'s step_seconds after the warm-up steps (the step as the trainer
             times it: the executor's run, the update's apply and the loss read back) in the fastest of 8 rounds in
             which every case runs once, and the median over all rounds beside it (the VM's neighbours move single
             runs by up to 1.5x, for minutes at a time; the fastest round is the machine as cpu_calibration's
             best-of runs measure it)
  predicted  `dojo sim --json` step_s for the same model, batch, precision and optimizer (AdamW), dp=1, twice: on
             machines/dev-vm.toml as committed, and on a copy whose kernel rates and core clock are the ones
             bench/cpu_calibration measures before and after the rounds, the less disturbed of the two
             (bench/calibrated_dev_vm.py: the VM's clock and BF16 product rate drift between hours; nothing in the
             copy comes from the models measured)
  per kind   `dojo train --profile --json` seconds per step by op kind (separate runs: the clock reads cost time;
             a run of the warm-up steps alone subtracted)
             against the simulator's `ops` (the busiest stage's op classes per step)

Used by bench/sim_vs_measured.py (its `steps` part).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import calibrated_dev_vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACHINE = "dev-vm:ranks_per_host=1,cores_per_rank=2"
THREADS = 2
PRECISIONS = ("fp32", "bf16", "cfp8")
GPT = "gpt:layers=2,hidden=256,heads=4,seq=128,vocab=256"


def cases(scratch):
    """(label, model for dojo, batch, extra train flags, steps, warm-up): ResNet-18 is torchvision's, exported at 64x64
    so that dojo sim and dojo train read the same input size from the file."""
    resnet = os.path.join(scratch, "resnet18_64px.onnx")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "models/export_model.py"), "--model", "resnet18",
                    "--channels", "3", "--image-size", "64", "--out", resnet], check=True, capture_output=True)
    synthetic = ["--data", "synthetic"]
    return [("MLP", "mlp", 64, synthetic, 60, 10),
            ("LeNet", "lenet", 64, synthetic, 60, 10),
            ("ResNet-18 64px", resnet, 16, synthetic + ["--sample-shape", "3,64,64", "--eval-batch", "16"], 12, 3),
            ("GPT 2x256", GPT, 16, synthetic, 20, 4)]


def env():
    """As a user runs dojo train: OpenMP's default waiting (sim_vs_measured's all-reduce part sets PASSIVE)."""
    e = dict(os.environ)
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY"):
        e.pop(name, None)
    return e


def run_json(command):
    result = subprocess.run(command, capture_output=True, text=True, env=env())
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


def train(dojo, model, batch, extra, steps, warmup, precision, profile):
    command = [dojo, "train", model, "--batch", str(batch), "--train-limit", str(batch * (steps + warmup)),
               "--test-limit", str(batch), "--epochs", "1", "--precision", precision, "--optimizer", "adamw",
               "--threads", str(THREADS), "--json", *extra] + (["--profile"] if profile else [])
    return run_json(command)


def measured_steps(dojo, all_cases, rounds=8):
    """{(label, precision): (the fastest round's median step after the warm-up, the median over all rounds)}, over
    `rounds` interleaved rounds of every case (one `dojo train` each). The VM's neighbours come and go over minutes
    (a burst slows one round of each case, not every run of one); the fastest round is the machine undisturbed, as
    cpu_calibration's best-of runs, which give the rates the prediction uses, are."""
    rounds_of = {}
    for _ in range(rounds):
        for label, model, batch, extra, steps, warmup in all_cases:
            for precision in PRECISIONS:
                out = train(dojo, model, batch, extra, steps, warmup, precision, False)
                rounds_of.setdefault((label, precision), []).append(out["epochs"][0]["step_seconds"][warmup:])
    return {key: (min(statistics.median(r) for r in runs), statistics.median([t for r in runs for t in r]))
            for key, runs in rounds_of.items()}


def measured_kinds(dojo, model, batch, extra, steps, warmup, precision):
    """Seconds per step by op kind (fused maps as 'FusedElementwise', as the simulator names them): the profile of
    a run of warm-up + steps steps less that of a run of the warm-up alone, over `steps` (the profile sums every run
    of the executor, the first steps' oneDNN code generation and the evaluation included)."""
    def kinds_of(run_steps):
        out = train(dojo, model, batch, extra, run_steps, 0, precision, True)
        kinds = {}
        for p in out["profile"]:
            name = "FusedElementwise" if p["op"] == "elementwise" else p["op"]
            kinds[name] = kinds.get(name, 0.0) + p["seconds"]
        return kinds
    short, long = kinds_of(warmup), kinds_of(warmup + steps)
    return {kind: max(0.0, long[kind] - short.get(kind, 0.0)) / steps for kind in long}


def predicted(dojo, model, batch, precision, machine=MACHINE):
    out = run_json([dojo, "sim", model, "--machine", machine, "--batch", str(batch), "--precision", precision,
                    "--strategy", "dp=1", "--optimizer", "adamw", "--json"])
    return out["step_s"], {o["op"]: o["seconds"] for o in out["ops"]}


def kind_table(label, precision, measured, simulated, top=8):
    rows = sorted(set(measured) | set(simulated), key=lambda k: -max(measured.get(k, 0), simulated.get(k, 0)))
    print(f"\n{label} {precision}, per step by op kind (ms):\n")
    print("| op kind | measured | predicted | predicted / measured |")
    print("|---|---:|---:|---:|")
    for kind in rows[:top]:
        m, s = measured.get(kind, 0.0), simulated.get(kind, 0.0)
        ratio = f"{s / m:.2f}" if m > 0 else "-"
        print(f"| {kind} | {m * 1e3:.3f} | {s * 1e3:.3f} | {ratio} |")


def calibrate(build):
    """bench/cpu_calibration's fit line, run now with the rank's threads."""
    out = subprocess.run([os.path.join(build, "bench/cpu_calibration"), "--threads", str(THREADS)],
                         capture_output=True, text=True, env=env(), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["fit"]


def run(build, by_kind=True):
    """Prints the whole-step table (and per-kind tables); returns {"calibration_now": the kernel rates the calibrated
    prediction uses, "rows": a row per model and precision}. The calibration runs before the measured rounds and
    after them, and the prediction takes the run the neighbours disturbed least (the faster 1024^3 FP32 product), as
    the measurement takes the fastest round: one calibration of a few seconds can fall in a neighbour's burst."""
    dojo = os.path.join(build, "apps/dojo/dojo")
    before = calibrate(build)
    rows = []
    with tempfile.TemporaryDirectory(prefix="whole-steps-") as scratch:
        all_cases = cases(scratch)
        measured = measured_steps(dojo, all_cases)
        fit = max(before, calibrate(build), key=lambda f: f["matmul_fp32_gflop_s"])
        print("\nthis machine's kernel rates now (bench/cpu_calibration, the less disturbed of a run before the "
              "measurement and one after it; machines/lib/hosts.toml holds earlier runs): " +
              ", ".join(f"{k} {v}" for k, v in fit.items()))
        now = calibrated_dev_vm.write_dev_vm(calibrated_dev_vm.kernel_figures(fit, THREADS),
                                             os.path.join(scratch, "calibrated"))
        now_machine = now + MACHINE[len("dev-vm"):]
        print(f"\n## Whole steps: `dojo sim --machine {MACHINE}` vs `dojo train --threads {THREADS}`\n")
        print("| model | batch | precision | measured ms/step (all rounds) | predicted (hosts.toml) "
              "| predicted / measured | predicted (calibrated now) | predicted / measured |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        kinds = []
        for label, model, batch, extra, steps, warmup in all_cases:
            for precision in PRECISIONS:
                seconds, all_rounds = measured[(label, precision)]
                want, simulated = predicted(dojo, model, batch, precision)
                want_now, _ = predicted(dojo, model, batch, precision, now_machine)
                print(f"| {label} | {batch} | {precision} | {seconds * 1e3:.3f} ({all_rounds * 1e3:.3f}) | "
                      f"{want * 1e3:.3f} | {want / seconds:.2f} | {want_now * 1e3:.3f} | {want_now / seconds:.2f} |",
                      flush=True)
                row = {"model": label, "spec": os.path.basename(model), "batch": batch, "precision": precision,
                       "measured_s": seconds, "measured_all_rounds_s": all_rounds, "predicted_s": want,
                       "predicted_now_s": want_now, "predicted_by_kind_s": simulated}
                if by_kind:
                    row["measured_by_kind_s"] = measured_kinds(dojo, model, batch, extra, steps, warmup, precision)
                    kinds.append((label, precision, row["measured_by_kind_s"], simulated))
                rows.append(row)
        for key, what in (("predicted_s", "hosts.toml"), ("predicted_now_s", "calibrated now")):
            within = sum(1 for r in rows if abs(r[key] / r["measured_s"] - 1) <= 0.15)
            print(f"\n{within} of {len(rows)} whole-step predictions ({what}) within 15% of the measured median")
        for label, precision, measured, simulated in kinds:
            kind_table(label, precision, measured, simulated)
    return {"calibration_now": fit, "rows": rows}
