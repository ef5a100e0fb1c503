#!/usr/bin/env python3
"""Interleaved start-up benchmark: ward run vs bwrap vs bare unshare vs /bin/true.

Each round runs every command once, in a rotating order, so drift in machine load hits all
of them alike. Prints medians, p90s, ratios, the launcher's peak RSS (VmHWM), and sustained
parallel throughput. Run it as an unprivileged user (benches/compare.sh does that for root).
"""
import atexit, os, shutil, statistics, subprocess, sys, tempfile, time, concurrent.futures as cf

ROUNDS = int(os.environ.get("ROUNDS", "300"))
PAR_SECONDS = float(os.environ.get("PAR_SECONDS", "5"))
PAR_JOBS = int(os.environ.get("PAR_JOBS", "4"))
WARD = os.environ.get("WARD", "target/release/ward")

def usr_links():
    out = []
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = "/" + d
        if os.path.islink(p):
            out += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            out += ["--ro-bind", p, p]
    return out

LOOP = os.environ.get("LOOP", "")
NOCACHE_ENV = {"PATH": "/usr/bin:/bin", "WARD_NO_FILTER_CACHE": "1"}

COMMANDS = {
    "ward": [WARD, "run", "--no-workdir", "--", "/bin/true"],
    "ward-bare": [WARD, "run", "--no-workdir", "--no-seccomp", "--no-landlock", "--", "/bin/true"],
    "ward-nocache": [WARD, "run", "--no-workdir", "--", "/bin/true"],
    "bwrap": ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
              *usr_links(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"],
    "unshare": ["unshare", "-Ur", "--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--cgroup", "/bin/true"],
    "true": ["/bin/true"],
}

BATCH_DIR = tempfile.mkdtemp(prefix="ward-bench-batch-")
atexit.register(shutil.rmtree, BATCH_DIR, True)  # the batch files go with the run
def batch_file(n):
    path = os.path.join(BATCH_DIR, f"b{n}.jsonl")
    with open(path, "w") as f:
        f.write('{"argv": ["/bin/true"]}\n' * n)
    return path
BATCH_N = 21
WARM_BATCH = [WARD, "run", "--no-workdir", "--batch", batch_file(BATCH_N)]
WARM_ONE = [WARD, "run", "--no-workdir", "--batch", batch_file(1)]

CPU = {}  # command -> CPU ms (user + system of the whole process tree) per run

def warm_per_run():
    """One warm run's cost: a batch of 21 runs minus a batch of 1 (the keeper's start and
    the launcher's own start-up), over 20; its CPU the same way."""
    (t1, c1), (tn, cn) = once_cpu(WARM_ONE), once_cpu(WARM_BATCH)
    CPU.setdefault("ward-warm", []).append((cn - c1) / (BATCH_N - 1))
    return (tn - t1) / (BATCH_N - 1)

CPU_FILE, CPU_UNIT = (os.environ.get("WARD_BENCH_CPU", "").split() + ["", ""])[:2]

def cgroup_cpu_ms():
    """CPU time used so far by everything in the benchmark's cgroup (benches/compare.sh makes
    one as root), in ms; None without one."""
    if not CPU_FILE:
        return None
    with open(CPU_FILE) as f:
        if CPU_UNIT == "ns":
            return int(f.read()) / 1e6
        return next(int(l.split()[1]) for l in f if l.startswith("usage_usec")) / 1e3

def once_cpu(argv, env=None):
    """Wall ms and CPU ms: with a cgroup, the CPU every process of the command used (reaped
    or not, python's spawn and wait included, the same for every command); else rusage of the
    process and everything it waited for. Every command's stdout goes to /dev/null (a batch
    prints its verdicts there)."""
    c0 = cgroup_cpu_ms()
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0] if "/" in argv[0] else subprocess.os.path.join("/usr/bin", argv[0]), argv, env or {"PATH": "/usr/bin:/bin"},
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    if status != 0:
        sys.exit(f"{argv[0]} failed with status {status}")
    if c0 is not None:
        return (t1 - t0) / 1e6, cgroup_cpu_ms() - c0
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3

def once(argv, env=None):
    return once_cpu(argv, env)[0]

def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

def launcher_rss():
    """Peak RSS (VmHWM) of the launcher and of the sandbox's init, read while a run sleeps.
    (wait4's ru_maxrss cannot tell: it counts the spawning process's pages before exec.)"""
    argv = [WARD, "run", "--no-workdir", "--", "/bin/sleep", "0.4"]
    pid = os.posix_spawn(WARD, argv, {"PATH": "/usr/bin:/bin"})
    time.sleep(0.2)
    launcher = vm_hwm_kib(pid)
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = f.read().split()
    init = vm_hwm_kib(int(kids[0])) if kids else 0
    os.waitpid(pid, 0)
    return launcher, init

