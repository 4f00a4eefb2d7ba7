#!/usr/bin/env bash
# GET of a 10 KiB pod: JSON against protobuf (issue 13: protobuf for every
# built-in kind).
#
# One `kstress serve` (memory store, no nodes, so the pod stays Pending
# and nothing writes it during the run), one pod of about 10 KiB. h2load GETs it by name over TLS + HTTP/2 with 16 concurrent
# streams on one connection, alternately with `Accept: application/json`
# and `Accept: application/vnd.kubernetes.protobuf, */*` (what client-go's
# typed clients send), ROUNDS times each, so both see the same machine.
# The script refuses a round with any failed request and checks that each
# Accept header got its content type.
#
# Needs: h2load, curl (Debian: nghttp2-client, curl). Usage:
# bench/protobuf.sh [SECONDS] [ROUNDS]
set -euo pipefail
seconds=${1:-10}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in h2load curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nghttp2-client curl)" >&2; exit 1; }
done

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p kstress

port=$((20000 + RANDOM % 10000))
"$target/release/kstress" serve --nodes 0 --listen "127.0.0.1:$port" --kubeconfig-out "$work/kubeconfig" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
token=$(awk '/token:/ {print $2}' "$work/kubeconfig")
awk '/certificate-authority-data:/ {print $2}' "$work/kubeconfig" | base64 -d >"$work/ca.pem"
api="https://127.0.0.1:$port"
curl_api() { curl -sS --fail-with-body --cacert "$work/ca.pem" -H "Authorization: Bearer $token" "$@"; }

payload=$(head -c 10240 /dev/zero | tr '\0' 'x')
curl_api -H 'Content-Type: application/json' -X POST "$api/api/v1/namespaces" \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}' >/dev/null
curl_api -H 'Content-Type: application/json' -X POST "$api/api/v1/namespaces/bench/pods" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-10k\",\"labels\":{\"app\":\"bench\"},\"annotations\":{\"payload\":\"${payload:0:9500}\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\",\"command\":[\"sleep\",\"3600\"],\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}},\"ports\":[{\"containerPort\":80}]}]}}" >/dev/null
path=/api/v1/namespaces/bench/pods/pod-10k
json_accept="application/json"
pb_accept="application/vnd.kubernetes.protobuf, */*"
size_of() { curl_api -H "Accept: $1" -o "$work/body" -w '%{size_download} %{content_type}\n' "$api$path"; }
read -r json_size json_type < <(size_of "$json_accept")
read -r pb_size pb_type < <(size_of "$pb_accept")
[ "$json_type" = application/json ] || { echo "JSON GET answered $json_type" >&2; exit 1; }
[ "$pb_type" = application/vnd.kubernetes.protobuf ] || { echo "protobuf GET answered $pb_type" >&2; exit 1; }

# Prints requests/s; fails unless every request succeeded.
run_h2load() {
  local out
  out=$(h2load -c1 -m16 -t1 -D "$seconds" --warm-up-time=2 -H "authorization: Bearer $token" -H "accept: $1" "$api$path" 2>&1)
  if ! grep -q " 0 failed, 0 errored" <<<"$out"; then
    echo "h2load saw failures:" >&2
    grep -E "^requests:|^status codes:" <<<"$out" >&2
    exit 1
  fi
  awk '/^finished in/ {print $4}' <<<"$out" | tr -d ','
}

echo "pod: $json_size bytes as JSON, $pb_size bytes as protobuf; h2load -c1 -m16 -t1 -D $seconds; $rounds rounds; machine: $(nproc) cores, $(date -u +%F)"
json_all=()
pb_all=()
for round in $(seq "$rounds"); do
  json_rps=$(run_h2load "$json_accept")
  pb_rps=$(run_h2load "$pb_accept")
  json_all+=("$json_rps")
  pb_all+=("$pb_rps")
  awk -v r="$round" -v j="$json_rps" -v p="$pb_rps" \
    'BEGIN { printf "round %d: JSON %.0f req/s, protobuf %.0f req/s, protobuf/JSON %.0f%%\n", r, j, p, 100 * p / j }'
done
summary() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "median %.0f, min %.0f, max %.0f req/s", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
echo "JSON:     $(summary "${json_all[@]}")"
echo "protobuf: $(summary "${pb_all[@]}")"
