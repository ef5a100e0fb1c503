# Sourced by the benchmark scripts: build the static release binary and stage it, with the
# given scripts, in a temporary directory the unprivileged user can read ($BENCH_DIR,
# removed on exit). As root, benchmarks then run as the test user (tests/setup.sh).
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bin ward >/dev/null
BENCH_DIR=$(mktemp -d /tmp/ward-bench.XXXXXX)
# CPU time of every process a command starts, reaped or not (rusage misses what a tool does
# not wait for: bwrap's sandboxed processes): as root, this shell and what it starts go into
# a cgroup of their own and the scripts read its usage ($WARD_BENCH_CPU: a file, and its
# unit). Without root, rusage (as before).
BENCH_CG=
if [ "$(id -u)" = 0 ]; then
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        BENCH_CG=/sys/fs/cgroup/ward-bench.$$ && mkdir "$BENCH_CG" && export WARD_BENCH_CPU="$BENCH_CG/cpu.stat usage_usec"
    elif [ -d /sys/fs/cgroup/cpuacct ]; then
        BENCH_CG=/sys/fs/cgroup/cpuacct/ward-bench.$$ && mkdir "$BENCH_CG" && export WARD_BENCH_CPU="$BENCH_CG/cpuacct.usage ns"
    fi
    [ -n "$BENCH_CG" ] && echo $$ > "$BENCH_CG/cgroup.procs"
fi
bench_cleanup() {
    rm -rf "$BENCH_DIR"
    if [ -n "$BENCH_CG" ]; then
        echo $$ > "$(dirname "$BENCH_CG")/cgroup.procs" 2>/dev/null || true
        rmdir "$BENCH_CG" 2>/dev/null || true
    fi
}
trap bench_cleanup EXIT
install -m 0755 "target/$WARD_TARGET/release/ward" "$BENCH_DIR/ward"
for f in "$@"; do install -m 0755 "$f" "$BENCH_DIR/"; done
chmod 0755 "$BENCH_DIR"
BENCH_USER=${WARD_TEST_USER:-ward-test}
if [ "$(id -u)" = 0 ] && ! id -u "$BENCH_USER" >/dev/null 2>&1; then
    echo "run tests/setup.sh first (creates $BENCH_USER)"; exit 1
fi
