//! Nothing outlives a run: daemons, a killed launcher; signals reach the program.

use crate::common::*;
use std::time::Duration;

fn mountinfo_lines() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count()
}

#[test]
fn double_forked_daemon_is_gone_after_the_run() {
    let s = Scratch::new();
    let marker = "987651";
    let r = sh(&s, &format!("(setsid sleep {marker} >/dev/null 2>&1 &) ; sleep {marker}.5 >/dev/null 2>&1 & echo started"));
    assert_eq!(r.stdout(), "started\n");
    assert_eq!(r.status(), "OK");
    assert!(eventually(2000, || pids_matching(&format!("sleep {marker}")).is_empty()), "daemon survived: {:?}", pids_matching(marker));
}

#[test]
fn sigkill_of_the_launcher_leaves_nothing() {
    let s = Scratch::new();
    let marker = "987652";
    let before_mounts = mountinfo_lines();
    let mut child = KillOnDrop(ward_cmd(s.path(), &["run", "--", "sh", "-c", &format!("(setsid sleep {marker} &); sleep {marker}.5")]).spawn().unwrap());
    assert!(eventually(5000, || pids_matching(&format!("sleep {marker}")).len() == 2), "sandbox did not start");
    // the launcher is the setpriv'd process itself (setpriv execs ward)
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.0.wait().unwrap();
    assert!(eventually(2000, || pids_matching(&format!("sleep {marker}")).is_empty()), "left behind: {:?}", pids_matching(marker));
    assert_eq!(mountinfo_lines(), before_mounts, "a mount appeared in the host's namespace");
    let leftovers: Vec<_> = std::fs::read_dir(s.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(leftovers.is_empty(), "files left in the work dir: {leftovers:?}");
}

#[test]
fn sigterm_to_the_launcher_reaches_the_program() {
    let s = Scratch::new();
    let marker = "987653";
    let vpath = s.join("v.json");
    let mut child = KillOnDrop(ward_cmd(s.path(), &["run", "--verdict", vpath.to_str().unwrap(), "--", "sleep", marker]).spawn().unwrap());
    assert!(eventually(5000, || pids_matching(&format!("sleep {marker}")).len() == 1), "sandbox did not start");
    std::thread::sleep(Duration::from_millis(50));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.0.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 15));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&vpath).unwrap()).unwrap();
    assert_eq!(v["status"], "SG");
    assert_eq!(v["signal_name"], "SIGTERM");
    assert!(pids_matching(&format!("sleep {marker}")).is_empty());
}

#[test]
fn the_program_cannot_kill_init_or_escape_it() {
    let s = Scratch::new();
    // signals to init do nothing (not even forwarded back), and kill -9 -1 kills everything
    // the program may signal but init, so the run still ends with a report
    let r = sh(&s, "kill -KILL 1; kill -TERM 1; kill -HUP 1; sleep 0.1; echo alive; sleep 100 & kill -9 -1; wait; echo done");
    assert_eq!(r.stdout(), "alive\ndone\n");
    assert_eq!(r.status(), "OK");
}
