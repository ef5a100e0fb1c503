#!/usr/bin/env bash
# Networking benchmark (start-up with slirp4netns and pasta vs. by hand; iperf3 throughput),
# as an unprivileged user (as root: the test user from tests/setup.sh). Needs iperf3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v iperf3 >/dev/null || { echo "benches/net.sh: needs iperf3 (apt-get install iperf3)"; exit 1; }
. scripts/bench-env.sh benches/net.py
cd "$BENCH_DIR"
run=(env -i PATH=/usr/bin:/bin WARD="$BENCH_DIR/ward" ROUNDS="${ROUNDS:-30}" REPEATS="${REPEATS:-5}" /usr/bin/python3 "$BENCH_DIR/net.py")
if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --clear-groups -- "${run[@]}"
else
    "${run[@]}"
fi
