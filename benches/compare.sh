#!/usr/bin/env bash
# Start-up benchmark of ward against bwrap and bare unshare, interleaved, as an unprivileged
# user (as root: the test user from tests/setup.sh). Usage: benches/compare.sh
# Knobs: ROUNDS (300), PAR_JOBS (4), PAR_SECONDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bin ward >/dev/null
dir=$(mktemp -d /tmp/ward-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
install -m 0755 "target/$WARD_TARGET/release/ward" "$dir/ward"
install -m 0755 benches/compare.py "$dir/compare.py"
gcc -O2 -static -o "$dir/loop" benches/syscall_loop.c
chmod 0755 "$dir"
cd "$dir"
if [ "$(id -u)" = 0 ]; then
    user=${WARD_TEST_USER:-ward-test}
    id -u "$user" >/dev/null 2>&1 || { echo "run tests/setup.sh first (creates $user)"; exit 1; }
    exec setpriv --reuid="$user" --regid="$user" --clear-groups -- env -i PATH=/usr/bin:/bin WARD="$dir/ward" \
        LOOP="$dir/loop" ROUNDS="${ROUNDS:-300}" PAR_JOBS="${PAR_JOBS:-4}" PAR_SECONDS="${PAR_SECONDS:-5}" /usr/bin/python3 "$dir/compare.py"
fi
LOOP="$dir/loop" WARD="$dir/ward" /usr/bin/python3 "$dir/compare.py"
