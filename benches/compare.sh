#!/usr/bin/env bash
# Start-up benchmark of ward against bwrap and bare unshare, interleaved, as an unprivileged
# user (as root: the test user from tests/setup.sh). Usage: benches/compare.sh
# Knobs: ROUNDS (300), PAR_JOBS (4), PAR_SECONDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-env.sh benches/compare.py
gcc -O2 -static -o "$BENCH_DIR/loop" benches/syscall_loop.c
cd "$BENCH_DIR"
run=(env -i PATH=/usr/bin:/bin WARD_BENCH_CPU="${WARD_BENCH_CPU:-}" WARD="$BENCH_DIR/ward" LOOP="$BENCH_DIR/loop" ROUNDS="${ROUNDS:-300}" PAR_JOBS="${PAR_JOBS:-4}" PAR_SECONDS="${PAR_SECONDS:-5}" /usr/bin/python3 "$BENCH_DIR/compare.py")
if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --clear-groups -- "${run[@]}"
else
    "${run[@]}"
fi
