#!/usr/bin/env bash
# Times a clean `cargo build --release --locked` of each given revision,
# one after the other, each in a fresh clone with its own target directory
# (crates already downloaded are reused: this measures compiling, not
# downloading). Usage: bench/build-time.sh REV [REV...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 REV [REV...]" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for rev in "$@"; do
  dir="$work/$(git -C "$repo" rev-parse --short "$rev")"
  git clone -q "$repo" "$dir"
  git -C "$dir" checkout -q "$rev"
  (cd "$dir" && cargo fetch --locked -q)
  (cd "$dir" && /usr/bin/time -f "$rev: wall %e s, user %U s, sys %S s, peak RSS %M KB" \
    env CARGO_TARGET_DIR="$dir/target" cargo build --release --locked -q)
done
