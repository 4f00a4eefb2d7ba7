#!/usr/bin/env bash
# Loopback throughput of the kstress httperf client and of h2load against
# one kstress httperf server, with 1 MiB blocks, in one run.
#
# Usage: bench/httperf.sh
# Environment (all optional):
#   KSTRESS      kstress binary to use (default: build it in release mode)
#   DURATION     seconds per client run (default 10)
#   CONNECTIONS  TLS connections per client (default 2)
#   STREAMS      concurrent streams per connection (default 4)
#   N            blocks per request (default 64)
#
# Prints each client's own Gbit/s and the server's send rate during that
# client's run (from the server's httperf_sent_bytes_total counter).
# Needs h2load (Debian: apt-get install -y nghttp2-client) and curl.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-2}
STREAMS=${STREAMS:-4}
N=${N:-64}
SIZE=1048576
PERIOD_MS=1

for tool in h2load curl; do
    command -v "$tool" >/dev/null || {
        echo "bench.sh: $tool not found (h2load: apt-get install -y nghttp2-client)" >&2
        exit 1
    }
done

if [[ -z ${KSTRESS:-} ]]; then
    target=${CARGO_TARGET_DIR:-target}
    CARGO_TARGET_DIR=$target cargo build --release --quiet -p kstress
    KSTRESS=$target/release/kstress
fi

work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$KSTRESS" httperf --listen 127.0.0.1:0 2>"$work/server.log" &
server_pid=$!
url=
for _ in $(seq 100); do
    url=$(sed -n 's/^httperf: serving \(https:[^ ]*\).*/\1/p' "$work/server.log")
    [[ -n $url ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $url ]] || { echo "bench.sh: the server did not start" >&2; exit 1; }

sent_bytes() {
    curl -sk "$url/metrics" | awk '$1 == "httperf_sent_bytes_total" { print $2 }'
}
now() { date +%s.%N; }
gbit() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.2f", b * 8 / s / 1e9 }'; }

path="/blocks?size=$SIZE&n=$N&periodMS=$PERIOD_MS"
threads=$((CONNECTIONS * STREAMS))
echo "kstress httperf benchmark: $(nproc) cores, loopback, ${SIZE}-byte blocks, n=$N," \
    "periodMS=$PERIOD_MS, $CONNECTIONS connections x $STREAMS streams, ${DURATION} s per client"

before=$(sent_bytes); start=$(now)
"$KSTRESS" httperf --base-url "$url" --insecure --threads "$threads" \
    --connections "$CONNECTIONS" --size "$SIZE" -n "$N" --period-ms "$PERIOD_MS" \
    --duration "${DURATION}s" >"$work/kstress.out" 2>"$work/kstress.err"
end=$(now); after=$(sent_bytes)
kstress_gbit=$(sed -n 's/.*: \([0-9.]*\) Gbit\/s over.*/\1/p' "$work/kstress.out")
if ! grep -q ' 0 failed$' "$work/kstress.out"; then
    echo "httperf.sh: the kstress client had failed requests:" >&2
    cat "$work/kstress.out" "$work/kstress.err" >&2
    exit 1
fi
kstress_server=$(gbit "$((after - before))" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")

h2load_threads=$((CONNECTIONS < $(nproc) ? CONNECTIONS : $(nproc)))
before=$(sent_bytes); start=$(now)
h2load -c "$CONNECTIONS" -m "$STREAMS" -t "$h2load_threads" -D "$DURATION" \
    "$url$path" >"$work/h2load.out" 2>&1
end=$(now); after=$(sent_bytes)
# Body bytes only (the "data" figure), as the kstress client counts them.
h2load_bytes=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' "$work/h2load.out")
h2load_secs=$(sed -n 's/^finished in \([0-9.]*\)s.*/\1/p' "$work/h2load.out")
h2load_failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$work/h2load.out")
if [[ -z $h2load_bytes || -z $h2load_secs || $h2load_failed != 0 ]]; then
    echo "httperf.sh: h2load did not run cleanly:" >&2
    cat "$work/h2load.out" >&2
    exit 1
fi
h2load_gbit=$(gbit "$h2load_bytes" "$h2load_secs")
h2load_server=$(gbit "$((after - before))" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")

printf '%-15s %8s Gbit/s   (server sent %s Gbit/s)\n' \
    "kstress client" "$kstress_gbit" "$kstress_server" \
    "h2load" "$h2load_gbit" "$h2load_server"
echo
echo "kstress client summary:"
cat "$work/kstress.out"
echo "h2load summary:"
grep -E '^(finished|requests|traffic)' "$work/h2load.out"
