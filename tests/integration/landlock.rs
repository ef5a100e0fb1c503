//! The Landlock layer: what the verdict reports, and failing closed on older kernels.

use crate::common::*;

#[test]
fn landlock_is_enforced_and_reported() {
    let s = Scratch::new();
    let kernel = landlock_abi();
    if kernel < 1 {
        panic!("this host has no Landlock; ward's CI host must have it (ABI 7 on kernel 6.18)");
    }
    let r = sh(&s, "echo x > /tmp/f && cat /tmp/f && : > /dev/null && echo y > ./out.txt && cat out.txt");
    assert_eq!(r.stdout(), "x\ny\n", "{}", r.stderr());
    let l = &r.v()["enforced"]["landlock"];
    assert_eq!(l["enabled"], true);
    assert_eq!(l["abi"], kernel.min(7));
    assert_eq!(l["kernel_abi"], kernel);
    let rules = l["rules"].as_array().unwrap();
    assert!(rules.contains(&serde_json::json!({"path": "/", "rights": "read_exec"})));
    assert!(rules.contains(&serde_json::json!({"path": "/tmp", "rights": "read_write"})));
    assert!(rules.contains(&serde_json::json!({"path": s.path().to_str().unwrap(), "rights": "read_write"})));
}

#[test]
fn an_abi_the_kernel_lacks_fails_unless_optional() {
    // WARD_LANDLOCK_ABI_MAX makes this 6.18 kernel look like Debian 12's 6.1 (ABI 2)
    let s = Scratch::new();
    let r = run_with(&s, &["--require-landlock", "--", "touch", "ran"], |c| {
        c.env("WARD_LANDLOCK_ABI_MAX", "2");
    });
    assert_eq!(r.code(), 125);
    assert!(
        r.stderr().contains("the profile requires Landlock ABI 7, but this kernel has ABI 2: missing truncate (TRUNCATE) (ABI 3, Linux 6.2)"),
        "{}",
        r.stderr()
    );
    assert!(!s.join("ran").exists());
    // optional (the built-in profiles): runs with ABI 2 and says what was dropped
    let r = run_with(&s, &["--", "sh", "-c", "echo ok > /tmp/x && cat /tmp/x"], |c| {
        c.env("WARD_LANDLOCK_ABI_MAX", "2");
    });
    assert_eq!(r.stdout(), "ok\n", "{}", r.stderr());
    let l = &r.v()["enforced"]["landlock"];
    assert_eq!(l["abi"], 2);
    assert_eq!(l["requested_abi"], 7);
    assert!(l["status"].as_str().unwrap().starts_with("partially enforced"));
    assert!(l["dropped"].as_array().unwrap().contains(&serde_json::json!("scopes: abstract unix sockets and signals")));
    // and a profile can ask for exactly what the kernel has
    let r = run_with(&s, &["--require-landlock", "--landlock-abi", "2", "--", "true"], |c| {
        c.env("WARD_LANDLOCK_ABI_MAX", "2");
    });
    assert_eq!(r.status(), "OK", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["landlock"]["status"], "fully enforced");
}

#[test]
fn stdout_file_can_be_reopened_through_dev_stdout() {
    let s = Scratch::new();
    let out = s.join("o.txt");
    let r = run_in(&s, &["--no-workdir", "--stdout", out.to_str().unwrap(), "--", "sh", "-c", "echo via-dev-stdout > /dev/stdout"]);
    assert_eq!(r.status(), "OK", "{}", r.stderr());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "via-dev-stdout\n");
}
