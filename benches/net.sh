#!/usr/bin/env bash
# Networking benchmark (start-up with slirp4netns and pasta vs. by hand; iperf3 throughput),
# as an unprivileged user (as root: the test user from tests/setup.sh). Needs iperf3.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v iperf3 >/dev/null || { echo "benches/net.sh: needs iperf3 (apt-get install iperf3)"; exit 1; }
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bin ward >/dev/null
dir=$(mktemp -d /tmp/ward-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
install -m 0755 "target/$WARD_TARGET/release/ward" "$dir/ward"
install -m 0755 benches/net.py "$dir/net.py"
chmod 0755 "$dir"
cd "$dir"
if [ "$(id -u)" = 0 ]; then
    user=${WARD_TEST_USER:-ward-test}
    exec setpriv --reuid="$user" --regid="$user" --clear-groups -- env -i PATH=/usr/bin:/bin WARD="$dir/ward" ROUNDS="${ROUNDS:-30}" /usr/bin/python3 "$dir/net.py"
fi
WARD="$dir/ward" /usr/bin/python3 "$dir/net.py"
