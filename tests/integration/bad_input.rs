//! Every user mistake: one line naming the thing and what to do, the documented exit code,
//! nothing left behind.

use crate::common::*;

fn fails(args: &[&str], code: i32, msg: &str) {
    let s = Scratch::new();
    let r = run_in(&s, args);
    let shown: Vec<&str> = args.iter().map(|a| if a.len() > 80 { &a[..80] } else { a }).collect();
    assert_eq!(r.code(), code, "args {shown:?}: {}", r.stderr());
    assert!(r.stderr().contains(msg), "args {shown:?}: expected {msg:?} in {:?}", r.stderr());
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
    if code == 125 || code == 126 || code == 127 {
        assert_eq!(r.status(), "XX");
        assert_eq!(r.v()["ward_exit_code"], code);
    }
}

#[test]
fn missing_bind_source() {
    fails(&["--ro-bind", "/does/not/exist", "/x", "--", "true"], 125, "ward: --ro-bind /does/not/exist: the source cannot be used: No such file or directory");
}

#[test]
fn relative_destination() {
    fails(&["--bind", "/tmp", "data", "--", "true"], 125, "--bind data: the destination must be an absolute path; write it as /data");
}

#[test]
fn dotdot_destination() {
    fails(&["--tmpfs", "/a/../etc", "--", "true"], 125, "--tmpfs /a/../etc: the destination must not contain '..'");
}

#[test]
fn program_not_in_the_sandbox() {
    fails(&["--", "/opt/nothing/here"], 127, "execve(/opt/nothing/here) => ENOENT");
    fails(&["--", "no-such-program-xyz"], 127, "the program is not inside the sandbox");
}

#[test]
fn program_not_executable() {
    fails(&["--", "/etc/passwd"], 126, "execve(/etc/passwd) => EACCES");
}

#[test]
fn unknown_option_is_a_usage_error() {
    fails(&["--frobnicate", "--", "true"], 2, "unexpected argument '--frobnicate'");
}

#[test]
fn bad_size() {
    fails(&["--tmp-size", "lots", "--", "true"], 125, "--tmp-size \"lots\": not a size");
}

#[test]
fn huge_arguments() {
    // the kernel itself refuses one argument over 128 KiB to ward; below that, ward names
    // what it cannot use
    let big = "x".repeat(100_000);
    fails(&["--hostname", &big, "--", "true"], 125, "not a valid host name; use 1 to 64 characters");
    let long_path = format!("/{}", "d/".repeat(30_000));
    fails(&["--ro-bind", &long_path, "/x", "--", "true"], 125, "the source cannot be used: ");
    fails(&["--tmpfs", &long_path, "--", "true"], 125, "the destination is longer than 3000 bytes");
    // many arguments together, past what exec can carry
    let many: Vec<String> = (0..40).map(|_| "y".repeat(100_000)).collect();
    let mut args = vec!["--", "echo"];
    args.extend(many.iter().map(String::as_str));
    let s = Scratch::new();
    match ward_cmd(s.path(), &args).output() {
        Err(e) => assert_eq!(e.raw_os_error(), Some(nix::libc::E2BIG)), // the kernel refused ward itself
        Ok(out) => assert_eq!(out.status.code(), Some(125)),
    }
}

#[test]
fn non_utf8_option_value_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let bad = std::ffi::OsStr::from_bytes(b"/\xff\xfe");
    let out = ward_cmd(s.path(), &[std::ffi::OsStr::new("run"), std::ffi::OsStr::new("--hostname"), bad, std::ffi::OsStr::new("--"), std::ffi::OsStr::new("true")]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid UTF-8"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn non_utf8_program_argument_is_passed_through() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let out = ward_cmd(s.path(), &[std::ffi::OsStr::new("run"), std::ffi::OsStr::new("--"), std::ffi::OsStr::new("printf"), std::ffi::OsStr::new("%s"), bad]).output().unwrap();
    assert_eq!(out.stdout, b"\xff\xfe");
}

#[test]
fn no_program() {
    let s = Scratch::new();
    let out = ward_cmd(s.path(), &["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn user_namespaces_disabled_by_the_host() {
    // user.max_user_namespaces = 0 inside a user namespace of our own: ward must say why
    // it cannot run and what fixes it
    let s = Scratch::new();
    let script = format!("echo 0 > /proc/sys/user/max_user_namespaces && cd {} && exec {} run -- true", s.path().display(), ward_bin().display());
    let out = as_user("unshare", &["-Ur", "sh", "-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("cannot create the sandbox's namespaces"), "{err}");
    assert!(err.contains("user.max_user_namespaces = 0: as root: sysctl -w user.max_user_namespaces=15000"), "{err}");
}

#[test]
fn verdict_fd_not_open() {
    let s = Scratch::new();
    let out = ward_cmd(s.path(), &["run", "--verdict-fd", "9", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--verdict-fd 9: the descriptor is not open"));
}

#[test]
fn map_ranges_without_ranges() {
    // nobody has no subordinate ids
    if !user().drop {
        eprintln!("skipped: needs root to run as a user without /etc/subuid ranges");
        return;
    }
    let s = Scratch::new();
    let mut c = std::process::Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(ward_bin()).args(["run", "--map-ranges", "--", "true"]);
    c.current_dir(s.path()).env_clear().env("PATH", "/usr/bin:/bin");
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125));
    assert!(err.contains("has no range in /etc/subuid") && err.contains("usermod --add-subuids"), "{err}");
}
