#!/usr/bin/env bash
# The main job: Dojo's configurable floating point through the `dojo` CLI, real training with it, then compiling a
# step for the machine (placement, a functional check of the partitioning) and simulating GPT-3 on an ExaPOD.
# Usage: scripts/demo.sh [path/to/dojo]   (make demo passes the freshly built binary)
set -euo pipefail
dojo=${1:-build/apps/dojo/dojo}

section() { printf '\n== %s\n$ %s\n' "$1" "$2"; }

section "Version" "dojo --version"
"$dojo" --version

section "The formats" "dojo numerics formats"
"$dojo" numerics formats

section "CFloat8 1-4-3 at bias 7: range" "dojo numerics info --format cfp8_143 --bias 7"
"$dojo" numerics info --format cfp8_143 --bias 7

section "The same format at bias 20: a power-of-two shift of the whole range" \
        "dojo numerics info --format cfp8_143 --bias 20"
"$dojo" numerics info --format cfp8_143 --bias 20

section "Round to nearest-even: ties, the finite top binade, saturation, NaN, -0" \
        "printf '0.3\n1.0625\n479\n1e9\n-inf\nnan\n-0\n' | dojo numerics encode --format cfp8_143 --bias 7"
printf '0.3\n1.0625\n479\n1e9\n-inf\nnan\n-0\n' | "$dojo" numerics encode --format cfp8_143 --bias 7

section "Denormals: IEEE scale (default) vs the white paper's literal scale" \
        "echo 0.0078125 | dojo numerics encode -f cfp8_143 [--denormals paper]"
echo 0.0078125 | "$dojo" numerics encode -f cfp8_143
echo 0.0078125 | "$dojo" numerics encode -f cfp8_143 --denormals paper

n=20000
x=1.03125
section "Why stochastic rounding: $n copies of $x (between 1 and 1.125) averaged after rounding" \
        "copies $n $x | dojo numerics encode -f cfp8_143 -r stochastic --seed 1 | mean"
copies() { awk -v n="$1" -v x="$2" 'BEGIN { for (i = 0; i < n; i++) print x }'; }
mean() { awk -F'\t' '{ s += $2 } END { printf "mean %.6f over %d values\n", s / NR, NR }'; }
printf 'nearest:    '; copies "$n" "$x" | "$dojo" numerics encode -f cfp8_143 2>/dev/null | mean
printf 'stochastic: '; copies "$n" "$x" | "$dojo" numerics encode -f cfp8_143 -r stochastic --seed 1 2>/dev/null | mean
echo "(the exact value is $x: nearest loses the 0.03125 every time; stochastic keeps it on average)"

section "Per-tensor scaling: the bias that fits a gradient tensor whose max |g| is 0.0213, with 1 binade of headroom" \
        "dojo numerics bias --format cfp8_152 --max-abs 0.0213 --headroom 1"
"$dojo" numerics bias --format cfp8_152 --max-abs 0.0213 --headroom 1

section "Training for real with Dojo's CFloat8: the 784-256-10 MLP on Fashion-MNIST, one epoch" \
        "dojo train mlp --data fashion-mnist --epochs 1 --batch 64 --lr 0.05 --seed 0 --precision cfp8"
"$dojo" train mlp --data fashion-mnist --epochs 1 --batch 64 --lr 0.05 --seed 0 --precision cfp8

section "Compiling for the machine: LeNet's layers on rectangles of one D1's 354 cores, what each core holds" \
        "dojo plan lenet --machine d1 --batch 64 --strategy dp=1 --layout spatial --dump"
"$dojo" plan lenet --machine d1 --batch 64 --strategy dp=1 --layout spatial --dump

section "Proving the partitioning: a small GPT with tp=4, pp=2 and sequence parallelism run device by device, stage by stage, and layer by layer on its placement, against the whole step" \
        "dojo plan gpt:layers=2,hidden=48,heads=4,seq=16,vocab=96 --machine tile --batch 8 --strategy tp=4,pp=2,sp=1 --optimizer sgd --verify"
"$dojo" plan gpt:layers=2,hidden=48,heads=4,seq=16,vocab=96 --machine tile --batch 8 --strategy tp=4,pp=2,sp=1 \
    --optimizer sgd --verify 2>/dev/null | tail -2

section "Simulating GPT-3 175B on one ExaPOD (pipeline of 16 stages, tensor parallel over each tile)" \
        "dojo sim gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200 --machine exapod --batch 1536 --strategy dp=6,tp=25,pp=16,mb=256,sp=1,zero=1,recompute=1"
"$dojo" sim gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200 --machine exapod --batch 1536 \
    --strategy dp=6,tp=25,pp=16,mb=256,sp=1,zero=1,recompute=1 | sed -n 1,12p

printf '\nMore: dojo numerics --help; dojo train --help; dojo plan --help; dojo sim --help; dojo compare --help;\n'
printf 'dojo validate; dojo numerics table --format cfp8_152 --bias 15 --json\n'
