//! What the program must not see or reach: host files, host processes, host IPC, the host's
//! hostname, the caller's environment and fds, privileges.

use crate::common::*;

#[test]
fn host_secrets_are_not_there() {
    let s = Scratch::new();
    let r = sh(&s, "cat /etc/shadow; ls /root; ls /home; ls /etc");
    let err = r.stderr();
    assert!(err.contains("cat: /etc/shadow: No such file or directory"), "{err}");
    assert!(err.contains("ls: cannot access '/root': No such file or directory"), "{err}");
    assert!(err.contains("ls: cannot access '/home': No such file or directory"), "{err}");
    let out = r.stdout();
    let etc: Vec<&str> = out.lines().map(str::trim).collect();
    for f in &etc {
        assert!(
            ["alternatives", "group", "hostname", "hosts", "ld.so.cache", "localtime", "nsswitch.conf", "passwd"].contains(f),
            "unexpected /etc entry {f}"
        );
    }
}

#[test]
fn passwd_has_only_synthesized_entries() {
    let s = Scratch::new();
    let r = sh(&s, "cat /etc/passwd; id -un");
    let out = r.stdout();
    assert!(!out.contains("ward-test:x:999:") || user().uid == 999);
    assert_eq!(out.lines().count(), 4, "{out}"); // root, the user, nobody, and id -un
    assert_eq!(out.lines().last().unwrap(), user().name);
}

#[test]
fn readonly_bind_gives_erofs() {
    let s = Scratch::new();
    let d = s.mkdir("data");
    let r = run_in(
        &s,
        &["--ro-bind", d.to_str().unwrap(), "/data", "--", "python3", "-c", "import os,errno\ntry:\n open('/data/x','w')\nexcept OSError as e: print(errno.errorcode[e.errno])\ntry:\n open('/usr/x','w')\nexcept OSError as e: print(errno.errorcode[e.errno])\ntry:\n os.mkdir('/newdir')\nexcept OSError as e: print(errno.errorcode[e.errno])"],
    );
    assert_eq!(r.stdout(), "EROFS\nEROFS\nEROFS\n", "{}", r.stderr());
}

#[test]
fn proc_shows_only_the_sandbox() {
    let s = Scratch::new();
    let r = sh(&s, "echo ppid=$PPID; echo self=$$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '");
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ppid=1");
    assert_eq!(lines[1], "self=2");
    // init (1), the shell (2), ls and grep/sort/tr: all small pids of this namespace
    let pids: Vec<i32> = lines[2].split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(&pids[..2], &[1, 2]);
    assert!(pids.iter().all(|p| *p < 20), "{pids:?}");
}

#[test]
fn host_processes_cannot_be_signalled() {
    let s = Scratch::new();
    // a process of the same user on the host
    let mut host = as_user("sleep", &["30"]).spawn().unwrap();
    let pid = host.id();
    let r = sh(&s, &format!("kill -0 {pid} 2>&1; kill -TERM {pid} 2>&1; echo done"));
    assert!(r.stdout().contains("No such process"), "{}", r.stdout());
    assert!(host.try_wait().unwrap().is_none(), "the host process was killed");
    host.kill().unwrap();
    host.wait().unwrap();
}

#[test]
fn hostname_is_private() {
    let s = Scratch::new();
    let host_name = nix::unistd::gethostname().unwrap();
    let r = run_in(
        &s,
        &["--hostname", "judge-box", "--", "python3", "-c", "import socket,errno\nprint(socket.gethostname())\nprint(open('/etc/hostname').read().strip())\ntry: socket.sethostname('other')\nexcept OSError as e: print(errno.errorcode[e.errno])\nprint(socket.gethostname())"],
    );
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "judge-box");
    assert_eq!(lines[1], "judge-box");
    assert_eq!(lines[2], "EPERM", "{out}");
    assert_eq!(lines[3], "judge-box");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
}

