#!/usr/bin/env bash
# Accuracy of ward's judge numbers with a cgroup leaf, measured in the VM guest (Debian 12's
# kernel 6.1, systemd, cgroup v2, software emulation): CPU time vs the program's own
# CLOCK_PROCESS_CPUTIME_ID, memory.peak vs memory touched, TLE latency, and the cost of
# getting the leaf (already delegated vs from the systemd user manager over D-Bus). Root.
# HOST=1 runs the same measurements on this host instead (the fallback path here).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/build-env.sh
cargo build --release --target "$WARD_TARGET" --bin ward >/dev/null
share=$(mktemp -d /tmp/ward-accuracy.XXXXXX)
trap 'rm -rf "$share"' EXIT
install -m 0755 "target/$WARD_TARGET/release/ward" "$share/ward"
cat > "$share/burn.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int c, char **v) {
    long ms = atol(v[1]); struct timespec t; long start, now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); start = t.tv_sec * 1000000L + t.tv_nsec / 1000;
    do { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); now = t.tv_sec * 1000000L + t.tv_nsec / 1000; } while (now - start < ms * 1000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); printf("%ld\n", t.tv_sec * 1000000L + t.tv_nsec / 1000); return 0; }
C
cat > "$share/touch.c" <<'C'
#include <stdlib.h>
#include <string.h>
int main(int c, char **v) { size_t n = (size_t)atol(v[1]) << 20; char *p = malloc(n); memset(p, 1, n); return p[n - 1] != 1; }
C
gcc -O2 -static -o "$share/burn" "$share/burn.c"
gcc -O2 -static -o "$share/touch" "$share/touch.c"
install -m 0644 benches/accuracy_guest.py "$share/accuracy_guest.py"
cat > "$share/guest-test.sh" <<EOF2
cd /tmp
systemd-run --user --scope -q -p Delegate=yes env N=${N:-100} NT=${NT:-20} python3 /mnt/ward/accuracy_guest.py
echo "--- the cost of the leaf (20 runs each, medians, ms; TCG guest):"
python3 - <<'PY'
import subprocess, time, statistics
def t(cmd):
    v = []
    for _ in range(20):
        t0 = time.perf_counter(); subprocess.run(cmd, check=True, capture_output=True); v.append((time.perf_counter() - t0) * 1000)
    return statistics.median(v)
W = "/mnt/ward/ward"
plain = t(["env", "-u", "DBUS_SESSION_BUS_ADDRESS", W, "run", "--no-workdir", "--", "/bin/true"])
dbus = t([W, "run", "--no-workdir", "--", "/bin/true"])
deleg = t(["systemd-run", "--user", "--scope", "-q", "-p", "Delegate=yes", "sh", "-c", "for i in 1; do /mnt/ward/ward run --no-workdir -- /bin/true; done"])
deleg_sd = t(["systemd-run", "--user", "--scope", "-q", "-p", "Delegate=yes", "/bin/true"])
print(f"no cgroup (fallback): {plain:.1f}; leaf over D-Bus (StartTransientUnit each run): {dbus:.1f}; leaf in an already delegated scope: {deleg - deleg_sd:.1f} (systemd-run's own cost {deleg_sd:.1f} subtracted)")
PY
EOF2
if [ "${HOST:-}" = 1 ]; then
    # the same measurements on this host, as the unprivileged test user (the fallback path
    # when the host has no delegated cgroup; the memory check then samples)
    chmod 0755 "$share"
    setpriv --reuid="${WARD_TEST_USER:-ward-test}" --regid="$(id -g "${WARD_TEST_USER:-ward-test}")" --clear-groups -- \
        env -i PATH=/usr/bin:/bin WARD="$share/ward" BIN_DIR="$share" N="${N:-100}" NT="${NT:-20}" /usr/bin/python3 "$share/accuracy_guest.py"
else
    bash tests/vm/run.sh "$share"
fi
