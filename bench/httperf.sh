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
#   ROUNDS       alternating runs of each client (default 2)
#
# Prints, per run, the client's own Gbit/s (body bytes) and the server's send
# rate during that run (from its httperf_sent_bytes_total counter) and the
# client's CPU time per GiB, then the mean of each client.
# Needs h2load (Debian: apt-get install -y nghttp2-client) and curl.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-2}
STREAMS=${STREAMS:-4}
N=${N:-64}
ROUNDS=${ROUNDS:-2}
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

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
# The client's own CPU seconds (user + system, from bash's time) per GiB received.
TIMEFORMAT='%U %S'
cpu_per_gib() { awk -v b="$1" '{ printf "%.2f", ($1 + $2) / (b / 2^30) }' "$work/cpu"; }

# One kstress client run; prints "client-Gbit/s server-Gbit/s".
run_kstress() {
    local out=$work/kstress.$1.out before after start end
    before=$(sent_bytes); start=$(now)
    { time "$KSTRESS" httperf --base-url "$url" --insecure --threads "$threads" \
        --connections "$CONNECTIONS" --size "$SIZE" -n "$N" --period-ms "$PERIOD_MS" \
        --duration "${DURATION}s" >"$out" 2>"$work/kstress.$1.err"; } 2>"$work/cpu"
    end=$(now); after=$(sent_bytes)
    if ! grep -q ' 0 failed$' "$out"; then
        echo "httperf.sh: the kstress client had failed requests:" >&2
        cat "$out" "$work/kstress.$1.err" >&2
        exit 1
    fi
    echo "$(sed -n 's/.*: \([0-9.]*\) Gbit\/s over.*/\1/p' "$out")" \
        "$(gbit "$((after - before))" "$(elapsed "$start" "$end")")" \
        "$(cpu_per_gib "$(sed -n 's/^received \([0-9]*\) bytes.*/\1/p' "$out")")"
}

# One h2load run with the same connections and streams; same output.
run_h2load() {
    local out=$work/h2load.$1.out before after start end bytes secs failed
    local h2load_threads=$((CONNECTIONS < $(nproc) ? CONNECTIONS : $(nproc)))
    before=$(sent_bytes); start=$(now)
    { time h2load -c "$CONNECTIONS" -m "$STREAMS" -t "$h2load_threads" -D "$DURATION" \
        "$url$path" >"$out" 2>&1; } 2>"$work/cpu"
    end=$(now); after=$(sent_bytes)
    # Body bytes only (the "data" figure), as the kstress client counts them.
    bytes=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' "$out")
    secs=$(sed -n 's/^finished in \([0-9.]*\)s.*/\1/p' "$out")
    failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$out")
    if [[ -z $bytes || -z $secs || $failed != 0 ]]; then
        echo "httperf.sh: h2load did not run cleanly:" >&2
        cat "$out" >&2
        exit 1
    fi
    echo "$(gbit "$bytes" "$secs")" "$(gbit "$((after - before))" "$(elapsed "$start" "$end")")" \
        "$(cpu_per_gib "$bytes")"
}

# Alternate the clients so that other load on the machine hits both alike.
row() { printf '%-6s %-15s %14s %14s %18s\n' "$@"; }
row round client "client Gbit/s" "server Gbit/s" "client CPU s/GiB"
kstress_sum=0; h2load_sum=0
for round in $(seq "$ROUNDS"); do
    result=$(run_kstress "$round")
    read -r client server cpu <<<"$result"
    row "$round" "kstress client" "$client" "$server" "$cpu"
    kstress_sum=$(awk -v a="$kstress_sum" -v b="$client" 'BEGIN { print a + b }')
    result=$(run_h2load "$round")
    read -r client server cpu <<<"$result"
    row "$round" h2load "$client" "$server" "$cpu"
    h2load_sum=$(awk -v a="$h2load_sum" -v b="$client" 'BEGIN { print a + b }')
done
awk -v k="$kstress_sum" -v h="$h2load_sum" -v r="$ROUNDS" 'BEGIN {
    printf "mean   kstress client %.2f Gbit/s, h2load %.2f Gbit/s: kstress/h2load = %.2f\n",
        k / r, h / r, k / h
}'
echo
echo "last kstress client summary:"
cat "$work/kstress.$ROUNDS.out"
echo "last h2load summary:"
grep -E '^(finished|requests|traffic)' "$work/h2load.$ROUNDS.out"
