#!/usr/bin/env bash
# Load driver benchmarks (issue: load drivers and measurement).
#
# 1. pod-stress with its defaults against the embedded cluster: requests/s
#    and p99 per class.
# 2. Client headroom, in one run against one `kstress serve`: GET of a 10 KiB
#    pod by h2load (server-only figure, as in bench/apiserver.sh), then the
#    closed-loop `kstress run get` driver with 64 workers against the same
#    server; the ratio of the two.
# 3. Open-loop precision: churn at 2,000 creates/s with constant arrivals
#    against the embedded cluster: achieved rate and start lag.
#
# Needs: h2load (Debian: nghttp2-client), curl, python3.
# Usage: bench/load.sh [SECONDS]
set -euo pipefail
seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in h2load curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client curl python3)" >&2; exit 1; }
done

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p kstress
kstress="$target/release/kstress"

summary() {
  python3 - "$1" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
total = 0.0
for name, op in sorted(results["operations"].items()):
    total += op["rate_per_s"]
    print(f"  {name:16} {op['count']:>9} req  {op['rate_per_s']:>9.1f}/s  "
          f"p50 {op['p50_ms']:.2f} ms  p99 {op['p99_ms']:.2f} ms  errors {op['errors']}")
print(f"  {'total':16} {total:>23.1f}/s")
open_loop = results.get("open_loop")
if open_loop:
    print(f"  target {open_loop['target_rate_per_s']}/s, achieved {open_loop['achieved_rate_per_s']:.1f}/s")
    for name, lag in sorted(open_loop["start_lag"].items()):
        print(f"  start lag {name:8} p50 {lag['p50_ms']:.3f} ms  p99 {lag['p99_ms']:.3f} ms  max {lag['max_ms']:.3f} ms")
PY
}

echo "== pod-stress, defaults, embedded cluster, ${seconds}s"
"$kstress" run pod-stress --duration "${seconds}s" --output "$work/pod-stress" >/dev/null
summary "$work/pod-stress/results.json"

echo "== GET of a 10 KiB pod: h2load (server only) vs kstress run get, one server"
port=$((20000 + RANDOM % 10000))
"$kstress" serve --nodes 0 --listen "127.0.0.1:$port" --kubeconfig-out "$work/kubeconfig" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
token=$(awk '/token:/ {print $2}' "$work/kubeconfig")
awk '/certificate-authority-data:/ {print $2}' "$work/kubeconfig" | base64 -d >"$work/ca.pem"
api="https://127.0.0.1:$port"
curl_api() { curl -sS --fail-with-body --cacert "$work/ca.pem" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
payload=$(head -c 10240 /dev/zero | tr '\0' 'x')
curl_api -X POST "$api/api/v1/namespaces" -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}' >/dev/null
curl_api -X POST "$api/api/v1/namespaces/bench/pods" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-10k\",\"annotations\":{\"payload\":\"${payload:0:9800}\"}},\"spec\":{\"nodeName\":\"bench-node\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}" >/dev/null
h2load -D "$seconds" -c 1 -m 16 -H "Authorization: Bearer $token" \
  "$api/api/v1/namespaces/bench/pods/pod-10k" >"$work/h2load.txt"
server_only=$(awk '/^finished in/ {print $4}' "$work/h2load.txt")
echo "  h2load -c1 -m16:            ${server_only} req/s"
"$kstress" run get --workers 64 --resource pods --object-size 10KiB --duration "${seconds}s" --kubeconfig "$work/kubeconfig" --yes \
  --output "$work/get" >/dev/null
summary "$work/get/results.json"
python3 - "$work/get/results.json" "$server_only" <<'PY'
import json, sys
rate = json.load(open(sys.argv[1]))["operations"]["get"]["rate_per_s"]
print(f"  kstress get / h2load = {rate / float(sys.argv[2]) * 100:.0f} %")
PY

echo "== churn, constant arrivals at 2000/s, embedded cluster, ${seconds}s"
"$kstress" run churn --arrivals constant --rate 2000 --lifetime 5s --duration "${seconds}s" \
  --output "$work/churn" >/dev/null
summary "$work/churn/results.json"
