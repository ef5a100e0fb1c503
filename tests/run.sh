#!/usr/bin/env bash
# The whole test suite: prepares the host (as root), then runs unit, integration and doc
# tests against the same static binary install.sh builds, then the VM and container tiers.
# Integration tests run ward as the unprivileged user ward-test (created by tests/setup.sh)
# when this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
    bash tests/setup.sh
    export WARD_TEST_USER=${WARD_TEST_USER:-ward-test}
fi
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bins --examples
cargo test --release --target "$WARD_TARGET" --all-targets -- --test-threads=4
cargo test --release --target "$WARD_TARGET" --doc
# The VM tier: Debian 12's kernel 6.1 under systemd with pure cgroup v2, in a QEMU guest
# built once and cached (tests/vm/). It needs root for debootstrap and QEMU.
if [ "$(id -u)" = 0 ]; then
    bash tests/vm/smoke.sh "target/$WARD_TARGET/release/ward"
else
    echo "skipped: the VM tier (tests/vm/smoke.sh) needs root to build and boot the guest"
fi
# The container tier: Docker and Podman from Debian's packages, started here, an image
# debootstrapped here; ward and the integration tests run unprivileged inside (tests/container/).
if [ "$(id -u)" = 0 ]; then
    tests=$(cargo test --release --target "$WARD_TARGET" --test integration --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration":
        print(m["executable"])')
    bash tests/container/run.sh "target/$WARD_TARGET/release/ward" "$tests"
else
    echo "skipped: the container tier (tests/container/run.sh) needs root to start Docker and Podman"
fi
