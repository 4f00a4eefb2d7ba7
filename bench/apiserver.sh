#!/usr/bin/env bash
# API server benchmark (issue: embedded API server).
#
# GET of a 10 KiB pod by name over TLS + HTTP/2 with 16 concurrent streams on
# one connection, load from h2load, against `kstress serve` and, in the same
# run, against nginx (one worker, TLS + HTTP/2) serving the very same bytes
# as a static file: the ceiling. Then closed-loop PUTs (each a real update
# with the current resourceVersion) from 16 streams.
#
# The server runs without nodes and the pod names a node that does not
# exist, so neither the scheduler nor a kubelet writes it during the run.
#
# Needs: nginx, h2load (Debian: nginx-light or nginx, nghttp2-client), curl,
# openssl. Usage: bench/apiserver.sh [SECONDS]
set -euo pipefail
seconds=${1:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx h2load curl openssl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light nghttp2-client curl openssl)" >&2; exit 1; }
done

cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p kstress
cargo build --release -q -p apiserver --example put_load

kport=$((20000 + RANDOM % 10000))
nport=$((kport + 1))
"$target/release/kstress" serve --nodes 0 --listen "127.0.0.1:$kport" --kubeconfig-out "$work/kubeconfig" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
token=$(awk '/token:/ {print $2}' "$work/kubeconfig")
awk '/certificate-authority-data:/ {print $2}' "$work/kubeconfig" | base64 -d >"$work/ca.pem"
api="https://127.0.0.1:$kport"
curl_api() { curl -sS --fail-with-body --cacert "$work/ca.pem" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }

payload=$(head -c 10240 /dev/zero | tr '\0' 'x')
curl_api -X POST "$api/api/v1/namespaces" -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}' >/dev/null
curl_api -X POST "$api/api/v1/namespaces/bench/pods" \
  -d "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-10k\",\"annotations\":{\"payload\":\"${payload:0:9800}\"}},\"spec\":{\"nodeName\":\"bench-node\",\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}" >/dev/null
mkdir -p "$work/html/api/v1/namespaces/bench/pods"
# nginx's worker runs unprivileged: it must be able to read the files.
chmod 755 "$work"
chmod -R a+rX "$work/html"
curl_api "$api/api/v1/namespaces/bench/pods/pod-10k" >"$work/html/api/v1/namespaces/bench/pods/pod-10k"
size=$(stat -c %s "$work/html/api/v1/namespaces/bench/pods/pod-10k")

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$work/nginx.key" -out "$work/nginx.crt" >/dev/null 2>&1
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  # One connection carries the whole run (nginx closes it after 1000
  # requests by default).
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$nport ssl http2;
    http2_max_concurrent_streams 1000;
    ssl_certificate $work/nginx.crt;
    ssl_certificate_key $work/nginx.key;
    root $work/html;
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
for _ in $(seq 50); do curl -sk "https://127.0.0.1:$nport/api/v1/namespaces/bench/pods/pod-10k" >/dev/null 2>&1 && break; sleep 0.1; done

# Prints requests/s; fails unless every request succeeded, since a ratio of
# failures is meaningless.
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
path=/api/v1/namespaces/bench/pods/pod-10k
echo "object: $size bytes; h2load -c1 -m16 -t1 -D $seconds; machine: $(nproc) cores, $(date -u +%F)"
nginx_rps=$(run_h2load "https://127.0.0.1:$nport$path")
kstress_rps=$(run_h2load -H "authorization: Bearer $token" "$api$path")
echo "GET nginx (static file, 1 worker): $nginx_rps req/s"
echo "GET kstress serve:                 $kstress_rps req/s"
awk -v k="$kstress_rps" -v n="$nginx_rps" 'BEGIN { printf "GET ratio kstress/nginx:           %.0f%%\n", 100 * k / n }'
"$target/release/examples/put_load" "$api" "$token" "$work/ca.pem" bench 16 "$seconds" 10240
