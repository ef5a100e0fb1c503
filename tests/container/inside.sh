#!/bin/sh
# Run inside a container of the container tier, as the unprivileged user `worker`, with ward
# at /usr/local/bin/ward. `inside.sh works`: with the shipped seccomp profile and the
# documented options, ward's checks, built-in profiles and isolate front end work, and the
# runtime's own filter still holds for everything ward does not need. `inside.sh stop`: the
# two lives of a container stopped mid-run (see run.sh).
set -eu
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() { # expect WHAT WANT GOT
    case "$3" in *"$2"*) ok "$1" ;; *) bad "$1: wanted '$2' in: $3" ;; esac
}
cd /tmp
mkdir -p /tmp/bin && ln -sf /usr/local/bin/ward /tmp/bin/isolate
export PATH=/tmp/bin:/usr/local/bin:/usr/bin:/bin WARD_ISOLATE_ROOT=/tmp/boxes

case "${1:-}" in
works)
    out=$(ward check 2>&1) && ok "ward check exits 0" || bad "ward check exits $?: $out"
    expect "ward check: the sandbox line" "OK    sandbox: ran /bin/true in a full sandbox" "$out"
    # the built-in profiles
    expect "profile default" "hi" "$(ward run -- /bin/echo hi 2>&1)"
    ward run --verdict v.json -- /usr/bin/python3 -c 'print(1)' >/dev/null 2>&1 || true
    expect "profile default: verdict" '"status":"OK"' "$(cat v.json)"
    expect "verdict: no cgroup here, and says so" '"cgroup":"unavailable (' "$(cat v.json)"
    mkdir -p build && cd build
    # (slirp4netns: this container has no network, so no default route for pasta to copy)
    out=$(ward run --profile ci --net slirp4netns -- /bin/sh -c 'echo built > artefact; cat artefact' 2>&1 || true)
    expect "profile ci: the work dir is writable" "built" "$out"
    [ -f artefact ] && ok "profile ci: the file is in the caller's directory" || bad "profile ci: no artefact"
    cd /tmp
    out=$(ward run --profile judge -- /bin/true 2>&1) && bad "profile judge ran without a cgroup" || expect "profile judge fails closed without a cgroup" "--require-cgroup: no cgroup can be used" "$out"
    out=$(ward run --profile judge --no-require-cgroup --time 0.3 --verdict j.json -- /usr/bin/python3 -c 'while 1: pass' 2>&1 || true)
    expect "profile judge --no-require-cgroup: TLE by the sampled limit" '"status":"TLE"' "$(cat j.json)"
    # what the runtime's filter denies and ward does not need stays denied, outside ward
    out=$(python3 - <<'PY'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def errno(nr, *a):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    return 0 if r >= 0 else ctypes.get_errno()
# x86_64 numbers
for name, nr, args in [("unshare", 272, (0x10000000,)), ("keyctl", 250, (0, -3, 0)), ("add_key", 248, (0, 0, 0, 0, 0)),
                       ("bpf", 321, (0, 0, 0)), ("perf_event_open", 298, (0, 0, 0, 0, 0)), ("kexec_load", 246, (0, 0, 0, 0)),
                       ("open_by_handle_at", 304, (0, 0, 0)), ("umount2 (allowed)", 166, (0, 0))]:
    print(name, errno(nr, *args))
PY
)
    for call in unshare keyctl add_key bpf perf_event_open kexec_load open_by_handle_at; do
        expect "the runtime's filter still denies $call" "$call 1" "$out"
    done
    expect "ward.json lets umount2 through to the kernel (EFAULT, not EPERM)" "umount2 (allowed) 14" "$out"
    # isolate's interface, CMS-style: init, run with a meta file, a time limit, cleanup
    d=$(isolate --box-id=0 --init)
    echo 'print(int(input()) * 2)' >"$d/box/p.py"
    echo 21 >"$d/box/in.txt"
    isolate --box-id=0 -M /tmp/meta -t 1 -w 3 -i in.txt -o out.txt --run -- /usr/bin/python3 p.py 2>/dev/null && ok "isolate --run exits 0" || bad "isolate --run exits $?"
    expect "isolate: the program's output" "42" "$(cat "$d/box/out.txt")"
    expect "isolate: the meta file" "exitcode:0" "$(cat /tmp/meta)"
    isolate --box-id=0 -M /tmp/meta -t 0.3 -w 3 --run -- /usr/bin/python3 -c 'while 1: pass' 2>/dev/null && bad "isolate: a busy loop exited 0" || ok "isolate: a busy loop exits 1"
    expect "isolate: TO in the meta file" "status:TO" "$(cat /tmp/meta)"
    out=$(isolate --box-id=0 --cg --run -- /bin/true 2>&1) && bad "isolate --cg ran without a cgroup" || expect "isolate --cg fails closed without a cgroup" "cgroup" "$out"
    isolate --box-id=0 --cleanup && [ ! -e "$d" ] && ok "isolate --cleanup removes the box" || bad "isolate --cleanup"
    ;;
