#!/usr/bin/env bash
# Per-submission cost of the isolate front end vs ward run, as an unprivileged user.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-env.sh benches/isolate.py
cd "$BENCH_DIR"
run=(env -i PATH=/usr/bin:/bin WARD="$BENCH_DIR/ward" ROUNDS="${ROUNDS:-200}" /usr/bin/python3 "$BENCH_DIR/isolate.py")
if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --clear-groups -- "${run[@]}"
else
    "${run[@]}"
fi
