//! The seccomp layer: each denial with its exact errno, what kills, what is reported.

use crate::common::*;
use libseccomp::ScmpSyscall;

fn nr(name: &str) -> i32 {
    i32::from(ScmpSyscall::from_name(name).unwrap())
}

/// Run the raw calls `(label, syscall, args)` in one sandbox; returns label -> result.
fn calls(s: &Scratch, extra: &[&str], list: &[(&str, &str, &[u64])]) -> (Run, std::collections::BTreeMap<String, String>) {
    let script = s.write("syscalls.py", include_str!("../fixtures/syscalls.py"));
    let input: String = list
        .iter()
        .map(|(label, name, args)| format!("{label} {} {}\n", nr(name), args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")))
        .collect();
    let infile = s.write("calls.txt", &input);
    let mut args: Vec<&str> = vec!["--stdin", infile.to_str().unwrap()];
    args.extend(extra);
    args.extend(["--", "python3", script.to_str().unwrap()]);
    let r = run_in(s, &args);
    let map = r.stdout().lines().filter_map(|l| l.split_once(' ')).map(|(a, b)| (a.to_string(), b.to_string())).collect();
    (r, map)
}

const NEWUSER: u64 = 0x1000_0000;
const NEWNET: u64 = 0x4000_0000;
const SIGCHLD: u64 = 17;

#[test]
fn every_denial_has_its_errno() {
    let s = Scratch::new();
    let list: &[(&str, &str, &[u64])] = &[
        ("keyctl", "keyctl", &[0, u64::MAX - 2, 0]),
        ("add_key", "add_key", &[0, 0, 0, 0, 0]),
        ("request_key", "request_key", &[0, 0, 0, 0]),
        ("bpf", "bpf", &[0, 0, 0]),
        ("perf_event_open", "perf_event_open", &[0, 0, 0, 0, 0]),
        ("userfaultfd", "userfaultfd", &[0]),
        ("io_uring_setup", "io_uring_setup", &[0, 0]),
        ("io_uring_enter", "io_uring_enter", &[0, 0, 0, 0, 0, 0]),
        ("io_uring_register", "io_uring_register", &[0, 0, 0, 0]),
        ("kexec_load", "kexec_load", &[0, 0, 0, 0]),
        ("kexec_file_load", "kexec_file_load", &[0, 0, 0, 0, 0]),
        ("init_module", "init_module", &[0, 0, 0]),
        ("finit_module", "finit_module", &[u64::MAX, 0, 0]),
        ("delete_module", "delete_module", &[0, 0]),
        ("open_by_handle_at", "open_by_handle_at", &[u64::MAX, 0, 0]),
        ("name_to_handle_at", "name_to_handle_at", &[u64::MAX, 0, 0, 0, 0]),
        ("mount", "mount", &[0, 0, 0, 0, 0]),
        ("umount2", "umount2", &[0, 0]),
        ("pivot_root", "pivot_root", &[0, 0]),
        ("chroot", "chroot", &[0]),
        ("move_mount", "move_mount", &[0, 0, 0, 0, 0]),
        ("fsopen", "fsopen", &[0, 0]),
        ("fsmount", "fsmount", &[0, 0, 0]),
        ("open_tree", "open_tree", &[u64::MAX, 0, 0]),
        ("mount_setattr", "mount_setattr", &[u64::MAX, 0, 0, 0, 0]),
        ("unshare", "unshare", &[0]),
        ("setns", "setns", &[u64::MAX, 0]),
        ("clone_newuser", "clone", &[NEWUSER | SIGCHLD, 0, 0, 0, 0]),
        ("clone_newnet", "clone", &[NEWNET | SIGCHLD, 0, 0, 0, 0]),
        ("clone3", "clone3", &[0, 0]),
        ("ptrace", "ptrace", &[0, 0, 0, 0]),
        ("process_vm_readv", "process_vm_readv", &[1, 0, 0, 0, 0, 0]),
        ("process_vm_writev", "process_vm_writev", &[1, 0, 0, 0, 0, 0]),
        ("personality_norandom", "personality", &[0x0040000]),
        ("personality_query", "personality", &[0xffff_ffff]),
        ("acct", "acct", &[0]),
        ("swapon", "swapon", &[0, 0]),
        ("swapoff", "swapoff", &[0]),
        ("reboot", "reboot", &[0, 0, 0, 0]),
        ("settimeofday", "settimeofday", &[0, 0]),
        ("clock_settime", "clock_settime", &[0, 0]),
        ("adjtimex", "adjtimex", &[0]),
        ("syslog", "syslog", &[0, 0, 0]),
        ("quotactl", "quotactl", &[0, 0, 0, 0]),
        ("vhangup", "vhangup", &[]),
        ("uselib", "uselib", &[0]),
        ("socket_netlink", "socket", &[16, 3, 0]),
        ("socket_packet", "socket", &[17, 3, 0]),
        ("socket_vsock", "socket", &[40, 1, 0]),
        ("socket_inet", "socket", &[2, 1, 0]),
        ("socket_inet6", "socket", &[10, 1, 0]),
        ("socket_netlink_highbits", "socket", &[0x1_0000_0010, 3, 0]),
        ("socket_unix", "socket", &[1, 1, 0]),
        ("socketpair_netlink", "socketpair", &[16, 3, 0, 0]),
        ("ioctl_tiocsti", "ioctl", &[0, 0x5412, 0]),
        ("ioctl_tiocsti_highbits", "ioctl", &[0, 0xdead_0000_5412, 0]),
        ("ioctl_tioclinux", "ioctl", &[0, 0x541C, 0]),
        ("ioctl_tcgets", "ioctl", &[0, 0x5401, 0]),
        // prctl's option is an int: PR_SET_SECCOMP with high bits set is still refused
        ("prctl_set_seccomp", "prctl", &[22, 2, 0, 0, 0]),
        ("prctl_set_seccomp_highbits", "prctl", &[0x1_0000_0016, 2, 0, 0, 0]),
    ];
    let (r, got) = calls(&s, &[], list);
    let expect = |label: &str| -> &str {
        match label {
            "clone3" => "ENOSYS",
            "personality_query" | "socket_unix" => "ok",
            "ioctl_tcgets" => "ENOTTY", // allowed: the kernel answers (stdin is a file)
            l if l.starts_with("socket") => "EAFNOSUPPORT",
            _ => "EPERM",
        }
    };
    for (label, _, _) in list {
        assert_eq!(got.get(*label).map(String::as_str), Some(expect(label)), "{label}: {}", r.stderr());
    }
    assert_eq!(r.status(), "OK");
    // every denial is reported, with its first arguments; clone3 (a fallback) is not
    let blocked = r.v()["blocked"].as_array().unwrap();
    let names: Vec<&str> = blocked.iter().map(|b| b["syscall"].as_str().unwrap()).collect();
    for n in ["keyctl", "bpf", "mount", "unshare", "clone", "socket", "ioctl", "personality", "ptrace"] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    assert!(!names.contains(&"clone3"));
    let sock = blocked.iter().find(|b| b["syscall"] == "socket").unwrap();
    assert_eq!(sock["count"], 6); // netlink, packet, vsock, inet, inet6, netlink with high bits
    assert_eq!(sock["args"][0], 16);
    assert_eq!(sock["errno"], "EAFNOSUPPORT");
    let ioctl = blocked.iter().find(|b| b["syscall"] == "ioctl").unwrap();
    assert_eq!(ioctl["count"], 3);
    let e = &r.v()["enforced"]["seccomp"];
    assert_eq!(e["enabled"], true);
    assert_eq!(e["other_architectures"], "kill");
    // the filter is written as ranges of numbers, not a test per allowed call
    assert!(e["instructions"].as_u64().is_some_and(|n| n < 200), "{e}");
}

#[test]
fn fork_works_while_clone3_is_enosys() {
    let s = Scratch::new();
    let r = run_in(&s, &["--", "python3", "-c", "import os\npid = os.fork()\nif pid == 0: os._exit(7)\nprint(os.waitpid(pid, 0)[1] >> 8)\nimport threading\nt = threading.Thread(target=lambda: print('thread'))\nt.start(); t.join()"]);
    assert_eq!(r.stdout(), "7\nthread\n", "{}", r.stderr());
    assert_eq!(r.v()["blocked"], serde_json::json!([]));
}

#[test]
fn foreign_architectures_are_killed() {
    let s = Scratch::new();
    let script = s.write(
        "arch.py",
        "import ctypes, mmap, sys\nlibc = ctypes.CDLL(None)\nlibc.syscall.restype = ctypes.c_long\nif sys.argv[1] == 'x32':\n    print(libc.syscall(ctypes.c_long(0x40000000 | 39)))\nelse:\n    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n    m.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))\n    f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))\n    print(f())\n",
    );
    for which in ["x32", "i386"] {
        let r = run_in(&s, &["--", "python3", script.to_str().unwrap(), which]);
        assert_eq!(r.code(), 128 + 31, "{which}: {} {}", r.stdout(), r.stderr());
        assert_eq!(r.status(), "SG");
        assert_eq!(r.v()["signal_name"], "SIGSYS");
        assert_eq!(r.stdout(), "", "{which} returned instead of being killed");
    }
}

#[test]
fn kill_on_deny_gives_sys() {
    let s = Scratch::new();
    let (r, got) = calls(&s, &["--on-deny", "kill"], &[("first", "getpid", &[]), ("netlink", "socket", &[16, 3, 0]), ("never", "getpid", &[])]);
    assert_eq!(got.get("first").map(String::as_str), Some("ok"));
    assert!(!got.contains_key("netlink") && !got.contains_key("never"), "{got:?}");
    assert_eq!(r.code(), 128 + 31);
    assert_eq!(r.status(), "SYS");
    assert_eq!(r.v()["limit_hit"], "syscall");
    assert_eq!(r.v()["blocked"][0]["syscall"], "socket");
    assert_eq!(r.v()["message"], "Denied system call socket (the profile kills on a denied call)");
}

#[test]
fn log_denied_prints_to_stderr() {
    let s = Scratch::new();
    let (r, _) = calls(&s, &["--log-denied"], &[("bpf", "bpf", &[5, 0, 0])]);
    assert!(r.stderr().contains("ward: denied bpf(0x5, 0x0, 0x0) => EPERM"), "{}", r.stderr());
}

#[test]
fn tiocsti_on_a_real_pty_is_refused() {
    let s = Scratch::new();
    let script = "import os, fcntl, termios, errno\nm, sl = os.openpty()\ntry:\n    fcntl.ioctl(sl, termios.TIOCSTI, b'x')\n    print('pushed')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\nprint(os.isatty(sl))";
    for extra in [&["--dev-pts"][..], &["--dev-pts", "--keep-session"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--", "python3", "-c", script]);
        let r = run_in(&s, &args);
        assert_eq!(r.stdout(), "EPERM\nTrue\n", "{extra:?}: {}", r.stderr());
        // the filter refused it (the supervisor saw it), not merely the kernel
        let b = r.v()["blocked"].as_array().unwrap();
        assert!(b.iter().any(|x| x["syscall"] == "ioctl" && x["args"][1] == 0x5412), "{b:?}");
    }
}

#[test]
fn the_session_keyring_is_fresh() {
    // the caller has a key in its session keyring; the sandbox cannot see it (and with
    // seccomp, cannot even ask)
    let s = Scratch::new();
    let outer = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\nassert libc.syscall(250, 1, None) >= 0\nassert libc.syscall(248, b'user', b'ward-secret', b'hunter2', 7, ctypes.c_long(-3)) >= 0\nos.execv(sys.argv[1], sys.argv[1:])";
    let inner = "import ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\nr = libc.syscall(249, b'user', b'ward-secret', None, 0)\nprint('found' if r >= 0 else errno.errorcode[ctypes.get_errno()])";
    for (extra, want) in [("--no-seccomp", "ENOKEY"), ("--log-denied", "EPERM")] {
        let mut c = as_user("/usr/bin/python3", &["-c", outer, ward_bin().to_str().unwrap(), "run", extra, "--", "python3", "-c", inner]);
        c.current_dir(s.path());
        let out = c.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{want}\n"), "{extra}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn the_filter_cache_cannot_be_read_or_poisoned_from_inside() {
    // The cache is the caller's user keyring: a sandbox has its own user namespace, so its
    // @u is another keyring, and the caller's keys are possessor-only, so not even their
    // serial opens them. The attack of the review: a writable bind of the whole home and no
    // seccomp, then plant a one-instruction ALLOW filter where the cache is.
    let _keyring = keyring_lock();
    let s = Scratch::new();
    let home = s.mkdir("home");
    let set_home = |c: &mut std::process::Command| {
        c.env("HOME", &home);
    };
    let first = run_with(&s, &["--", "true"], set_home);
    assert_eq!(first.status(), "OK", "{}", first.stderr());
    let instructions = first.v()["enforced"]["seccomp"]["instructions"].as_u64().unwrap();
    assert!(instructions > 50, "{instructions}");
    c_helper(&home, "keys");
    let keys = home.join("keys");
    let out = as_user(&keys, &["list"]).output().unwrap();
    let serials: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert!(!serials.is_empty() && serials[0].parse::<i32>().is_ok(), "the caller's keyring holds the filter: {serials:?}");
    let h = home.to_str().unwrap();
    let script = format!(
        "{k} list; {k} read {}; mkdir -p {h}/.cache/ward && printf 'WARDBPF1' > {h}/.cache/ward/seccomp-0000000000000000.bpf && echo planted",
        serials[0],
        k = keys.display()
    );
    let r = run_with(&s, &["--no-seccomp", "--bind", h, h, "--", "sh", "-c", &script], set_home);
    assert_eq!(r.stdout(), "errno EACCES\nplanted\n", "inside: no ward key in @u, the caller's key unreadable by serial; {}", r.stderr());
    let again = run_with(&s, &["--", "true"], set_home);
    assert_eq!(again.status(), "OK", "{}", again.stderr());
    assert_eq!(again.v()["enforced"]["seccomp"]["from_cache"], true);
    assert_eq!(again.v()["enforced"]["seccomp"]["instructions"].as_u64(), Some(instructions));
}

#[test]
fn a_full_keyring_makes_room_for_the_filter() {
    // The user keyring's quota (20000 bytes by default) holds a few filters: once it is full,
    // ward invalidates its other entries for the filter it needs (else every run would build
    // the filter again, unseen). A filter no other test asks for (vmsplice allowed too), so
    // nothing else running stores it meanwhile.
    let _keyring = keyring_lock();
    let own = ["--seccomp-allow", "@basic", "--seccomp-allow", "vmsplice", "--", "true"];
    let s = Scratch::new();
    let home = s.mkdir("home");
    c_helper(&home, "keys");
    let keys = home.join("keys");
    // nothing of ward's cached (so the run below builds its filter and must store it), and
    // the quota freed of it: the kernel frees an invalidated key's quota soon, not at once
    as_user(&keys, &["clear"]).output().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let fill = as_user(&keys, &["fill"]).output().unwrap();
    let filled = String::from_utf8_lossy(&fill.stdout).to_string();
    assert!(filled.starts_with("full "), "{filled}");
    let junk = || String::from_utf8_lossy(&as_user(&keys, &["junk"]).output().unwrap().stdout).trim().to_string();
    let r = run_in(&s, &own);
    assert_eq!(r.status(), "OK", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["seccomp"]["from_cache"], false);
    assert_eq!(junk(), "junk 0", "ward's other entries were not invalidated");
    // and once the kernel has freed their quota, the filter is cached and read back
    assert!(
        eventually(10_000, || run_in(&s, &own).v()["enforced"]["seccomp"]["from_cache"] == true),
        "the filter never made it into the keyring"
    );
}

#[test]
fn a_notification_flood_does_not_starve_the_limits() {
    // 16 threads calling an unknown number in a loop keep the launcher's notification fd
    // busy: the limits must still be checked when due, and CPU is judged before wall time.
    let s = Scratch::new();
    let flood = c_helper(s.path(), "flood");
    let t = std::time::Instant::now();
    let r = run_in(&s, &["--time", "1", "--wall-time", "2", "--", &flood]);
    let took = t.elapsed().as_secs_f64();
    assert!(matches!(r.status(), "TLE" | "WLE"), "{} {}", r.status(), r.stderr());
    assert!(took < 4.0, "the run took {took:.1} s against --wall-time 2");
    assert!(r.v()["cpu_time_ms"].as_f64().unwrap() >= 1000.0 || r.status() == "WLE", "{}", r.v());
    // the unknown number is a denial like any other: reported, and killed for under kill
    let blocked = r.v()["blocked"].as_array().unwrap();
    assert!(blocked.iter().any(|b| b["syscall"] == "syscall_1000" && b["errno"] == "ENOSYS"), "{blocked:?}");
    let r = run_in(&s, &["--on-deny", "kill", "--wall-time", "5", "--", &flood]);
    assert_eq!(r.status(), "SYS", "{}", r.stderr());
    assert_eq!(r.v()["blocked"][0]["syscall"], "syscall_1000");
}

#[test]
fn a_program_cannot_stack_its_own_filter_to_hide_denials() {
    // An ERRNO filter of the program's own would outrank ward's notifications: seccomp(2)
    // and prctl(PR_SET_SECCOMP) are denied (and reported) unless allowed by name.
    let s = Scratch::new();
    let list: &[(&str, &str, &[u64])] = &[("seccomp", "seccomp", &[0, 0, 0]), ("set_seccomp", "prctl", &[22, 1, 0]), ("set_name", "prctl", &[15, 0, 0])];
    let (r, got) = calls(&s, &[], list);
    assert_eq!(got.get("seccomp").map(String::as_str), Some("EPERM"), "{got:?} {}", r.stderr());
    assert_eq!(got.get("set_seccomp").map(String::as_str), Some("EPERM"), "{got:?}");
    assert_ne!(got.get("set_name").map(String::as_str), Some("EPERM"), "{got:?}");
    let blocked: Vec<&str> = r.v()["blocked"].as_array().unwrap().iter().filter_map(|b| b["syscall"].as_str()).collect();
    assert!(blocked.contains(&"seccomp") && blocked.contains(&"prctl"), "{blocked:?}");
    // allowed by name, both work again (strict mode here: the helper's next call would die,
    // so only check that the call is no longer refused by ward)
    let (r, got) = calls(&s, &["--seccomp-allow", "seccomp"], &[("seccomp", "seccomp", &[99, 0, 0])]);
    assert_eq!(got.get("seccomp").map(String::as_str), Some("EINVAL"), "{got:?} {}", r.stderr());
}
