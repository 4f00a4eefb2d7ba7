#!/usr/bin/env bash
# pod-stress on the embedded cluster (memory store, defaults) with two
# kstress binaries, alternating, so that both see the same machine:
#   bench/pod-stress-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [DURATION]
# Prints, per run, the total request rate and the write errors.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [ROUNDS] [DURATION]" >&2; exit 2; }
old=$1 new=$2 rounds=${3:-3} duration=${4:-20s}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    binary=${!side}
    "$binary" run pod-stress --duration "$duration" > "$out/run.txt" 2>&1
    awk -v side="$side" -v round="$round" '
      $1 == "get" || $1 == "list" || $1 == "write" { rate += $4; if ($1 == "write") { writes = $2; errors = $3 } }
      END { printf "round %d %-3s total %8.1f req/s  write errors %d of %d\n", round, side, rate, errors, writes }
    ' "$out/run.txt"
  done
done
