#!/usr/bin/env python3
"""How long `dojo sim` takes for one GPT-3 175B training step as the machine grows, from one tile to seven ExaPODs.

Targets (issue 4): <= 10 s on `exapod`, <= 30 s on `exapod-x7`, on the 2-core development machine; and (issue 33)
`--strategy auto` for GPT-3 on `exapod` decides in <= 10 s (--search; the best of --repeat runs, as for the cases). The wall time
is the whole command: catalog build of the 175B graph, autodiff, layouts, SimGrid collectives, the 1F1B event run.
Writes a table (and --json) and an SVG plot of simulation time against machine size.

Usage: bench/sim_scale.py build/apps/dojo/dojo [--svg docs/sim_scale.svg] [--repeat 3]
"""
import argparse
import json
import subprocess
import sys
import time

GPT3 = "gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200"
BATCH = 1536
# (machine, D1 chips, strategy): tensor parallel over a tile, pipeline over tiles, data parallel over the rest.
CASES = [
    ("tile", 25, "dp=1,tp=25,pp=1,mb=1536"),
    ("v1-matrix", 150, "dp=1,tp=25,pp=6,mb=1536"),
    ("cabinet", 300, "dp=1,tp=25,pp=12,mb=1536"),
    ("exapod", 3000, "dp=2,tp=25,pp=48,mb=768"),
    ("exapod-x7:pods=2", 6000, "dp=4,tp=25,pp=48,mb=384"),
    ("exapod-x7:pods=4", 12000, "dp=8,tp=25,pp=48,mb=192"),
    ("exapod-x7", 21000, "dp=16,tp=25,pp=48,mb=96"),
]


def run(dojo, machine, strategy):
    started = time.perf_counter()
    out = subprocess.run([dojo, "sim", GPT3, "--machine", machine, "--batch", str(BATCH), "--strategy", strategy,
                          "--json"], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, json.loads(out)


def svg(points, path):
    width, height, left, bottom = 560, 320, 70, 40
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    import math
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y1 = max(max(ys), 1.0) * 1.1
    def sx(x):
        return left + (math.log10(x) - x0) / (x1 - x0) * (width - left - 20)
    def sy(y):
        return height - bottom - y / y1 * (height - bottom - 20)
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{sy(0)}" x2="{width - 20}" y2="{sy(0)}" stroke="black"/>',
             f'<line x1="{left}" y1="{sy(0)}" x2="{left}" y2="20" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 5}" text-anchor="middle">D1 chips simulated (log scale)</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">'
             'seconds per simulated GPT-3 step</text>']
    for tick in (0.0, y1 / 2, y1):
        lines.append(f'<text x="{left - 5}" y="{sy(tick) + 4}" text-anchor="end">{tick:.2f}</text>')
    path_d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y, _) in enumerate(points))
    lines.append(f'<path d="{path_d}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for x, y, name in points:
        lines.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#1f77b4"/>')
        lines.append(f'<text x="{sx(x):.1f}" y="{sy(y) - 8:.1f}" text-anchor="middle">{name}</text>')
    lines.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dojo")
    parser.add_argument("--svg", help="write the plot here")
    parser.add_argument("--repeat", type=int, default=3, help="runs per machine; the best is reported")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--search", action="store_true", help="also time --strategy auto on exapod (target 10 s)")
    args = parser.parse_args()
    rows = []
    for machine, chips, strategy in CASES:
        best, result = min((run(args.dojo, machine, strategy) for _ in range(args.repeat)), key=lambda r: r[0])
        rows.append({"machine": machine, "d1": chips, "strategy": strategy, "wall_s": best,
                     "simulated_step_s": result["step_s"], "fits": result["fits"]})
    search = None
    if args.search:
        wall, result = min((run(args.dojo, "exapod", "auto") for _ in range(args.repeat)), key=lambda r: r[0])
        search = {"machine": "exapod", "strategy": "auto", "wall_s": wall, "chosen": result["strategy"],
                  "simulated_step_s": result["step_s"], "fits": result["fits"],
                  "alternatives": len(result.get("alternatives", [])),
                  "not_simulated": result.get("splits_not_simulated", 0)}
    if args.json:
        print(json.dumps({"cases": rows, "search": search}, indent=2))
    else:
        print(f"{'machine':<20} {'D1':>6} {'strategy':<26} {'wall s':>8} {'simulated step s':>17}")
        for r in rows:
            print(f"{r['machine']:<20} {r['d1']:>6} {r['strategy']:<26} {r['wall_s']:>8.2f} {r['simulated_step_s']:>17.3f}")
        targets = {"exapod": 10.0, "exapod-x7": 30.0}
        for r in rows:
            if r["machine"] in targets:
                print(f"{r['machine']}: {r['wall_s']:.2f} s against a target of {targets[r['machine']]:.0f} s "
                      f"({r['wall_s'] / targets[r['machine']]:.3f} of the budget)")
        if search:
            print(f"exapod --strategy auto: {search['wall_s']:.2f} s against a target of 10 s "
                  f"({search['wall_s'] / 10:.3f} of the budget); chose {search['chosen']}, "
                  f"{search['simulated_step_s']:.3f} s a step, {'fits' if search['fits'] else 'does not fit'}; "
                  f"{search['alternatives']} alternatives simulated, {search['not_simulated']} splits left out "
                  f"(their weights alone exceed a D1's memory)")
    if args.svg:
        svg([(r["d1"], r["wall_s"], r["machine"].split(":")[0] if ":" not in r["machine"] else r["machine"].split("=")[1] + " pods")
             for r in rows], args.svg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
