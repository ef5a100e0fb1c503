# Runs inside the guest (Debian 12's kernel 6.1, systemd, pure cgroup v2) as the lingering
# test user: what a Debian 12 user gets from ward. TAP-like lines, then "N passed, N failed".
W=/mnt/ward/ward
cd /tmp
pass=0; fail=0
check() { # description, then a command that must succeed
    d=$1; shift
    if "$@" >/tmp/out 2>&1; then pass=$((pass+1)); echo "ok - $d"; else fail=$((fail+1)); echo "not ok - $d"; sed 's/^/    /' /tmp/out | head -20; fi
}
has() { grep -q -- "$1" /tmp/v.json; }

check "ward check passes and sees Landlock ABI 2" sh -c "$W check | tee /dev/stderr | grep -q 'OK    landlock: ABI 2'"
check "a default run works" sh -c "test \"\$($W run -- echo hi)\" = hi"
check "built-in profile runs with Landlock ABI 2, says what was dropped" sh -c "$W run --verdict /tmp/v.json -- true && grep -q '\"abi\":2' /tmp/v.json && grep -q 'partially enforced' /tmp/v.json"
check "--require-landlock fails closed on 6.1" sh -c "$W run --require-landlock -- true 2>&1 | grep -q 'but this kernel has ABI 2'; test \$? = 0"
check "seccomp denies unshare with EPERM and reports it" sh -c "$W run --verdict /tmp/v.json -- sh -c 'unshare -U true' ; grep -q '\"syscall\":\"unshare\"' /tmp/v.json"
check "i386 syscalls are killed" sh -c "$W run -- python3 -c 'import ctypes,mmap; m=mmap.mmap(-1,4096,prot=7); m.write(bytes([0xb8,20,0,0,0,0xcd,0x80,0xc3])); ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()'; test \$? = 159"
check "--net slirp4netns" sh -c "$W run --net slirp4netns -- cat /etc/resolv.conf | grep -q 'nameserver 10.0.2.3'"
check "--net pasta" sh -c "$W run --net pasta -- sh -c 'grep -c 00000000 /proc/net/route' | grep -q 2"
check "--allow-connect refused without Landlock TCP rules (6.1)" sh -c "$W run --net slirp4netns --allow-connect 443 -- true 2>&1 | grep -q 'need Landlock TCP rules'"
check "--time gives TLE" sh -c "$W run --verdict /tmp/v.json --time 0.5 -- sh -c 'while :; do :; done'; grep -q '\"status\":\"TLE\"' /tmp/v.json"
check "--map-ranges maps the subordinate range" sh -c "$W run --map-ranges --uid 1000 -- cat /proc/self/uid_map | grep -q '100000'"
check "without delegation or a session bus, the cgroup fallback is reported" sh -c "env -u DBUS_SESSION_BUS_ADDRESS $W run --verdict /tmp/v.json -- true; grep -q 'unavailable (cgroup v2, ' /tmp/v.json"
check "isolate init, run, cleanup" sh -c "B=\$($W isolate -b 3 --init) && echo 'print(6*7)' > \$B/box/a.py && $W isolate -b 3 -o out.txt --run -- /usr/bin/python3 a.py && test \"\$(cat \$B/box/out.txt)\" = 42 && $W isolate -b 3 --cleanup"

