//! The basics of `ward run`: output, exit codes, status classes, the verdict.

use crate::common::*;

#[test]
fn echo_hi() {
    let s = Scratch::new();
    let r = run_in(&s, &["--", "echo", "hi"]);
    assert_eq!(r.stdout(), "hi\n");
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(r.status(), "OK");
    let v = r.v();
    assert_eq!(v["schema"], "ward.verdict/1");
    assert_eq!(v["exit_code"], 0);
    assert!(v["wall_time_ms"].as_f64().unwrap() > 0.0);
    assert!(v["max_rss_kib"].as_u64().unwrap() > 0);
    let e = &v["enforced"];
    assert_eq!(e["namespaces"], serde_json::json!(["user", "mount", "pid", "ipc", "uts", "cgroup", "net"]));
    assert_eq!(e["capabilities"], "none");
    assert_eq!(e["no_new_privs"], true);
    assert_eq!(e["id_map"]["mode"], "single");
    assert_eq!(e["id_map"]["uid"], user().uid);
    assert_eq!(e["network"], serde_json::json!({"mode": "none", "interfaces": ["lo"], "host_loopback": false}));
}

#[test]
fn exit_code_42_is_re() {
    let s = Scratch::new();
    let r = sh(&s, "exit 42");
    assert_eq!(r.code(), 42);
    assert_eq!(r.status(), "RE");
    assert_eq!(r.v()["exit_code"], 42);
    assert_eq!(r.v()["message"], "Exited with error status 42");
}

#[test]
fn sigsegv_is_sg() {
    let s = Scratch::new();
    let r = sh(&s, "kill -SEGV $$");
    assert_eq!(r.code(), 128 + 11);
    assert_eq!(r.status(), "SG");
    assert_eq!(r.v()["signal"], 11);
    assert_eq!(r.v()["signal_name"], "SIGSEGV");
    assert_eq!(r.v()["exit_code"], serde_json::Value::Null);
}

#[test]
fn cpu_time_is_counted_for_the_whole_tree() {
    let s = Scratch::new();
    // two children burn 200 ms of CPU each; the shell itself does almost nothing
    let burn = burner(s.path());
    let r = sh(&s, &format!("{burn} 200 & {burn} 200 & wait"));
    assert_eq!(r.status(), "OK", "{}", r.stderr());
    assert_eq!(r.stdout(), "burned 200 ms\nburned 200 ms\n");
    let cpu = r.v()["cpu_time_ms"].as_f64().unwrap();
    // one child alone would be 200 ms
    assert!((400.0..1000.0).contains(&cpu), "cpu_time_ms {cpu} should be both children's 400 ms");
}

#[test]
fn verdict_fd_gets_the_verdict() {
    let s = Scratch::new();
    let out = as_user("/bin/sh", &["-c", &format!("cd {} && {} run --verdict-fd 3 -- true 3>v.json && cat v.json", s.path().display(), ward_bin().display())])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "OK");
}

#[test]
fn library_example_runs_unprivileged() {
    // the example sits next to the ward binary cargo built for this test run
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_ward")).with_file_name("examples").join("hello");
    assert!(bin.exists(), "build the example first: cargo build --examples ({} missing)", bin.display());
    let bin = copy_for_user(&bin, "hello");
    let s = Scratch::new();
    let mut c = as_user(&bin, &[] as &[&str]);
    c.current_dir(s.path());
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hello from the sandbox"), "{stdout}");
    assert!(stdout.contains("status OK"), "{stdout}");
}

#[test]
fn meta_file_in_isolates_format() {
    let s = Scratch::new();
    let m = s.join("meta.txt");
    let r = run_in(&s, &["--meta", m.to_str().unwrap(), "--", "sh", "-c", "exit 3"]);
    assert_eq!(r.code(), 3);
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.starts_with("time:") && text.contains("\ntime-wall:") && text.contains("\nmax-rss:"), "{text}");
    assert!(text.ends_with("exitcode:3\nmessage:Exited with error status 3\nstatus:RE\n"), "{text}");
    let r = run_in(&s, &["--meta", m.to_str().unwrap(), "--wall-time", "0.3", "--", "sleep", "5"]);
    assert_eq!(r.status(), "WLE");
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.ends_with("killed:1\nmessage:Time limit exceeded (wall clock)\nstatus:TO\n"), "{text}");
}
