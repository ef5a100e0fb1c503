//! Whole-run time limits in the fallback path (no delegated cgroup on this host): TLE, WLE,
//! extra time, and --require-cgroup refusing.

use crate::common::*;

#[test]
fn cpu_limit_gives_tle() {
    let s = Scratch::new();
    let r = run_in(&s, &["--time", "1", "--", burner(s.path()), "forever"]);
    assert_eq!(r.status(), "TLE", "{}", r.stderr());
    assert_eq!(r.code(), 128 + 9);
    assert_eq!(r.v()["limit_hit"], "time");
    assert_eq!(r.v()["message"], "Time limit exceeded");
    let cpu = r.v()["cpu_time_ms"].as_f64().unwrap();
    assert!((1000.0..1150.0).contains(&cpu), "cpu {cpu}");
    assert!(r.v()["enforced"]["cgroup"].as_str().unwrap().starts_with("unavailable ("));
    assert!(r.v()["enforced"]["limits"]["enforced_by"].as_str().unwrap().contains("approximate"));
}

#[test]
fn cpu_limit_counts_the_whole_tree() {
    let s = Scratch::new();
    let burn = burner(s.path());
    let marker = "tree-of-burners";
    let r = run_in(&s, &["--time", "1", "--", "sh", "-c", &format!("{burn} forever {marker} & {burn} forever {marker} & wait")]);
    assert_eq!(r.status(), "TLE");
    let (cpu, wall) = (r.v()["cpu_time_ms"].as_f64().unwrap(), r.v()["wall_time_ms"].as_f64().unwrap());
    // killed on the total: per-process accounting would have let them burn ~2 s together
    assert!((1000.0..1500.0).contains(&cpu), "cpu {cpu} (wall {wall})");
    assert!(pids_matching(&format!("{burn} forever {marker}")).is_empty());
}

#[test]
fn wall_limit_gives_wle() {
    let s = Scratch::new();
    let r = run_in(&s, &["--wall-time", "0.5", "--", "sleep", "30"]);
    assert_eq!(r.status(), "WLE");
    assert_eq!(r.v()["limit_hit"], "wall-time");
    assert_eq!(r.v()["message"], "Time limit exceeded (wall clock)");
    let wall = r.v()["wall_time_ms"].as_f64().unwrap();
    assert!((500.0..700.0).contains(&wall), "wall {wall}");
    assert!(pids_matching("sleep 30").is_empty());
}

#[test]
fn extra_time_kills_later_but_judges_against_time() {
    let s = Scratch::new();
    // 0.6 s of CPU: 3x over --time 0.2, and 3.7x under --time 0.2 + --extra-time 2
    let r = run_in(&s, &["--time", "0.2", "--extra-time", "2", "--", burner(s.path()), "600"]);
    assert_eq!(r.stdout(), "burned 600 ms\n", "it must not be killed: {}", r.stderr());
    assert_eq!(r.status(), "TLE");
    assert_eq!(r.v()["exit_code"], 0);
    // and within the limit it is OK
    let r = run_in(&s, &["--time", "5", "--wall-time", "5", "--", "true"]);
    assert_eq!(r.status(), "OK");
}

