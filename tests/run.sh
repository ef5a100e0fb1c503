#!/usr/bin/env bash
# The whole test suite: prepares the host (as root), then runs unit, integration and doc
# tests. Integration tests run the ward binary as the unprivileged user ward-test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
    bash tests/setup.sh
    export WARD_TEST_USER=${WARD_TEST_USER:-ward-test}
fi
cargo build --release --bins --examples
cargo test --release --all-targets -- --test-threads=4
cargo test --release --doc
