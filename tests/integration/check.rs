//! `ward check` on this host.

use crate::common::*;

#[test]
fn check_reports_this_host() {
    let s = Scratch::new();
    let out = ward_cmd(s.path(), &["check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("OK    user namespaces: an unprivileged process can create a user namespace"), "{text}");
    assert!(text.contains("OK    sandbox: ran /bin/true in a full sandbox"), "{text}");
    assert!(text.contains("ward run can work on this host"), "{text}");
    // this machine: hybrid cgroups, so no delegation, with the fix named
    assert!(text.contains("FAIL  cgroup v2 delegation: cgroup v2 is not mounted") || text.contains("OK    cgroup v2 delegation"), "{text}");
    let json = ward_cmd(s.path(), &["check", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    for n in ["user namespaces", "sandbox", "newuidmap/newgidmap", "subordinate ids", "landlock", "seccomp", "cgroup v2 delegation", "process limit", "container", "slirp4netns", "pasta", "/dev/net/tun"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let sub = v["items"].as_array().unwrap().iter().find(|i| i["name"] == "subordinate ids").unwrap();
    assert_eq!(sub["ok"], user().drop, "{sub}"); // the test user has ranges
    let container = v["items"].as_array().unwrap().iter().find(|i| i["name"] == "container").unwrap();
    // this machine may itself be a container (its /proc is not masked): either way OK
    assert_eq!(container["ok"], true, "{container}");
    assert!(container["detail"].as_str().unwrap().ends_with("not in a container") || container["detail"].as_str().unwrap().ends_with("/proc not masked"), "{container}");
    let procs = v["items"].as_array().unwrap().iter().find(|i| i["name"] == "process limit").unwrap();
    assert!(procs["detail"].as_str().unwrap().contains("RLIMIT_NPROC in the sandbox's own user namespace"), "{procs}");
    // as root, check says what root's programs run as
    if nix::unistd::Uid::current().is_root() {
        let out = root_cmd(s.path(), &["check"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("OK    root caller: you are root: programs run as host nobody/nogroup (65534)"), "{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn check_names_a_closed_tun_device() {
    // the report's fix for /dev/net/tun is the chmod tests/setup.sh applies
    let s = Scratch::new();
    let json = ward_cmd(s.path(), &["check", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let tun = v["items"].as_array().unwrap().iter().find(|i| i["name"] == "/dev/net/tun").unwrap();
    if tun["ok"] == false {
        assert!(tun["fix"].as_str().unwrap().contains("chmod 0666 /dev/net/tun"), "{tun}");
    } else {
        assert_eq!(tun["detail"], "usable by you");
    }
}

#[test]
fn a_masked_proc_is_named_with_the_engine_s_fix() {
    // Container runtimes mount over /proc paths; the kernel then refuses a fresh procfs in a
    // nested user namespace. Made here with a private mount namespace (needs root), where
    // /proc/interrupts is masked as runc masks it, then ward runs as the test user.
    if !root_or_skip("a_masked_proc_is_named_with_the_engine_s_fix (masking /proc)") {
        return;
    }
    let s = Scratch::new();
    let u = user();
    let script = format!(
        "mount --bind /dev/null /proc/interrupts && exec setpriv --reuid={} --regid={} --clear-groups -- {} run --no-workdir -- true",
        u.uid,
        u.gid,
        ward_bin().display()
    );
    let out = std::process::Command::new("unshare").args(["-m", "sh", "-c", &script]).current_dir(s.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("at step 'mount': mount(proc -> /proc) => EPERM") && err.contains("/proc/interrupts"), "{err}");
    if std::path::Path::new("/.dockerenv").exists() {
        assert!(err.contains("--security-opt systempaths=unconfined"), "{err}");
    }
}
