//! Process hygiene: stdio files, rlimits, session, umask.

use crate::common::*;

#[test]
fn stdio_files_are_opened_by_the_launcher() {
    let s = Scratch::new();
    let input = s.write("in.txt", "3 4\n");
    let out = s.join("out.txt");
    let err = s.join("err.txt");
    let r = run_in(
        &s,
        &["--no-workdir", "--stdin", input.to_str().unwrap(), "--stdout", out.to_str().unwrap(), "--stderr", err.to_str().unwrap(), "--", "sh", "-c", "read a b; echo $((a+b)); echo oops >&2"],
    );
    assert_eq!(r.status(), "OK");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "7\n");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "oops\n");
    assert!(r.stdout().is_empty());
    // a file the caller cannot read is refused before anything runs
    let r = run_in(&s, &["--stdin", "/etc/shadow", "--", "true"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("--stdin /etc/shadow: Permission denied"), "{}", r.stderr());
    assert_eq!(r.status(), "XX");
}

#[test]
fn rlimits_apply() {
    let s = Scratch::new();
    let r = run_in(
        &s,
        &["--rlimit-nofile", "64", "--rlimit-fsize", "1M", "--rlimit-as", "unlimited", "--", "sh", "-c", "ulimit -n; ulimit -f; ulimit -c; ulimit -v"],
    );
    // dash's ulimit -f counts 512-byte blocks
    assert_eq!(r.stdout(), "64\n2048\n0\nunlimited\n", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["rlimits"]["nofile"], 64);
    let r = run_in(&s, &["--rlimit-fsize", "4K", "--", "sh", "-c", "exec head -c 10000 /dev/zero > /tmp/f"]);
    assert_eq!(r.status(), "SG");
    assert_eq!(r.v()["signal_name"], "SIGXFSZ");
}

#[test]
fn new_session_and_umask() {
    let s = Scratch::new();
    let r = sh(&s, "ps -o sid= -p $$; umask");
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["2", "0022"]);
    let r = run_in(&s, &["--keep-session", "--", "sh", "-c", "ps -o sid= -p $$"]);
    assert_ne!(r.stdout().trim(), "2");
}
