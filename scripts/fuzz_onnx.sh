#!/usr/bin/env bash
# Builds the ONNX importer fuzzer (clang, libFuzzer, AddressSanitizer) in build-fuzz/ and runs it for SECONDS
# (default 30) from a seed corpus of real PyTorch exports. Exits non-zero if the importer crashes, leaks or hangs
# on any input; libFuzzer leaves the input that did it in build-fuzz/ (crash-*, leak-*, timeout-*).
# Usage: scripts/fuzz_onnx.sh [SECONDS]
set -euo pipefail
seconds=${1:-30}
cd "$(dirname "$0")/.."

cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDOJO_BUILD_FUZZERS=ON -DDOJO_BUILD_TESTS=OFF -DDOJO_BUILD_BENCH=OFF -DDOJO_WERROR=OFF > /dev/null
cmake --build build-fuzz --target onnx_import_fuzzer -- -j "$(nproc)" > build-fuzz/build.log 2>&1 ||
  { tail -30 build-fuzz/build.log; exit 1; }

corpus=build-fuzz/corpus
mkdir -p "$corpus"
for spec in "mlp 13" "mlp_view 15" "lenet 13"; do
  set -- $spec
  seed="$corpus/seed-$1-opset$2.onnx"
  [[ -f "$seed" ]] || /usr/bin/python3 models/export_model.py --model "$1" --hidden 16 --opset "$2" --out "$seed"
done

echo "fuzzing the ONNX importer for ${seconds}s (corpus: $(ls "$corpus" | wc -l) inputs)"
cd build-fuzz
status=0
./fuzz/onnx_import_fuzzer -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
  corpus > fuzz.log 2>&1 || status=$?
grep -E "^(stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)|^artifact_prefix|Test unit written" fuzz.log || true
if [[ $status -ne 0 ]]; then
  echo "fuzz: the ONNX importer failed on an input (exit $status); see build-fuzz/fuzz.log" >&2
  tail -40 fuzz.log >&2
fi
exit $status
