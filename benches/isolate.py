#!/usr/bin/env python3
"""Per-submission cost of the isolate front end: --init + --run /bin/true + --cleanup, and
--run alone on a box prepared once, side by side with `ward run`, interleaved."""
import os, statistics, subprocess, tempfile, time

WARD = os.environ.get("WARD", "target/release/ward")
ROUNDS = int(os.environ.get("ROUNDS", "200"))
root = tempfile.mkdtemp(prefix="ward-isolate-bench-")
os.chmod(root, 0o700)
ENV = {"PATH": "/usr/bin:/bin", "WARD_ISOLATE_ROOT": root}

COLD = {**ENV, "WARD_ISOLATE_WARM": "0"}

def run(*argv, env=ENV):
    subprocess.run([WARD, *argv], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def full():
    run("isolate", "-b", "1", "--init"); run("isolate", "-b", "1", "--run", "--", "/bin/true"); run("isolate", "-b", "1", "--cleanup")

cases = {
    "isolate init+run+cleanup": full,
    "isolate init+run+cleanup, no warm": lambda: (run("isolate", "-b", "3", "--init", env=COLD), run("isolate", "-b", "3", "--run", "--", "/bin/true", env=COLD), run("isolate", "-b", "3", "--cleanup", env=COLD)),
    "isolate --run (warm box)": lambda: run("isolate", "-b", "2", "--run", "--", "/bin/true"),
    "isolate --run (box, no warm)": lambda: run("isolate", "-b", "4", "--run", "--", "/bin/true", env=COLD),
    "ward run": lambda: run("run", "--no-workdir", "--", "/bin/true"),
}
run("isolate", "-b", "2", "--init"); run("isolate", "-b", "4", "--init", env=COLD)
time.sleep(0.5)  # the warm box's keeper is built in the background
t = {k: [] for k in cases}
for r in range(ROUNDS):
    for k, f in cases.items():
        t0 = time.perf_counter(); f(); t[k].append((time.perf_counter() - t0) * 1000)
run("isolate", "-b", "2", "--cleanup"); run("isolate", "-b", "4", "--cleanup", env=COLD)
os.rmdir(root)
base = statistics.median(t["ward run"])
print(f"# {ROUNDS} interleaved rounds, uid {os.getuid()}")
for k, v in t.items():
    m = statistics.median(v)
    print(f"{k:<36} median {m:6.2f} ms  p90 {sorted(v)[int(len(v)*0.9)]:6.2f} ms  ({m/base:.2f}x ward run)")