def main():
    names = list(COMMANDS)
    times = {n: [] for n in names}
    for n in names:  # warm-up (and fills the filter cache)
        once(COMMANDS[n], NOCACHE_ENV if n == "ward-nocache" else None)
    times["ward-warm"] = []
    for r in range(ROUNDS):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t, c = once_cpu(COMMANDS[n], NOCACHE_ENV if n == "ward-nocache" else None)
            times[n].append(t)
            CPU.setdefault(n, []).append(c)
        if r % 4 == 0:  # a batch is 22 runs: a quarter of the rounds keep the total time sane
            times["ward-warm"].append(warm_per_run())
    names.append("ward-warm")
    med = {n: statistics.median(v) for n, v in times.items()}
    print(f"# {ROUNDS} interleaved rounds, uid {os.getuid()}, kernel {os.uname().release}")
    print(f"{'command':<9} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8} {'CPU ms':>8}")
    for n in names:
        v = sorted(times[n])
        print(f"{n:<9} {med[n]:>10.3f} {v[int(len(v)*0.9)]:>8.3f} {statistics.mean(v):>8.3f} {statistics.median(CPU[n]):>8.3f}")
    print(f"ratio ward/bwrap   = {med['ward']/med['bwrap']:.2f}  (target <= 0.70)")
    print(f"ratio ward/unshare = {med['ward']/med['unshare']:.2f}  (target <= 1.50)")
    print(f"ratio warm/unshare = {med['ward-warm']/med['unshare']:.2f}  (warm run in a batch; target <= 0.50)")
    print(f"ratio warm/ward    = {med['ward-warm']/med['ward']:.2f}")
    cpu = {n: statistics.median(v) for n, v in CPU.items()}
    print(f"CPU measured by    = {'the cgroup ' + CPU_FILE if CPU_FILE else 'rusage of waited-for children (misses what a tool does not reap)'}")
    print(f"CPU per run        = ward {cpu['ward']:.2f} ms, bwrap {cpu['bwrap']:.2f} ms, unshare {cpu['unshare']:.2f} ms, /bin/true {cpu['true']:.2f} ms, warm {cpu['ward-warm']:.2f} ms (ward/bwrap {cpu['ward']/cpu['bwrap']:.2f})")
    print(f"seccomp + Landlock per run = {med['ward'] - med['ward-bare']:.3f} ms (cached filter; target <= 0.3 ms)")
    print(f"filter compiled every run  = {med['ward-nocache'] - med['ward-bare']:.3f} ms (no cache: what caching saves)")
    if LOOP:
        def per_call(argv):
            out = subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
            return float(out[-1]) if out else float("nan")
        rows = {"outside": [], "ward": [], "ward --no-seccomp": []}
        for _ in range(7):
            rows["outside"].append(per_call([LOOP]))
            rows["ward"].append(per_call([WARD, "run", "--no-workdir", "--ro-bind", LOOP, "/loop", "--", "/loop"]))
            rows["ward --no-seccomp"].append(per_call([WARD, "run", "--no-workdir", "--no-seccomp", "--ro-bind", LOOP, "/loop", "--", "/loop"]))
        m = {k: statistics.median(v) for k, v in rows.items()}
        print(f"getppid() per call  = outside {m['outside']:.1f} ns, in ward {m['ward']:.1f} ns, in ward without seccomp {m['ward --no-seccomp']:.1f} ns")
        print(f"filter cost per call = {m['ward'] - m['ward --no-seccomp']:.1f} ns (target <= 30 ns)")
    launcher, init = launcher_rss()
    print(f"ward peak RSS      = launcher {launcher/1024:.2f} MiB, sandbox init {init/1024:.2f} MiB (VmHWM; target <= 4 MiB)")
    # sustained throughput with runs in parallel
    deadline = time.monotonic() + PAR_SECONDS
    def worker():
        n = 0
        while time.monotonic() < deadline:
            once(COMMANDS["ward"])
            n += 1
        return n
    with cf.ThreadPoolExecutor(PAR_JOBS) as ex:
        total = sum(ex.map(lambda _: worker(), range(PAR_JOBS)))
    fresh_rate = total / PAR_SECONDS
    print(f"throughput         = {fresh_rate:.0f} runs/s with {PAR_JOBS} in parallel over {PAR_SECONDS:.0f} s (target >= 300)")
    # warm: each worker runs batches of 200 for the same time; count verdicts
    big = [WARD, "run", "--no-workdir", "--batch", batch_file(200)]
    deadline = time.monotonic() + PAR_SECONDS
    def warm_worker():
        n = 0
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            once(big)
            n += 200
        return n / (time.monotonic() - t0)
    with cf.ThreadPoolExecutor(PAR_JOBS) as ex:
        warm_rate = sum(ex.map(lambda _: warm_worker(), range(PAR_JOBS)))
    print(f"warm throughput    = {warm_rate:.0f} runs/s with {PAR_JOBS} batches in parallel ({warm_rate/fresh_rate:.2f}x fresh; target >= 2.5x)")

if __name__ == "__main__":
    main()
