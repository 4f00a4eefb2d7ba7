#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 30), on
# the stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass the sanitizer
# and coverage flags it needs. New inputs go to work/<target>; the committed
# seeds in corpus/<target> are only read. Extra arguments name targets.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in "${targets[@]}"; do
  mkdir -p "work/$target"
  cargo fuzz run -O "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
