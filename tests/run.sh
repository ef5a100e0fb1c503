#!/usr/bin/env bash
# The whole test suite: prepares the host (as root), then runs unit, integration and doc
# tests against the same static binary install.sh builds. Integration tests run ward as the
# unprivileged user ward-test (created by tests/setup.sh) when this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
    bash tests/setup.sh
    export WARD_TEST_USER=${WARD_TEST_USER:-ward-test}
fi
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-C target-feature=+crt-static"
cargo build --release --target "$host" --bins --examples
cargo test --release --target "$host" --all-targets -- --test-threads=4
cargo test --release --target "$host" --doc