noproc)
    # /proc masked by the runtime, and the degraded mode asked for
    out=$(ward run -- /bin/true 2>&1 || true)
    expect "without --no-proc the run fails, naming the degraded mode" "failing that, --no-proc" "$out"
    expect "program without /proc" "2" "$(ward run --no-proc --verdict v.json -- /usr/bin/python3 -c 'import os; print(len(os.listdir("/")) and 2); assert not os.listdir("/proc")' 2>&1)"
    expect "the verdict says what was lost" '"proc":"none"' "$(cat v.json)"
    expect "the verdict: OK" '"status":"OK"' "$(cat v.json)"
    d=$(WARD_ISOLATE_NO_PROC=1 isolate --box-id=1 --init)
    echo 'print(6 * 7)' >"$d/box/a.py"
    expect "isolate with WARD_ISOLATE_NO_PROC=1" "42" "$(WARD_ISOLATE_NO_PROC=1 isolate --box-id=1 --run -- /usr/bin/python3 a.py 2>/dev/null)"
    expect "isolate -v shows it" '"proc":"none"' "$(WARD_ISOLATE_NO_PROC=1 isolate --box-id=1 -v --run -- /bin/true 2>&1)"
    # a warm box (the third run joins the keeper) has no /proc either
    for _ in 1 2; do WARD_ISOLATE_NO_PROC=1 isolate --box-id=1 --run -- /bin/true 2>/dev/null; done
    out=$(WARD_ISOLATE_NO_PROC=1 isolate --box-id=1 -p10 -v --run -- /bin/sh -c 'echo "in /proc: $(ls -A /proc | wc -l)"' 2>&1)
    expect "a warm run without /proc" '"used":true' "$out"
    expect "a warm run without /proc: empty" 'in /proc: 0' "$out"
    isolate --box-id=1 --cleanup
    ;;
stop)
    # first life: a box with a run in progress; second life (after docker stop): cleanup
    if [ ! -e /tmp/first-life ]; then
        touch /tmp/first-life
        isolate --box-id=3 --init >/dev/null
        isolate --box-id=3 --run -- /bin/true 2>/dev/null   # the second run of a configuration starts its keeper
        isolate --box-id=3 --run -- /bin/true 2>/dev/null
        touch /tmp/running
        exec isolate --box-id=3 --run -- /bin/sleep 1000
    fi
    expect "a box of the earlier life is there before cleanup" "3" "$(ls /tmp/boxes)"
    out=$(ward cleanup)
    expect "ward cleanup removes it" "removed 1 isolate boxes left from before this boot or container start" "$out"
    left=$(ls /tmp/boxes)
    [ -z "$left" ] && ok "no box left" || bad "left in /tmp/boxes: $left"
    procs=$(ps -eo comm= | grep -v -x -e ps -e sh -e grep -e inside.sh || true)
    [ -z "$procs" ] && ok "no process of the earlier life" || bad "processes: $procs"
    ;;
*)
    echo "usage: inside.sh works|noproc|stop" >&2
    exit 2
    ;;
esac
[ "$fails" = 0 ] || { echo "inside.sh $1: $fails failed"; exit 1; }
echo "inside.sh $1: all passed"
