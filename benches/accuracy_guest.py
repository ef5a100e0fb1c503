#!/usr/bin/env python3
"""Runs inside the VM guest (kernel 6.1, cgroup v2), inside one delegated scope: how exact
ward's judge numbers are. Prints a summary; see benches/accuracy.sh."""
import json, os, statistics, subprocess, sys, time
W = os.environ.get("WARD", "/mnt/ward/ward")
B = os.environ.get("BIN_DIR", "/mnt/ward")
N = int(os.environ.get("N", "100"))
def run(args):
    p = subprocess.run([W, "run", "--no-workdir", "--verdict", "/tmp/v.json", *args], capture_output=True, text=True)
    return json.load(open("/tmp/v.json")), p.stdout
# 1. CPU time: the program burns ~50 ms and prints its own CLOCK_PROCESS_CPUTIME_ID
errs, within = [], 0
for _ in range(N):
    v, out = run(["--ro-bind", f"{B}/burn", "/burn", "--", "/burn", "50"])
    own = int(out.split()[0]) / 1000.0
    e = v["cpu_time_ms"] - own
    errs.append(e)
    within += abs(e) <= max(0.01 * own, 2.0)
print(f"cpu: {N} runs, ward - program's own CPU time: mean {statistics.mean(errs):+.3f} ms, stdev {statistics.pstdev(errs):.3f}, min {min(errs):+.3f}, max {max(errs):+.3f}; within max(1%, 2 ms): {within}/{N}")
# 2. memory: touches exactly 64 MiB
peaks = []
for _ in range(10):
    v, _ = run(["--mem", "512M", "--ro-bind", f"{B}/touch", "/touch", "--", "/touch", "64"])
    peaks.append(v["max_rss_kib"] / 1024)
print(f"memory: touching 64 MiB, peak reported (memory.peak of the leaf, MiB): min {min(peaks):.2f}, max {max(peaks):.2f} (target within 1% + 1 MiB = 65.64)")
# 3. TLE latency: endless loop, --time 1
tl = []
for _ in range(int(os.environ.get("NT", "20"))):
    v, _ = run(["--time", "1", "--", "sh", "-c", "while :; do :; done"])
    assert v["status"] == "TLE", v["status"]
    tl.append(v["cpu_time_ms"])
ok = sum(1000 <= t <= 1010 for t in tl)
print(f"TLE: {len(tl)} runs of an endless loop with --time 1: killed at {min(tl):.1f}..{max(tl):.1f} ms of CPU (median {statistics.median(tl):.1f}); within 1000..1010: {ok}/{len(tl)}")
# 4. overhead of the leaf: with a cgroup vs without (no D-Bus, session scope is not delegated)
def t(env):
    t0 = time.perf_counter(); subprocess.run([W, "run", "--no-workdir", "--", "/bin/true"], env=env, check=True); return (time.perf_counter() - t0) * 1000
base = {"PATH": "/usr/bin:/bin"}
with_cg, without = [], []
for _ in range(20):
    with_cg.append(t(base))
print(f"start-up in the guest (TCG, slow): with a leaf {statistics.median(with_cg):.1f} ms")
