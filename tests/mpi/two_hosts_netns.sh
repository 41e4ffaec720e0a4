#!/usr/bin/env bash
# dojo train on two "hosts": one rank in each of two network namespaces (scripts/netns_mpirun.sh), the gradients over
# TCP on a veth pair. Checks that the job trains, that its parameters are bit-identical to the same job on loopback,
# and that the veth carried at least the gradient traffic the job reports.
#
#   two_hosts_netns.sh DOJO
#
# Exits 77 (CTest: skipped) where network namespaces cannot be made (not root, no CAP_NET_ADMIN).
set -euo pipefail
dojo=$1
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

train=(train mlp --train-limit 6400 --test-limit 1000 --threads 1 --json)
status=0
NETNS_TX_BYTES_FILE=$out/tx "$here/../../scripts/netns_mpirun.sh" "$dojo" "${train[@]}" > "$out/two_hosts.json" \
  2> "$out/two_hosts.err" || status=$?
if ((status == 77)); then
  cat "$out/two_hosts.err" >&2
  echo "two_hosts_netns: skipped" >&2
  exit 77
elif ((status != 0)); then
  echo "two_hosts_netns: FAILED: the two-namespace job failed:" >&2
  cat "$out/two_hosts.err" >&2
  exit 1
fi
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$dojo" "${train[@]}" > "$out/loopback.json" \
  2> "$out/loopback.err" || { cat "$out/loopback.err" >&2; exit 1; }

field() { sed -nE "s/.*\"$2\": \"?([0-9a-f.]+)\"?,?/\1/p" "$1" | head -1; }
digest_two=$(field "$out/two_hosts.json" parameter_digest)
digest_loop=$(field "$out/loopback.json" parameter_digest)
wire=$(field "$out/two_hosts.json" wire_bytes_per_step)
steps=$((6400 / 64))
sent=$(cat "$out/tx")
echo "two hosts: digest $digest_two, the veth carried $sent bytes; loopback: digest $digest_loop;" \
     "gradients: $steps steps x $wire bytes"
if [[ -z $digest_two || $digest_two != "$digest_loop" ]]; then
  echo "two_hosts_netns: FAILED: the parameters differ from the loopback run" >&2
  exit 1
fi
if ((sent < steps * ${wire%.*})); then
  echo "two_hosts_netns: FAILED: the veth carried $sent bytes, less than the $((steps * ${wire%.*})) gradient bytes" >&2
  exit 1
fi
echo "two_hosts_netns: passed"
