#!/usr/bin/python3
"""Runs `dojo` on a sweep of bad inputs, as a hostile-but-ordinary user would give them, and counts what went wrong:
a crash (a signal), a hang (past --timeout), an "internal error", or bad input accepted (exit 0). Every input here is
one `dojo` must refuse with a clear error; the cases that tests/error/ asserts in detail are among them.

    scripts/bad_input_sweep.py build/apps/dojo/dojo [--timeout 60] [--json FILE]

Exits 1 if anything went wrong, printing each such input with the last line it printed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

GPT = "gpt:layers=1,hidden=64,heads=1"


def cases(scratch, machines):
    sim = lambda model, *more: ["sim", model, "--machine", "tile", "--batch", "8", *more]
    train = lambda *more: ["train", "mlp", "--train-limit", "128", "--test-limit", "10", *more]
    out = []
    # catalog specs: ranges, overflow, duplicates, impossible shapes
    for spec in [f"{GPT},seq=4294967296,vocab=100", f"{GPT},seq=2147483648,vocab=100", f"{GPT},seq=100000000",
                 "gpt:layers=1,hidden=99999999999,heads=1,seq=4,vocab=100", "gpt:layers=0", "gpt:heads=7",
                 "gpt:hidden=63,heads=2", "gpt:layers=2,layers=3", "gpt:", "gpt:layers", "gpt:layers=", "gpt:=1",
                 "gpt:layers=1,,", "gpt:layers=-1", "gpt:layers=1.5", "gpt:layers=0x10", "bert:seq=4294967296",
                 "bert:layers=0", "unet:channels=4294967296", "unet:size=3", "unet:levels=40", "unet:channels=33",
                 "unet:size=32,size=64", "unet:heads=0", "vit-b16:patch=0", "vit-b16:patch=1000", "vit-b16:patch=5",
                 "vit-b16:heads=5", "mlp:hidden=", "mlp:hidden=0", "mlp:hidden=1x", "mlp:hidden=x",
                 "mlp:hidden=99999999999", "mlp:hidden=-4", "mlp:width=3", "lenet:x=1", "resnet18:x", "resnet99",
                 ":", "", "nosuchmodel", "/nonexistent.onnx"]:
        out.append(sim(spec))
    out.append(["plan", f"{GPT},seq=4294967296,vocab=100", "--machine", "tile", "--batch", "8"])
    out.append(["train", f"{GPT},seq=4294967296,vocab=100", "--data", "synthetic"])
    # strategies and batches
    for strategy in ["dp=0", "dp=-1", "tp=3", "pp=1000", "mb=0", "vp=2", "dp=2,dp=2", "dp=99999999999", "zero=2",
                     "recompute=5", "x=1", "dp=1,", "=", "dp", "dp=1.5", "pp=2,mb=3,vp=2"]:
        for command in ("sim", "plan"):
            out.append([command, "mlp", "--machine", "d1", "--batch", "64", "--strategy", strategy])
    for batch in ["0", "-1", "-5", "abc", "1e3", "99999999999999999999"]:
        out.append(["sim", "mlp", "--machine", "d1", "--batch", batch])
        out.append(train("--batch", batch))
    # machines: specs and files
    for spec in ["d1:x=1", "exapod:", "superpod-a100:nodes=0", "superpod-a100:nodes=1000001",
                 "superpod-a100:nodes=2,nodes=3", "superpod-a100:nodes=-1", "superpod-a100:nodes=", "nosuch",
                 "/etc/passwd.toml", os.path.join(scratch, "missing.toml")]:
        out.append(["sim", "mlp", "--machine", spec, "--batch", "64"])
        out.append(["machine", "show", spec])
    out.append(["sim", "gpt", "--machine", "superpod-a100:nodes=1000000", "--batch", "1048576"])
    for name, (frm, to) in machines.items():
        for command in (["sim", "mlp", "--machine", "tile", "--batch", "64"], ["machine", "show", "tile"],
                        ["validate"]):
            out.append([*command, "--machines-dir", name])
    out.append(["machine", "list", "--machines-dir", "/nonexistent"])
    # sim and plan options
    for option in [["--precision", "fp16"], ["--optimizer", "lion"], ["--bucket-mib", "0"], ["--bucket-mib", "-1"],
                   ["--bucket-mib", "nan"], ["--grad-compression", "zip"], ["--top", "-1"], ["--trace", ""],
                   ["--trace", scratch], ["--trace", "/nonexistent/t.json"], ["--trace", "/dev/full"]]:
        out.append(["sim", "mlp", "--machine", "d1", "--batch", "64", *option])
    for option in [["--dump-pass", "nosuch"], ["--dump-pass", ""], ["--layout", "diagonal"]]:
        out.append(["plan", "mlp", "--machine", "d1", "--batch", "64", "--strategy", "dp=1", *option])
    out.append(["plan", "mlp", "--machine", "dgx-a100", "--batch", "64", "--strategy", "dp=1", "--layout", "spatial"])
    out.append(["compare", "mlp", "--batch", "0"])
    out.append(["compare", "mlp", "--batch", "64", "--machines", "d1,,tile"])
    # train options, data and files
    fifo = os.path.join(scratch, "f.onnx")
    os.mkfifo(fifo)
    os.mkdir(os.path.join(scratch, "dir.onnx"))
    with open(os.path.join(scratch, "model"), "w") as f:
        f.write("not read")
    with open(os.path.join(scratch, "garbage.onnx"), "w") as f:
        f.write("garbage")
    for model in [fifo, os.path.join(scratch, "dir.onnx"), os.path.join(scratch, "model"),
                  os.path.join(scratch, "garbage.onnx"), "/dev/null", "/etc/passwd.onnx"]:
        out.append(["train", model])
        out.append(["sim", model, "--machine", "d1", "--batch", "8"])
    for option in [["--epochs", "0"], ["--epochs", "-1"], ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-1"],
                   ["--lr", ""], ["--lr", "0"], ["--momentum", "nan"], ["--weight-decay", "-1"], ["--threads", "-1"],
                   ["--threads", "100000"], ["--eval-batch", "-1"], ["--train-limit", "-1"], ["--test-limit", "-3"],
                   ["--checkpoint-every", "0"], ["--checkpoint-every", "5"], ["--timeout", "-5"], ["--kernels", "x"],
                   ["--data", "idx"], ["--data", "text"], ["--data", "nosuch"], ["--data-dir", "/nonexistent"],
                   ["--data", "synthetic", "--sample-shape", "0"], ["--data", "synthetic", "--sample-shape", "-1,2"],
                   ["--data", "synthetic", "--sample-shape", "100000,100000,100000"], ["--rounding-scope", "x"],
                   ["--reduce-order", "x"], ["--grad-compression", "x"], ["--precision", "fp8"],
                   ["--optimizer", "lion"], ["--out", ""], ["--out", "/nonexistent/m.onnx"], ["--out", "x.onnx"],
                   ["--checkpoint", ""], ["--checkpoint", "/etc/passwd"], ["--resume"],
                   ["--checkpoint", os.path.join(scratch, "none"), "--resume"], ["--out="]]:
        out.append(train(*option))
    # numerics
    for args, stdin in [(["-f", "x"], "1\n"), (["-f", "cfp8_143", "-b", "64"], "1\n"),
                        (["-f", "cfp8_143", "-b", "-1"], "1\n"), (["-f", "cfp8_143", "-b", "-5"], "1\n"), (["-f", "cfp8_143", "-b", ""], "1\n"),
                        (["-f", "fp32", "-b", "1"], "1\n"), (["-f", "cfp8_143", "-r", "up"], "1\n"),
                        (["-f", "cfp8_143"], "banana\n"), (["-f", "cfp8_143"], "1\x002\n"),
                        (["-f", "cfp8_143"], "\xff\xfe\n"), (["-f", "cfp8_143"], "x" * 5000 + "\n"),
                        (["-f", "cfp8_143"], "0x1234567890\n"), (["-f", "cfp8_143"], "1 2\n")]:
        out.append((["numerics", "encode", *args], stdin))
    for args in [["-f", "cfp8_143", "--max-abs", "-1"], ["-f", "cfp8_143", "--max-abs", "nan"],
                 ["-f", "bf16", "--max-abs", "1"]]:
        out.append(["numerics", "bias", *args])
    out.append((["numerics", "decode", "-f", "cfp8_143"], "0x100\n"))
    out.append(["numerics", "table", "-f", "fp32"])
    out.append(["numerics", "frobnicate"])
    out.append([])
    return [c if isinstance(c, tuple) else (c, "") for c in out]


def broken_machines(scratch, source):
    """Copies of machines/ with one wrong value each: {directory: (what was replaced, by what)}."""
    edits = {"negative-bandwidth": ('edge_bandwidth = "2 TB/s"', 'edge_bandwidth = "-2 TB/s"'),
             "zero-clock": ('clock = "2 GHz"', 'clock = "0 GHz"'),
             "negative-sram": ('sram = "1.25 MiB"', 'sram = "-1.25 MiB"'),
             "huge-count": ('{ kind = "d1", count = 25 }', '{ kind = "d1", count = 10000000 }'),
             "huger-count": ('{ kind = "d1", count = 25 }', '{ kind = "d1", count = 99999999999999999 }'),
             "bad-toml": ('clock = "2 GHz"', 'clock = "2 GHz'),
             "wrong-unit": ('clock = "2 GHz"', 'clock = "2 GB"')}
    made = {}
    for name, (frm, to) in edits.items():
        target = os.path.join(scratch, name)
        shutil.copytree(source, target)
        path = os.path.join(target, "lib", "dojo-v1.toml")
        text = open(path).read()
        assert frm in text, frm
        open(path, "w").write(text.replace(frm, to, 1))
        made[target] = (frm, to)
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    outcomes = {"refused": 0, "crash": [], "hang": [], "internal error": [], "accepted": []}
    with tempfile.TemporaryDirectory() as scratch:
        machines = broken_machines(scratch, os.path.join(root, "machines"))
        runs = cases(scratch, machines)
        for number, (argv, stdin) in enumerate(runs, 1):
            try:
                r = subprocess.run([os.path.abspath(args.dojo), *argv], input=stdin.encode("latin-1"),
                                   capture_output=True, timeout=args.timeout, cwd=scratch)
                err = r.stderr.decode(errors="replace").strip().splitlines()
                last = err[-1][:200] if err else ""
                kind = ("crash" if r.returncode < 0 or r.returncode >= 128 else
                        "internal error" if "internal error" in r.stderr.decode(errors="replace") else
                        "accepted" if r.returncode == 0 else None)
            except subprocess.TimeoutExpired:
                kind, last = "hang", f"still running after {args.timeout:.0f} s"
            if kind is None:
                outcomes["refused"] += 1
            else:
                outcomes[kind].append({"args": argv, "said": last})
                print(f"{kind}: dojo {' '.join(repr(a) if a == '' or ' ' in a else a for a in argv)}  ->  {last}")
            print(f"\r{number}/{len(runs)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    bad = sum(len(v) for k, v in outcomes.items() if k != "refused")
    print(f"{len(runs)} bad inputs: {outcomes['refused']} refused with a clear error; {len(outcomes['crash'])} crashed, "
          f"{len(outcomes['hang'])} hung, {len(outcomes['internal error'])} internal errors, "
          f"{len(outcomes['accepted'])} accepted")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(outcomes, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