#[test]
fn host_sysv_ipc_is_invisible() {
    let s = Scratch::new();
    let out = as_user("ipcmk", &["-M", "4096"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let id: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    assert!(!id.is_empty(), "ipcmk: {text}");
    let outside = as_user("ipcs", &["-m"]).output().unwrap();
    assert!(String::from_utf8_lossy(&outside.stdout).contains(&id));
    let r = sh(&s, "ipcs -m; ipcrm -m ID 2>&1".replace("ID", &id).as_str());
    assert!(!r.stdout().lines().any(|l| l.split_whitespace().nth(1) == Some(id.as_str())), "{}", r.stdout());
    assert!(r.stdout().contains("invalid id") || r.stdout().contains("not found") || r.stdout().contains("Invalid argument"), "{}", r.stdout());
    let _ = as_user("ipcrm", &["-m", &id]).output();
}

#[test]
fn inherited_fds_are_closed() {
    let s = Scratch::new();
    let script = format!(
        "exec 5</etc/hostname 7>/dev/null; cd {} && {} run -- sh -c 'ls /proc/self/fd | sort -n | tr \"\\n\" \" \"'",
        s.path().display(),
        ward_bin().display()
    );
    let out = as_user("/bin/bash", &["-c", &script]).output().unwrap();
    // 0, 1, 2 and the directory ls is reading
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 1 2 3 ", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn caller_environment_is_absent_unless_passed() {
    let s = Scratch::new();
    let r = run_with(&s, &["--", "env"], |c| {
        c.env("WARD_SECRET", "hunter2");
    });
    let names: Vec<String> = r.stdout().lines().map(|l| l.split('=').next().unwrap().to_string()).collect();
    assert!(!names.contains(&"WARD_SECRET".to_string()), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["HOME", "LANG", "PATH"]);
    let r = run_with(&s, &["--env", "WARD_SECRET", "--setenv", "A", "b", "-E", "C=d", "--", "env"], |c| {
        c.env("WARD_SECRET", "hunter2");
    });
    let out = r.stdout();
    assert!(out.contains("WARD_SECRET=hunter2\n") && out.contains("A=b\n") && out.contains("C=d\n"), "{out}");
}

#[test]
fn no_capabilities_and_no_new_privs() {
    let s = Scratch::new();
    for extra in [&[][..], &["--map-ranges"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--", "grep", "-E", "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)", "/proc/self/status"]);
        let r = run_in(&s, &args);
        assert_eq!(
            r.stdout(),
            "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
            "{:?}: {}",
            extra,
            r.stderr()
        );
    }
}

#[test]
fn setuid_binary_gives_no_privilege() {
    let s = Scratch::new();
    // a setuid-root copy of id(1), owned by root when the tests run as root
    let id = s.join("suid-id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let r = run_in(&s, &["--ro-bind", id.to_str().unwrap(), "/suid-id", "--", "/suid-id"]);
    let out = r.stdout();
    assert!(out.starts_with(&format!("uid={}(", user().uid)), "{out}");
    assert!(!out.contains("euid="), "setuid took effect: {out}");
    // and su cannot be used to become root
    let r = sh(&s, "su -c id root </dev/null 2>&1; echo rc=$?");
    assert!(!r.stdout().contains("uid=0"), "{}", r.stdout());
}

#[test]
fn map_ranges_gives_a_working_range() {
    let s = Scratch::new();
    let w = s.mkdir("w");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run_in(
        &s,
        &["--map-ranges", "--uid", "1000", "--gid", "1000", "--workdir", w.to_str().unwrap(), "--", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch made"],
    );
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let lines: Vec<Vec<String>> = r.stdout().lines().map(|l| l.split_whitespace().map(String::from).collect()).collect();
    let (start, count) = subuid_range().expect("test user has a subuid range");
    assert_eq!(lines[0], ["0", &user().uid.to_string(), "1"]);
    assert_eq!(lines[1], ["1", &start.to_string(), &count.to_string()]);
    assert_eq!(lines[4], ["1000"]);
    assert_eq!(lines[5], ["1000"]);
    // the file is owned on the host by the subordinate id that is 1000 inside
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(w.join("made")).unwrap();
    assert_eq!(m.uid(), start + 999);
    assert_eq!(r.v()["enforced"]["id_map"]["mode"], "ranges");
    std::fs::remove_file(w.join("made")).unwrap();
}
