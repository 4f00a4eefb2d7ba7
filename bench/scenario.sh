#!/usr/bin/env bash
# Scenario engine benchmarks (issue: scenario files), on the embedded
# cluster (memory store, defaults), alternating so that every figure of a
# round sees the same machine:
#
# 1. Open loop: a create job of configmaps at `arrivals: constant,
#    rate: 2000` for SECONDS: achieved rate and start lag p99.
# 2. Closed loop: a create job of configmaps with no rate limit, against
#    `kstress run thrash --resource configmaps` (10 workers) for as long:
#    the create rate of each, and their ratio.
#
# Needs: python3. Usage: bench/scenario.sh [ROUNDS] [SECONDS]
set -euo pipefail
rounds=${1:-3} seconds=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p kstress
kstress="$target/release/kstress"

mkdir -p "$work/templates"
cat > "$work/templates/cm.yml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ .Iteration }}
data:
  payload: "{{ randAlphaNum 1024 }}"
YAML
# Each job is one namespace, gc'd at the end; verification and waits off,
# so the job's time is its creates.
job() { # name iterations extra-yaml
  cat <<YAML
global:
  gc: true
jobs:
  - name: $1
    jobIterations: $2
    namespace: $1
    namespacedIterations: false
    waitWhenFinished: false
    verifyObjects: false
$3
    objects:
      - objectTemplate: templates/cm.yml
YAML
}
job open $((2000 * seconds)) "    arrivals: constant
    rate: 2000" > "$work/open.yml"

for round in $(seq 1 "$rounds"); do
  rm -rf "$work/open" "$work/closed" "$work/thrash"
  "$kstress" scenario run "$work/open.yml" --output "$work/open" > /dev/null 2>&1
  "$kstress" run thrash --resource configmaps --duration "${seconds}s" --output "$work/thrash" > /dev/null 2>&1
  thrash_rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["operations"]["create"]["rate_per_s"])' "$work/thrash/results.json")
  # As many creates as thrash made, so both run for about as long.
  iterations=$(python3 -c 'import sys; print(int(float(sys.argv[1]) * int(sys.argv[2])))' "$thrash_rate" "$seconds")
  job closed "$iterations" "" > "$work/closed.yml"
  "$kstress" scenario run "$work/closed.yml" --output "$work/closed" > /dev/null 2>&1
  python3 - "$round" "$work" <<'PY'
import json, sys
round_, work = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(f"{work}/{name}/results.json"))
open_, closed, thrash = load("open"), load("closed"), load("thrash")
ol = open_["open_loop"]
lag = ol["start_lag"]["open: create ConfigMap"]
created = open_["operations"]["open: create ConfigMap"]
job = closed["extra"]["scenario"]["jobs"][0]
closed_rate = job["achieved_rate_per_s"]
thrash_rate = thrash["operations"]["create"]["rate_per_s"]
print(f"round {round_}: open loop target {ol['target_rate_per_s']:.0f}/s achieved "
      f"{open_['extra']['scenario']['jobs'][0]['achieved_rate_per_s']:.1f}/s, start lag p99 "
      f"{lag['p99_ms']:.3f} ms max {lag['max_ms']:.2f} ms, errors {created['errors']}; "
      f"closed loop scenario {closed_rate:.0f} creates/s vs thrash {thrash_rate:.0f} creates/s "
      f"= {closed_rate / thrash_rate:.2f}x")
PY
done