#[test]
fn require_cgroup_refuses_here() {
    let s = Scratch::new();
    let r = run_in(&s, &["--require-cgroup", "--", "touch", "ran"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("--require-cgroup: no cgroup can be used: cgroup v2 is not mounted"), "{}", r.stderr());
    assert!(!s.join("ran").exists());
}

#[test]
fn cgroup_only_limits_are_refused_without_a_cgroup() {
    let s = Scratch::new();
    let r = run_in(&s, &["--cpus", "1", "--", "true"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("--cpus: no cgroup can be used: cgroup v2 is not mounted"), "{}", r.stderr());
    let out = ward_cmd(s.path(), &["cleanup"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\nno cgroup leaves to clean: no delegated cgroup (cgroup v2 is not mounted at /sys/fs/cgroup (hybrid or v1 host))\n"), "{text}");
}

#[test]
fn bad_limits_are_refused() {
    let s = Scratch::new();
    for (args, msg) in [
        (&["--time", "0", "--", "true"][..], "--time 0: not a usable number of seconds"),
        (&["--wall-time=-1", "--", "true"][..], "--wall-time -1: not a usable number"),
        (&["--extra-time", "1", "--", "true"][..], "--extra-time without --time"),
    ] {
        let r = run_in(&s, args);
        assert_eq!(r.code(), 125, "{args:?}");
        assert!(r.stderr().contains(msg), "{args:?}: {}", r.stderr());
    }
}

#[test]
fn memory_of_the_whole_run_gives_mle() {
    let s = Scratch::new();
    let r = run_in(&s, &["--mem", "100M", "--", "python3", "-c", "import time\nx = bytearray(300 << 20)\ntime.sleep(1)\nprint('survived')"]);
    assert_eq!(r.status(), "MLE", "{}", r.stderr());
    assert_eq!(r.v()["limit_hit"], "memory");
    assert_eq!(r.v()["message"], "Memory limit exceeded");
    assert_eq!(r.stdout(), "");
    assert!(r.v()["max_rss_kib"].as_u64().unwrap() > 100 << 10);
    // three processes of 60 MiB each: over 150 MiB together, though none is alone
    let hog = "import time\nx = bytearray(60 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\ntime.sleep(2)";
    let r = run_in(&s, &["--mem", "150M", "--", "sh", "-c", &format!("for i in 1 2 3; do python3 -c \"{hog}\" & done; wait")]);
    assert_eq!(r.status(), "MLE", "{}", r.stderr());
    // and within the limit: OK, with the peak reported
    let r = run_in(&s, &["--mem", "100M", "--", "python3", "-c", "x = bytearray(30 << 20)\nprint('ok')"]);
    assert_eq!((r.status(), r.stdout().as_str()), ("OK", "ok\n"));
    assert!(r.v()["max_rss_kib"].as_u64().unwrap() > 30 << 10);
}

#[test]
fn output_limit_gives_ole() {
    let s = Scratch::new();
    let out = s.join("out.txt");
    let r = run_in(&s, &["--fsize", "4K", "--stdout", out.to_str().unwrap(), "--", "sh", "-c", "exec head -c 100000 /dev/zero"]);
    assert_eq!(r.status(), "OLE", "{}", r.stderr());
    assert_eq!(r.v()["limit_hit"], "output");
    assert_eq!(r.v()["message"], "Output limit exceeded");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 4096, "the captured stdout is capped");
    // the same signal without --fsize is just SG
    let r = run_in(&s, &["--rlimit-fsize", "4K", "--", "sh", "-c", "exec head -c 100000 /dev/zero > /tmp/x"]);
    assert_eq!(r.status(), "SG");
}

#[test]
fn sampled_memory_sees_memfd_and_caps_tmpfs_and_sysv_shm() {
    // Without a cgroup (this host), --mem is sampled: memory held in a memfd (written, never
    // mapped) counts, and what sampling cannot see is capped at the limit.
    let s = Scratch::new();
    let hog = c_helper(s.path(), "memfd");
    let r = run_in(&s, &["--mem", "32M", "--wall-time", "10", "--", &hog, "200"]);
    assert_eq!(r.status(), "MLE", "{} {}", r.stdout(), r.stderr());
    assert_eq!(r.stdout(), "");
    let r = run_in(&s, &["--mem", "64M", "--", &hog, "16"]);
    assert_eq!((r.status(), r.stdout().as_str()), ("OK", "held\n"), "{}", r.stderr());
    // /tmp and /dev/shm hold at most the limit
    let r = run_in(&s, &["--mem", "32M", "--", "sh", "-c", "head -c 100M /dev/zero > /dev/shm/x; ls -l /dev/shm/x | awk '{print $5}'; df -B1M --output=size /tmp | tail -1"]);
    let out = r.stdout();
    let nums: Vec<u64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(nums.len(), 2, "{out} {}", r.stderr());
    assert!(nums[0] <= 32 << 20 && nums[1] <= 32, "{out}");
    // SysV segments, whose size sampling cannot see, are refused and reported
    let r = run_in(&s, &["--mem", "32M", "--", "python3", "-c", "import ctypes,os\nlibc=ctypes.CDLL(None,use_errno=True)\nr=libc.shmget(0,100<<20,0o1600)\nprint(r, os.strerror(ctypes.get_errno()))"]);
    assert_eq!(r.stdout(), "-1 Operation not permitted\n", "{}", r.stderr());
    assert!(r.v()["blocked"].as_array().unwrap().iter().any(|b| b["syscall"] == "shmget"));
    assert!(r.v()["enforced"]["limits"]["enforced_by"].as_str().unwrap().contains("memfd"));
}

#[test]
fn procs_without_a_cgroup_is_rlimit_nproc_in_the_sandbox_s_namespace() {
    // --procs N: N processes and threads of the program (init aside), counted in the
    // sandbox's own user namespace only, so the caller's other processes do not count.
    let s = Scratch::new();
    let _others: Vec<KillOnDrop> = (0..3).map(|_| KillOnDrop(as_user("sleep", &["29"]).spawn().unwrap())).collect();
    let fork8 = "import os,time\nok=0\nfor i in range(8):\n  try:\n    if os.fork()==0:\n      time.sleep(2); os._exit(0)\n    ok+=1\n  except BlockingIOError: pass\nprint(ok, flush=True)\nos._exit(0)";
    let r = run_in(&s, &["--procs", "4", "--", "python3", "-c", fork8]);
    // python is one of the 4: three more forks succeed
    assert_eq!(r.stdout(), "3\n", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["limits"]["procs"], 4);
    assert!(r.v()["enforced"]["limits"]["procs_enforced_by"].as_str().unwrap().starts_with("RLIMIT_NPROC in the sandbox's user namespace"));
    // threads count too
    let r = run_in(&s, &["--procs", "3", "--", "python3", "-c", "import threading,time\nok=0\nfor i in range(6):\n  try:\n    threading.Thread(target=time.sleep,args=(1,)).start(); ok+=1\n  except RuntimeError: pass\nprint(ok)"]);
    assert_eq!(r.stdout(), "2\n", "{}", r.stderr());
}

#[test]
fn the_default_profile_stops_a_fork_bomb_without_a_cgroup() {
    // procs = 1024 in the default profile: processes and threads of the sandbox together,
    // counted in its own user namespace, so the fork loop ends at 1023 children
    let s = Scratch::new();
    let bomb = "import os,sys\nn=0\ntry:\n  while n<5000:\n    if os.fork()==0:\n      import time; time.sleep(3); os._exit(0)\n    n+=1\nexcept BlockingIOError: pass\nprint(n, flush=True)\nos._exit(0)";
    let r = run_in(&s, &["--", "python3", "-c", bomb]);
    assert_eq!((r.status(), r.stdout().as_str()), ("OK", "1023\n"), "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["limits"]["procs"], 1024);
}

/// A hard limit below what the sandbox would get (a container's --ulimit) is named before
/// anything is built; asking for less runs.
#[test]
fn a_hard_rlimit_below_the_sandbox_s_is_named() {
    let s = Scratch::new();
    let ward = ward_bin().display().to_string();
    let run = |procs: &str| as_user("prlimit", &["--nproc=300:300", "--", &ward, "run", "--procs", procs, "--", "/bin/echo", "ran"]).current_dir(s.path()).output().unwrap();
    let out = run("1000");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("RLIMIT_NPROC would be 1001, above the hard limit 300") && err.contains("--ulimit nproc=1001:1001"), "{err}");
    assert!(pids_matching("/bin/echo ran").is_empty());
    let out = run("100");
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "ran\n"), "{}", String::from_utf8_lossy(&out.stderr));
}
