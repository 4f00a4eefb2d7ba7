#!/usr/bin/env bash
# Storage backend benchmark (issue: durable storage backends).
#
# The API server benchmark of bench/apiserver.sh -- GET of a 10 KiB pod by
# name from h2load (-c1 -m16) and closed-loop PUTs of it from 16 streams --
# against `kstress serve` on each backend in turn: memory, --data-dir (redb,
# one fsync per write) and --etcd-servers (a local etcd started here, data in
# a temporary directory). The server runs without nodes, so that no
# scheduler or kubelet writes the benchmark's pods. Then `kstress run pod-stress` with its defaults on
# each backend, for DURATION.
#
# Needs: h2load (nghttp2-client), curl, etcd (etcd-server).
# Usage: bench/backends.sh [SECONDS] [POD_STRESS_DURATION]
# (NO_BUILD=1 uses the release binaries already built.)
set -euo pipefail
seconds=${1:-15}
stress_duration=${2:-30s}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in h2load curl etcd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client curl etcd-server)" >&2; exit 1; }
done

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -q -p kstress
  cargo build --release -q -p apiserver --example put_load
fi
kstress="$target/release/kstress"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A local single-member etcd, as a kube-apiserver would use it.
etcd_port=$(free_port)
etcd_peer=$(free_port)
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer" --logger zap --log-level error >"$work/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null || { cat "$work/etcd.log"; exit 1; }

# Flags of each backend; each gets an empty store (the etcd one a prefix of
# its own).
store_flags() {
  case $1 in
    memory) ;;
    disk) echo "--data-dir $work/data-$2" ;;
    etcd) echo "--etcd-servers http://127.0.0.1:$etcd_port --etcd-prefix /$2" ;;
  esac
}

# Prints requests/s; fails unless every request succeeded.
run_h2load() {
  local out
  out=$(h2load -c1 -m16 -t1 -D "$seconds" --warm-up-time=2 "$@" 2>&1)
  if ! grep -q " 0 failed, 0 errored" <<<"$out"; then
    echo "h2load saw failures:" >&2
    grep -E "^requests:|^status codes:" <<<"$out" >&2
    exit 1
  fi
  awk '/^finished in/ {print $4}' <<<"$out" | tr -d ','
}

echo "machine: $(nproc) cores, $(date -u +%F); etcd $(etcd --version | awk '/etcd Version/ {print $3}')"
echo "GET/PUT of a 10 KiB pod, h2load -c1 -m16 -t1 -D $seconds; PUT: put_load, 16 streams, $seconds s"
for backend in memory disk etcd; do
  port=$(free_port)
  # shellcheck disable=SC2046
  "$kstress" serve --nodes 0 --listen "127.0.0.1:$port" --kubeconfig-out "$work/kubeconfig" $(store_flags $backend serve) >"$work/serve.log" 2>&1 &
  serve=$!
  pids+=($serve)
  for _ in $(seq 200); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
  token=$(awk '/token:/ {print $2}' "$work/kubeconfig")
  awk '/certificate-authority-data:/ {print $2}' "$work/kubeconfig" | base64 -d >"$work/ca.pem"
  api="https://127.0.0.1:$port"
  curl_api() { curl -sS --fail-with-body --cacert "$work/ca.pem" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
  payload=$(head -c 9800 /dev/zero | tr '\0' 'x')
  curl_api -X POST "$api/api/v1/namespaces" -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}' >/dev/null
  curl_api -X POST "$api/api/v1/namespaces/bench/pods" \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-10k\",\"annotations\":{\"payload\":\"$payload\"}},\"spec\":{\"nodeName\":\"bench-node\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}" >/dev/null
  get_rps=$(run_h2load -H "authorization: Bearer $token" "$api/api/v1/namespaces/bench/pods/pod-10k")
  put=$("$target/release/examples/put_load" "$api" "$token" "$work/ca.pem" bench 16 "$seconds" 10240)
  echo "$backend: GET $get_rps req/s; $put"
  kill "$serve"
  wait "$serve" 2>/dev/null || true
done

[ -n "${SKIP_POD_STRESS:-}" ] && exit 0
echo
echo "kstress run pod-stress (defaults) --duration $stress_duration on each backend"
for backend in memory disk etcd; do
  echo "== $backend"
  # shellcheck disable=SC2046
  "$kstress" run pod-stress --duration "$stress_duration" --output "$work/results-$backend" $(store_flags $backend run) 2>&1 | tail -n 25
done
