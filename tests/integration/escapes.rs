//! The escape classes of the security review (issue 12), each attacked the way it was found:
//! a root caller's program, names a previous run planted where the launcher opens or writes
//! files for the caller, sockets in an automatically bound directory, a bind source swapped
//! for a link while the sandbox is built, writing back through the stdin file. All as the
//! unprivileged test user, except what is about a root caller.

use crate::common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// `ward ARGS` as root itself, in `cwd`.
fn ward_as_root(cwd: &Path, args: &[&str]) -> std::process::Output {
    root_cmd(cwd, args).output().unwrap()
}

#[test]
fn a_root_caller_s_program_is_never_host_root() {
    if !root_or_skip("a_root_caller_s_program_is_never_host_root") {
        return;
    }
    let s = Scratch::new();
    let shared = s.mkdir("shared");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let v = s.join("v.json");
    let script = "cat /proc/self/uid_map /proc/self/gid_map; grep '^Groups' /proc/self/status; \
                  for f in /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches /proc/sysrq-trigger; do (echo 1 > $f) 2>/dev/null && echo WROTE $f; done; \
                  touch /shared/made; echo done";
    let sh_ = shared.to_str().unwrap();
    let out = ward_as_root(s.path(), &["run", "--verdict", v.to_str().unwrap(), "--no-workdir", "--bind", sh_, "/shared", "--", "sh", "-c", script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // inside 0 is host nobody; no supplementary group (root's 0 would pass group checks)
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0", "65534", "1"], "{stdout}");
    assert_eq!(lines[1], ["0", "65534", "1"], "{stdout}");
    assert_eq!(lines[2], ["Groups:"], "{stdout}");
    assert!(!stdout.contains("WROTE"), "{stdout}");
    assert!(stdout.ends_with("done\n"), "{stdout}");
    // what it made on the host belongs to nobody, not root
    let m = std::fs::metadata(shared.join("made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    let verdict: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&v).unwrap()).unwrap();
    let ids = &verdict["enforced"]["id_map"];
    assert_eq!((ids["caller_is_root"].as_bool(), ids["outside_uid"].as_u64(), ids["uid_map"].as_str()), (Some(true), Some(65534), Some("0 65534 1")));
}

#[test]
fn isolate_as_root_runs_each_box_as_its_own_host_id() {
    if !root_or_skip("isolate_as_root_runs_each_box_as_its_own_host_id") {
        return;
    }
    let s = Scratch::new();
    let root = s.mkdir("boxes");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&root, Some(0), Some(0)).unwrap();
    let iso = |args: &[&str]| {
        root_cmd(s.path(), &[&["isolate"][..], args].concat()).env("WARD_ISOLATE_ROOT", &root).output().unwrap()
    };
    let init = iso(&["-b", "7", "--init"]);
    assert_eq!(init.status.code(), Some(0), "{}", String::from_utf8_lossy(&init.stderr));
    let boxdir = Path::new(String::from_utf8_lossy(&init.stdout).trim()).join("box");
    assert_eq!(std::fs::metadata(&boxdir).unwrap().uid(), 60007);
    let meta = s.join("meta");
    let run = iso(&["-b", "7", "-p", "-M", meta.to_str().unwrap(), "-o", "out.txt", "--run", "--", "/bin/sh", "-c", "id -u; id -G; (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo WROTE; true"]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read_to_string(boxdir.join("out.txt")).unwrap(), "60007\n60007\n");
    assert_eq!(std::fs::metadata(boxdir.join("out.txt")).unwrap().uid(), 60007);
    let cleanup = iso(&["-b", "7", "--cleanup"]);
    assert_eq!(cleanup.status.code(), Some(0));
    assert!(!boxdir.exists());
}

#[test]
fn names_planted_in_the_work_dir_are_never_followed() {
    // Run 1 (the program) plants links and a FIFO where run 2's launcher will open stdio and
    // write the verdict and the meta file for the caller.
    let s = Scratch::new();
    let work = s.mkdir("work");
    let victim = s.write("victim.txt", "precious\n");
    let secret = s.write("secret.txt", "the caller's secret\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let plant = format!(
        "ln -s {v} out.txt; ln -s {sec} in.txt; ln -s {v} v.json; ln -s {v} m; mkfifo fifo; mkdir d; ln -s {dir} d/up; echo planted",
        v = victim.display(),
        sec = secret.display(),
        dir = s.path().display()
    );
    let w = |args: &[&str]| {
        let mut c = ward_cmd(&work, args);
        c.stdin(std::process::Stdio::null());
        let child = KillOnDrop(c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap());
        child.wait_with_output_owned()
    };
    let out = w(&["run", "--bind", work.to_str().unwrap(), work.to_str().unwrap(), "--", "sh", "-c", &plant]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "planted\n", "{}", String::from_utf8_lossy(&out.stderr));
    for (args, why) in [
        (vec!["--stdout", "out.txt"], "a symbolic link inside"),
        (vec!["--stderr", "out.txt"], "a symbolic link inside"),
        (vec!["--stdin", "in.txt"], "a symbolic link inside"),
        (vec!["--stdin", "fifo"], "a FIFO"),
        (vec!["--stdout", "fifo"], "a FIFO"),
        (vec!["--stdout", "d/up/victim.txt"], "leads out through a symbolic link"),
    ] {
        let mut full = vec!["run"];
        full.extend(&args);
        full.extend(["--", "cat"]);
        let t = std::time::Instant::now();
        let out = w(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{args:?} blocked");
    }
    // the verdict and the meta file replace the planted names instead of writing through them
    let out = w(&["run", "--verdict", "v.json", "--meta", "m", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(work.join("v.json")).unwrap().is_file());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("v.json")).unwrap()).unwrap();
    assert_eq!(v["status"], "OK");
    assert!(std::fs::read_to_string(work.join("m")).unwrap().contains("exitcode:0"));
}

#[test]
fn the_program_cannot_write_back_through_its_stdin() {
    // Without Landlock (optional in the profiles), /proc/self/fd/0 reopens the stdin file
    // with the program's rights, which are the caller's: the program gets a sealed copy.
    let s = Scratch::new();
    let data = s.mkdir("data");
    let input = data.join("in.txt");
    std::fs::write(&input, "question\n").unwrap();
    chown_user(&input);
    let r = run_in(&s, &["--no-landlock", "--stdin", input.to_str().unwrap(), "--", "sh", "-c", "read q; echo got $q; (echo pwned > /proc/self/fd/0) 2>&1 | sed 's/.*: //'"]);
    assert_eq!(r.stdout(), "got question\nOperation not permitted\n", "{}", r.stderr());
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "question\n");
}

#[test]
fn a_shared_directory_is_not_bound_and_its_sockets_stay_out_of_reach() {
    // A sticky, world-writable directory like /tmp holds other programs' sockets (tmux, X11,
    // ssh-agent): running ward there must not bind it automatically.
    let s = Scratch::new();
    let shared = s.mkdir("sharedtmp");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sock = shared.join("tmux.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let vpath = s.join("v.json");
    let out = ward_cmd(&shared, &["run", "--verdict", vpath.to_str().unwrap(), "--", "sh", "-c", &format!("pwd; test -e {} && echo REACHABLE; echo end", sock.display())])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/\nend\n", "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&vpath).unwrap()).unwrap();
    assert_eq!(v["enforced"]["root"]["workdir"], serde_json::Value::Null);
}

#[test]
fn a_bind_source_swapped_for_a_link_is_refused_not_followed() {
    // Another sandbox with write access to the source's parent swaps the source for a link
    // to the caller's private files while this one starts: the child opens the canonical
    // path with no symbolic link allowed, so it either binds the real directory or fails.
    let s = Scratch::new();
    let parent = s.mkdir("p");
    let src = parent.join("src");
    let real = parent.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("marker"), "public\n").unwrap();
    let private = s.mkdir("private");
    std::fs::write(private.join("marker"), "PRIVATE\n").unwrap();
    for p in [&real, &real.join("marker"), &private.join("marker")] {
        chown_user(p);
    }
    std::fs::rename(&real, &src).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, src, real, private) = (stop.clone(), src.clone(), real.clone(), private.clone());
        std::thread::spawn(move || {
            let link = src.with_file_name("link");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::rename(&src, &real);
                let _ = std::os::unix::fs::symlink(&private, &link);
                let _ = std::fs::rename(&link, &src);
                std::thread::yield_now();
                let _ = std::fs::remove_file(&src);
                let _ = std::fs::rename(&real, &src);
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        })
    };
    let (mut bound, mut refused) = (0, 0);
    for _ in 0..40 {
        let r = run_in(&s, &["--no-workdir", "--ro-bind", src.to_str().unwrap(), "/data", "--", "cat", "/data/marker"]);
        let out = r.stdout();
        // the launcher itself may have resolved the link (then it says so: the source is the
        // private directory, which the caller named); a link swapped in later is never followed
        let source = r.verdict.as_ref().and_then(|v| v["enforced"]["root"]["binds"].as_array().cloned()).unwrap_or_default();
        let source = source.iter().find(|b| b["dst"] == "/data").map(|b| b["src"].as_str().unwrap_or("").to_string());
        if source.as_deref() == Some(private.to_str().unwrap()) {
            continue;
        }
        assert!(!out.contains("PRIVATE"), "the swapped-in link was followed: {out} (source {source:?})");
        match out.as_str() {
            "public\n" => bound += 1,
            _ => refused += 1,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    eprintln!("bound {bound}, refused {refused} of 40");
}

#[test]
fn a_root_caller_gets_user_mode_networking_with_either_helper() {
    // The sandbox's ids are not root's, so its init is not dumpable to the helpers: pasta
    // (which would change to nobody) joins through namespace fds the launcher opened.
    if !root_or_skip("a_root_caller_gets_user_mode_networking_with_either_helper") {
        return;
    }
    let s = Scratch::new();
    for helper in ["pasta", "slirp4netns"] {
        let out = ward_as_root(s.path(), &["run", "--no-workdir", "--net", helper, "--", "sh", "-c", "id -u; grep -c 00000000 /proc/net/route"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().last(), Some("2"), "{helper}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{helper}");
    }
}
