#!/usr/bin/env python3
"""Networking benchmark: start-up of `ward run --net HELPER -- /bin/true` against the same
done by hand (unshare a user+net namespace, start the helper, wait until it is ready, run
/bin/true, tear the helper down), interleaved; then iperf3 throughput from inside to a
server on the host's loopback, through ward and through the same helper by hand.
Run as an unprivileged user (benches/net.sh does that for root). Loopback only."""
import json, os, statistics, subprocess, sys, time

WARD = os.environ.get("WARD", "target/release/ward")
ROUNDS = int(os.environ.get("ROUNDS", "30"))
ENV = {"PATH": "/usr/bin:/bin"}

def gateway():
    for l in open("/proc/net/route").read().splitlines()[1:]:
        f = l.split()
        if f[1] == "00000000" and f[2] != "00000000":
            import socket, struct
            return socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))

def helper_argv(helper, pid, ready_fd, host_loopback):
    if helper == "slirp4netns":
        a = ["slirp4netns", "--configure", "--mtu=65520", f"--ready-fd={ready_fd}"]
        if not host_loopback:
            a.append("--disable-host-loopback")
        return a + [str(pid), "tap0"]
    a = ["pasta", "--config-net", "--quiet", "-f", "-T", "none", "-U", "none", "-t", "none", "-u", "none", "--pid", f"/dev/fd/{ready_fd}"]
    if not host_loopback:
        a.append("--no-map-gw")
    return a + [str(pid)]

def by_hand(helper, cmd, host_loopback=False):
    """The reference: what a careful script does without ward."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["unshare", "-Urn", "sh", "-c", 'read _ && exec "$@"', "sh", *cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV)
    # wait until unshare has made the namespaces (the helper must not join the old ones)
    mine = os.readlink("/proc/self/ns/net")
    while True:
        try:
            if os.readlink(f"/proc/{p.pid}/ns/net") != mine and open(f"/proc/{p.pid}/uid_map").read().strip():
                break
        except OSError:
            pass
        time.sleep(0.0005)
    r, w = os.pipe()
    h = subprocess.Popen(helper_argv(helper, p.pid, w, host_loopback), pass_fds=[w], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    ready = os.read(r, 16)
    os.close(r)
    if not ready:
        p.kill(); p.wait()
        sys.exit(f"by hand: {helper} failed: {h.communicate()[1].decode(errors='replace').strip()}")
    p.stdin.write(b"\n"); p.stdin.close()
    out = p.stdout.read()
    p.wait()
    h.terminate(); h.wait()
    return time.perf_counter() - t0, out

def with_ward(helper, cmd, host_loopback=False):
    t0 = time.perf_counter()
    argv = [WARD, "run", "--no-workdir", "--net", helper] + (["--allow-host-loopback"] if host_loopback else []) + ["--", *cmd]
    out = subprocess.run(argv, env=ENV, stdout=subprocess.PIPE, check=True).stdout
    return time.perf_counter() - t0, out

def main():
    print(f"# {ROUNDS} interleaved rounds per helper, uid {os.getuid()}, kernel {os.uname().release}")
    for helper in ["slirp4netns", "pasta"]:
        t = {"ward": [], "by hand": []}
        for _ in range(ROUNDS):
            t["ward"].append(with_ward(helper, ["/bin/true"])[0] * 1000)
            t["by hand"].append(by_hand(helper, ["/bin/true"])[0] * 1000)
        w, h = statistics.median(t["ward"]), statistics.median(t["by hand"])
        print(f"{helper:<12} start-up: ward {w:7.2f} ms, by hand {h:7.2f} ms, ratio {w/h:.2f} (target <= 0.30)")
    srv = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", "5299"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        for helper in ["slirp4netns", "pasta"]:
            target = "10.0.2.2" if helper == "slirp4netns" else gateway()
            cmd = ["iperf3", "-c", target, "-p", "5299", "-t", "2", "-J"]
            res = {"ward": [], "by hand": []}
            for _ in range(int(os.environ.get("REPEATS", "5"))):
                for name, fn in [("ward", with_ward), ("by hand", by_hand)]:
                    out = fn(helper, cmd, host_loopback=True)[1]
                    j = json.loads(out)
                    if "error" in j:
                        sys.exit(f"{helper} {name}: iperf3: {j['error']}")
                    res[name].append(j["end"]["sum_received"]["bits_per_second"] / 1e9)
                    time.sleep(0.3)  # the iperf3 server takes one client at a time
            w, h = statistics.median(res["ward"]), statistics.median(res["by hand"])
            spread = lambda v: f"{min(v):.2f}-{max(v):.2f}"
            print(f"{helper:<12} iperf3 to host loopback (median of {len(res['ward'])}): ward {w:.2f} Gbit/s [{spread(res['ward'])}], by hand {h:.2f} Gbit/s [{spread(res['by hand'])}] ({(w/h-1)*100:+.1f} %)")
    finally:
        srv.terminate()

if __name__ == "__main__":
    main()
