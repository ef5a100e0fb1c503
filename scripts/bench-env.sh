# Sourced by the benchmark scripts: build the static release binary and stage it, with the
# given scripts, in a temporary directory the unprivileged user can read ($BENCH_DIR,
# removed on exit). As root, benchmarks then run as the test user (tests/setup.sh).
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bin ward >/dev/null
BENCH_DIR=$(mktemp -d /tmp/ward-bench.XXXXXX)
trap 'rm -rf "$BENCH_DIR"' EXIT
install -m 0755 "target/$WARD_TARGET/release/ward" "$BENCH_DIR/ward"
for f in "$@"; do install -m 0755 "$f" "$BENCH_DIR/"; done
chmod 0755 "$BENCH_DIR"
BENCH_USER=${WARD_TEST_USER:-ward-test}
if [ "$(id -u)" = 0 ] && ! id -u "$BENCH_USER" >/dev/null 2>&1; then
    echo "run tests/setup.sh first (creates $BENCH_USER)"; exit 1
fi
