#!/usr/bin/env bash
# Fault injection for the data-parallel tests: runs an mpirun job, then stops (SIGSTOP: a hung rank) or kills
# (SIGKILL: a dead rank) one of its ranks, and reports how the job ended.
#
#   fault.sh stop|kill RANK TRIGGER OUTDIR -- mpirun ARGS...
#
# TRIGGER: a number of seconds to wait after the job starts, or a path: wait until that file exists (e.g. the first
# checkpoint). OUTDIR receives stdout, stderr and result ("exit CODE" and "seconds_after_fault S"). The rank is
# found among mpirun's children by the OMPI_COMM_WORLD_RANK of its environment, so jobs of other tests running at
# the same time are never touched.
set -u
mode=$1 rank=$2 trigger=$3 out=$4
shift 4
[[ $1 == "--" ]] && shift
mkdir -p "$out"

"$@" > "$out/stdout" 2> "$out/stderr" &
job=$!

deadline=$((SECONDS + 120))
if [[ $trigger =~ ^[0-9.]+$ ]]; then
  sleep "$trigger"
else
  while [[ ! -e $trigger ]] && kill -0 "$job" 2> /dev/null && ((SECONDS < deadline)); do sleep 0.05; done
fi

target=""
for pid in $(pgrep -P "$job"); do
  if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
    target=$pid
  fi
done
if [[ -z $target ]]; then
  echo "fault.sh: rank $rank of the job was not found (did the job end before the fault?)" >&2
  kill -KILL "$job" 2> /dev/null
  wait "$job"
  echo "exit notfound" > "$out/result"
  exit 1
fi
case $mode in
  stop) kill -STOP "$target" ;;
  kill) kill -KILL "$target" ;;
  *) echo "fault.sh: unknown mode $mode" >&2; exit 2 ;;
esac
fault_at=$(date +%s.%N)
wait "$job"
code=$?
ended_at=$(date +%s.%N)
{
  echo "exit $code"
  echo "seconds_after_fault $(awk -v a="$fault_at" -v b="$ended_at" 'BEGIN { printf "%.2f", b - a }')"
} > "$out/result"