# cgroup v2: runs inside a scope delegated by the user manager (systemd-run --user --scope
# -p Delegate=yes), the first way ward gets a subtree
D() { systemd-run --user --scope -q -p Delegate=yes "$@"; }
field() { python3 -c "import json,sys; v=json.load(open('/tmp/v.json')); print(eval(sys.argv[1]))" "$1"; }
cg_leaf() { D $W run --verdict /tmp/v.json -- true && test "$(field 'v["enforced"]["cgroup"].startswith("leaf /sys/fs/cgroup/user.slice/")')" = True; }
cg_mle() { D $W run --verdict /tmp/v.json --mem 50M -- python3 -c 'x=bytearray(200<<20)'; test "$(field '(v["status"], v["max_rss_kib"], v["enforced"]["limits"]["enforced_by"].startswith("the kernel, in the run'"'"'s cgroup leaf"))')" = "('MLE', 51200, True)"; }
cg_forkbomb() { D $W run --verdict /tmp/v.json --procs 16 --wall-time 20 -- sh -c 'b() { b & b; }; b 2>/dev/null; true'; test "$(field 'v["status"] in ("OK", "RE", "SG")')" = True; }
cg_tle() { D $W run --verdict /tmp/v.json --time 1 -- sh -c 'for i in 1 2 3 4; do (while :; do :; done) & done; wait'; test "$(field 'v["status"] == "TLE" and 1000 <= v["cpu_time_ms"] < 1300')" = True; }
cg_wle() { D $W run --verdict /tmp/v.json --wall-time 1 -- sleep 30; test "$(field 'v["status"]')" = WLE; }
cg_extra() { D $W run --verdict /tmp/v.json --time 0.2 --extra-time 5 -- python3 -c 'import time
t = time.process_time()
while time.process_time() - t < 0.6: pass
print(1)' | grep -q 1 && test "$(field 'v["status"]')" = TLE; }
cg_cpus() { D $W run --verdict /tmp/v.json --cpus 0.5 --wall-time 2 -- sh -c 'while :; do :; done'; test "$(field '700 < v["cpu_time_ms"] < 1300')" = True; }
cg_killed() {
    D sh -c '
        W=$1
        $W run -- sleep 100 & L=$!
        # wait (the guest is slow) until the sandbox runs, then kill the launcher
        i=0; while ! pgrep -f "^sleep 100\$" >/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
        kill -9 $L; sleep 0.5
        c=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
        test -n "$(find $c/.. -maxdepth 2 -name "ward-*-run*")" || { echo "no stale leaf to clean"; exit 1; }
        if pgrep -f "^sleep 100\$"; then echo "a process survived"; exit 1; fi
        $W cleanup
        test -z "$(find $c/.. -maxdepth 2 -name "ward-*-run*")"' sh "$W"
}
iso_cg() {
    D sh -c '
        W=$1
        B=$($W isolate --cg -b 4 --init) || exit 1
        $W isolate --cg -b 4 -M $B/m1 --cg-mem=51200 --run -- /usr/bin/python3 -c "x=bytearray(200<<20)"
        grep -q "^cg-oom-killed:1" $B/m1 && grep -q "^cg-mem:51200" $B/m1 && grep -q "^status:SG" $B/m1 || { cat $B/m1; exit 1; }
        $W isolate --cg -b 4 -M $B/m2 -p1 --run -- /bin/sh -c "/bin/true && echo forked" > $B/out; grep -q forked $B/out && { echo "-p1 let it fork"; exit 1; }
        $W isolate --cg -b 4 -M $B/m3 -p8 -t 1 --run -- /bin/sh -c "/bin/true && echo forked" | grep -q forked || exit 1
        $W isolate --cg -b 4 --cleanup' sh "$W"
}
# CMS master's IsolateSandbox (cms/grading/Sandbox.py), its command lines as it builds them:
# shard 0's box ids start at 1000, --cg always, a home dir bound at /tmp, io paths inside,
# cg-mem and cg-oom-killed read from the meta file, and the chmod run through isolate before
# --cleanup and rmtree.
cms_master() {
    D sh -c '
        W=$1; I="$W isolate"; id=1003
        O=$(mktemp -d /tmp/cms-XXXXXX) && H=$O/home && mkdir $H && chmod 777 $H || exit 1
        $I --box-id=$id --cg --cleanup >/dev/null && $I --box-id=$id --cg --init >/dev/null || exit 1
        printf "2 40\n" > $H/input.txt
        printf "a, b = map(int, input().split())\nprint(a + b)\n" > $H/sum.py
        o="--cg --box-id=$id --chdir=/tmp --dir=/tmp=$H:rw --dir=/dev/shm:tmp --dir=/etc/alternatives=/etc/alternatives --env=HOME=/tmp --fsize=1024 --stack=65536"
        $I $o --stdin=/tmp/input.txt --cg-mem=262144 --stdout=/tmp/output.txt --processes=1 --stderr=/tmp/stderr.txt --time=2 --wall-time=5 --extra-time=0.5 --meta=$O/run.meta.0 --run -- /usr/bin/python3 sum.py
        test "$(cat $H/output.txt)" = 42 || { cat $O/run.meta.0 $H/stderr.txt; exit 1; }
        grep -q "^cg-mem:[1-9]" $O/run.meta.0 && ! grep -q "^status:" $O/run.meta.0 || { cat $O/run.meta.0; exit 1; }
        $I $o --cg-mem=65536 --processes=1 --time=5 --wall-time=10 --meta=$O/run.meta.1 --run -- /usr/bin/python3 -c "x = bytearray(300 << 20)"
        grep -q "^cg-oom-killed:1" $O/run.meta.1 && grep -q "^status:SG" $O/run.meta.1 && grep -q "^cg-mem:65536" $O/run.meta.1 || { cat $O/run.meta.1; exit 1; }
        $I $o --processes=1000 --meta=$O/run.meta.2 --run -- /bin/sh -c "mkdir -p d/e && touch d/e/f && chmod 000 d/e d"
        $I --box-id=$id --cg --dir=/tmp=$H:rw --run -- /bin/chmod 777 -R /tmp >/dev/null 2>&1
        $I --box-id=$id --cg --cleanup && rm -rf $O && test ! -e $O' sh "$W"
}
cg_ole() { D $W run --verdict /tmp/v.json --fsize 8K --stdout /tmp/o.txt -- sh -c 'exec head -c 100000 /dev/zero'; test "$(field 'v["status"]')" = OLE && test "$(stat -c %s /tmp/o.txt)" = 8192; }
cg_judge() { echo "20 22" > /tmp/in.txt; out=$($W run --profile judge --verdict /tmp/v.json --stdin /tmp/in.txt --time 2 --mem 64M -- python3 -c 'a, b = map(int, input().split()); print(a + b)') && test "$out" = 42 && test "$(field 'v["enforced"]["cgroup"].startswith("leaf ")')" = True; }
cg_require() { env -u DBUS_SESSION_BUS_ADDRESS $W run --require-cgroup -- true 2>&1 | grep -q 'session-c1.scope is not delegated to you'; }
cg_dbus() { $W run --verdict /tmp/v.json --mem 50M -- python3 -c 'x=bytearray(200<<20)'; test "$(field '(v["status"], "StartTransientUnit" in v["enforced"]["cgroup"])')" = "('MLE', True)"; }
cg_dbus_isolate() { B=$($W isolate --cg -b 5 --init) && $W isolate --cg -b 5 -M $B/m --cg-mem=51200 -p4 --run -- /bin/true && grep -q '^cg-mem:' $B/m && $W isolate --cg -b 5 --cleanup; }
check "cgroup: a run gets its own leaf in the delegated scope" cg_leaf
check "cgroup: a memory hog is MLE with memory.peak at the limit, enforced by the leaf" cg_mle
check "cgroup: pids.max stops a fork bomb" cg_forkbomb
check "cgroup: 4 burners hit --time 1 on total CPU" cg_tle
check "cgroup: a sleeper is WLE" cg_wle
check "cgroup: extra time kills later, judged against time" cg_extra
check "cgroup: --cpus 0.5 throttles" cg_cpus
check "cgroup: --fsize caps the output, OLE" cg_ole
check "cgroup: the judge profile gets its leaf (over D-Bus) and runs a solution" cg_judge
check "cgroup: a SIGKILLed launcher leaves no process; ward cleanup removes its leaf" cg_killed
check "cgroup: --require-cgroup refuses without delegation or a session bus" cg_require
check "cgroup: from a session scope, ward gets a delegated scope over D-Bus (MLE)" cg_dbus
# warm runs on 6.1 with a leaf each: setns + clone3(CLONE_PARENT|CLONE_INTO_CGROUP)
cg_warm_batch() {
    printf '%s\n' '{"argv": ["/bin/true"]}' '{"argv": ["/usr/bin/python3", "-c", "x=bytearray(200<<20)"]}' '{"argv": ["/bin/sh", "-c", "ls /tmp; touch /tmp/x"]}' '{"argv": ["/bin/sh", "-c", "ls /tmp | grep -q x && exit 7; exit 0"]}' > /tmp/batch.jsonl
    D $W run --mem 50M --batch /tmp/batch.jsonl > /tmp/verdicts.jsonl || return 1
    python3 -c '
import json
vs = [json.loads(l) for l in open("/tmp/verdicts.jsonl")]
assert [v["status"] for v in vs] == ["OK", "MLE", "OK", "OK"], [(v["status"], v["message"]) for v in vs]
assert all(v["enforced"]["warm"]["used"] and v["enforced"]["cgroup"].startswith("leaf ") for v in vs), vs[0]["enforced"]
assert len({v["enforced"]["warm"]["keeper_pid"] for v in vs}) == 1
assert [v["enforced"]["warm"].get("cloned_ahead", False) for v in vs] == [False, True, True, True], [v["enforced"]["warm"] for v in vs]
assert len({v["enforced"]["cgroup"].split()[1] for v in vs}) == 4, [v["enforced"]["cgroup"] for v in vs]
'
}
check "warm batch: one keeper, pipelined runs in user namespaces of their own, a cgroup leaf each, MLE in its own leaf, /tmp fresh (6.1)" cg_warm_batch
check "cgroup: isolate --cg from a session scope, over D-Bus" cg_dbus_isolate
check "isolate --cg: --cg-mem is memory.max (cg-oom-killed, cg-mem), -p is pids.max" iso_cg
check "isolate: CMS master's IsolateSandbox sequence (box 1003, --cg, io inside, cg-mem, cg-oom-killed, chmod cleanup)" cms_master
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
