#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer) in build-fuzz/ and runs each for its share of the time:
#   onnx_import_fuzzer    the ONNX importer, SECONDS (default 30), from a seed corpus of real PyTorch exports
#   machine_toml_fuzzer   machine descriptions (presets and kind libraries), SECONDS / 3
#   spec_fuzzer           catalog model specs and --strategy specs, SECONDS / 3
#   numerics_line_fuzzer  `dojo numerics encode/decode`'s line reader, SECONDS / 3
#   clip_store_fuzzer     the clip store's readers: labels, shards, manifest, SECONDS / 3
#   job_request_fuzzer    the service's job requests (POST /v1/jobs bodies), SECONDS / 3
# Exits non-zero if a target crashes, leaks or hangs on any input; libFuzzer leaves that input in build-fuzz/
# (crash-*, leak-*, timeout-*), and fuzz-NAME.log holds the run.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
seconds=${1:-30}
share=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
cd "$(dirname "$0")/.."
targets=(onnx_import_fuzzer machine_toml_fuzzer spec_fuzzer numerics_line_fuzzer clip_store_fuzzer job_request_fuzzer)

cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDOJO_BUILD_FUZZERS=ON -DDOJO_BUILD_TESTS=OFF -DDOJO_BUILD_BENCH=OFF -DDOJO_WERROR=OFF > /dev/null
cmake --build build-fuzz --target "${targets[@]}" -- -j "$(nproc)" > build-fuzz/build.log 2>&1 ||
  { tail -30 build-fuzz/build.log; exit 1; }

# Seed corpora: real exports for the importer, the shipped presets and libraries, the catalog's and README's specs.
mkdir -p build-fuzz/corpus build-fuzz/corpus-machine build-fuzz/corpus-spec build-fuzz/corpus-line build-fuzz/corpus-clips \
         build-fuzz/corpus-jobs
for spec in "mlp 13" "mlp_view 15" "lenet 13"; do
  set -- $spec
  seed="build-fuzz/corpus/seed-$1-opset$2.onnx"
  [[ -f "$seed" ]] || /usr/bin/python3 models/export_model.py --model "$1" --hidden 16 --opset "$2" --out "$seed"
done
for f in machines/*.toml; do { printf '\x00'; cat "$f"; } > "build-fuzz/corpus-machine/preset-$(basename "$f")"; done
for f in machines/lib/*.toml; do { printf '\x01'; cat "$f"; } > "build-fuzz/corpus-machine/lib-$(basename "$f")"; done
i=0
for s in "mlp:hidden=512x256" "lenet" "gpt:layers=2,hidden=64,heads=4,seq=64,vocab=256" "bert:seq=128" \
         "vit-b16:patch=32" "unet:size=32,levels=3"; do
  printf '\x01%s' "$s" > "build-fuzz/corpus-spec/model-$((i++))"
done
for s in "dp=4,tp=8,pp=2,mb=16" "dp=2,pp=2,mb=4,vp=2" "tp=4,sp=1,zero=1,recompute=1"; do
  printf '\x00%s' "$s" > "build-fuzz/corpus-spec/strategy-$((i++))"
done
printf '0.3\n-1.5e-7\n1e999\n0x3f800000\n# comment\n\ninf\nnan\n0x38\n' > build-fuzz/corpus-line/seed
printf '{"kind": "train", "args": {"model": "mlp", "epochs": 2, "lr": 0.01, "sample_shape": [1, 28, 28]}, "priority": "high", "slots": 2}' \
  > build-fuzz/corpus-jobs/train
printf '{"kind": "sim", "args": {"model": "gpt", "machine": "tile", "batch": 64, "strategy": "auto"}}' > build-fuzz/corpus-jobs/sim
# A real store (one short scene at 32x32), its labels, shard and manifest each a seed, behind its selector byte.
if [[ ! -f build-fuzz/corpus-clips/manifest ]]; then
  store=build-fuzz/seed-store
  rm -rf "$store"
  "${DOJO:-build/apps/dojo/dojo}" data synth --out "$store" --scenes 1 --duration 0.1 --size 32x32 --range 4 \
    --heights 2 > /dev/null 2>&1 || true
  if [[ -f "$store/manifest.sqlite" ]]; then
    { printf '\x00'; tar xOf "$store/shard-000000.tar" clip-000000.labels; } > build-fuzz/corpus-clips/labels
    { printf '\x01'; cat "$store/shard-000000.tar"; } > build-fuzz/corpus-clips/shard
    { printf '\x02'; cat "$store/manifest.sqlite"; } > build-fuzz/corpus-clips/manifest
  fi
fi

cd build-fuzz
status=0
run() {  # name corpus seconds
  local s=0
  echo "fuzzing $1 for ${3}s (corpus: $(ls "$2" | wc -l) inputs)"
  "./fuzz/$1" -max_total_time="$3" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "$2" > "fuzz-$1.log" 2>&1 ||
    s=$?
  grep -E "^(stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)|^artifact_prefix|Test unit written" \
    "fuzz-$1.log" || true
  if [[ $s -ne 0 ]]; then
    echo "fuzz: $1 failed on an input (exit $s); see build-fuzz/fuzz-$1.log" >&2
    tail -40 "fuzz-$1.log" >&2
    status=$s
  fi
}
run onnx_import_fuzzer corpus "$seconds"
run machine_toml_fuzzer corpus-machine "$share"
run spec_fuzzer corpus-spec "$share"
run numerics_line_fuzzer corpus-line "$share"
run clip_store_fuzzer corpus-clips "$share"
run job_request_fuzzer corpus-jobs "$share"
exit $status
