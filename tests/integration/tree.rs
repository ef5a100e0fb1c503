//! The root: binds, tmpfs with sizes, overlays, symlinks, dirs, the work dir.

use crate::common::*;

#[test]
fn workdir_is_the_current_directory_and_writable() {
    let s = Scratch::new();
    let r = sh(&s, "pwd; echo out > result.txt");
    assert_eq!(r.stdout().trim(), s.path().to_str().unwrap());
    assert_eq!(std::fs::read_to_string(s.join("result.txt")).unwrap(), "out\n");
    let r = run_in(&s, &["--workdir-mode", "ro", "--", "sh", "-c", "echo x > y"]);
    assert!(r.stderr().contains("Read-only file system"), "{}", r.stderr());
}

#[test]
fn workdir_overlay_discards_changes() {
    let s = Scratch::new();
    s.write("keep.txt", "original\n");
    let r = run_in(&s, &["--workdir-mode", "overlay", "--", "sh", "-c", "echo changed > keep.txt; echo new > new.txt; cat keep.txt new.txt"]);
    assert_eq!(r.stdout(), "changed\nnew\n", "{}", r.stderr());
    assert_eq!(std::fs::read_to_string(s.join("keep.txt")).unwrap(), "original\n");
    assert!(!s.join("new.txt").exists());
}

#[test]
fn tmpfs_size_is_enforced() {
    let s = Scratch::new();
    let r = run_in(
        &s,
        &["--tmpfs", "/scratch:1M", "--", "python3", "-c", "import errno\ntry:\n open('/scratch/f','wb').write(b'x'*2000000)\nexcept OSError as e: print(errno.errorcode[e.errno])"],
    );
    assert_eq!(r.stdout(), "ENOSPC\n", "{}", r.stderr());
    let r = run_in(&s, &["--tmp-size", "1M", "--", "sh", "-c", "head -c 2000000 /dev/zero > /tmp/f 2>&1; echo rc=$?"]);
    assert_eq!(r.stdout(), "rc=1\n");
}

#[test]
fn dir_symlink_and_order() {
    let s = Scratch::new();
    let d = s.mkdir("src");
    s.write("src/file", "content\n");
    let r = run_in(
        &s,
        &["--no-workdir", "--dir", "/a/b", "--ro-bind", d.to_str().unwrap(), "/a/b/c", "--symlink", "/a/b/c/file", "/link", "--", "cat", "/link"],
    );
    assert_eq!(r.stdout(), "content\n", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["root"]["workdir"], serde_json::Value::Null);
}

#[test]
fn dev_has_only_the_minimal_nodes() {
    let s = Scratch::new();
    let r = sh(&s, "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1");
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "fd full null random shm stderr stdin stdout tty urandom zero ");
    assert_eq!(lines[1].trim(), "00 00 00 00");
    let r = run_in(&s, &["--dev-pts", "--", "sh", "-c", "ls /dev/pts; ls -l /dev/ptmx"]);
    assert!(r.stdout().contains("ptmx"), "{}", r.stderr());
}

#[test]
fn home_directory_is_not_bound_automatically() {
    // from a directory that is the caller's home (HOME), the work dir is not bound
    let s = Scratch::new();
    let r = run_with(&s, &["--", "sh", "-c", "pwd; ls"], |c| {
        c.env("HOME", s.path());
    });
    assert_eq!(r.stdout(), "/\nbin\ndev\netc\nlib\nlib64\nproc\nsbin\ntmp\nusr\n".replace("lib\nlib64", &lib_dirs()));
    assert_eq!(r.v()["enforced"]["root"]["workdir"], serde_json::Value::Null);
}

fn lib_dirs() -> String {
    ["lib", "lib32", "lib64", "libx32"].iter().filter(|d| std::path::Path::new("/").join(d).exists()).copied().collect::<Vec<_>>().join("\n")
}

#[test]
fn host_global_proc_files_are_read_only_or_hidden() {
    let s = Scratch::new();
    // each of these the host's kernel has must be a read-only mount inside
    let ro: Vec<&str> = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"].into_iter().filter(|p| std::path::Path::new(p).exists()).collect();
    // and each of these must read as nothing (a /dev/null or an empty directory)
    let hidden: Vec<&str> = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi", "/proc/scsi"].into_iter().filter(|p| std::path::Path::new(p).exists()).collect();
    assert!(ro.contains(&"/proc/sys"));
    let script = format!(
        "for p in {}; do awk -v p=$p '$5==p {{split($6,o,\",\"); print p, o[1]}}' /proc/self/mountinfo; done; \
         for p in {}; do if [ -d $p ]; then echo $p $(ls -A $p | wc -l); else echo $p $(cat $p | wc -c); fi; done; \
         (echo x > /proc/sys/kernel/hostname) 2>&1 | grep -c 'Read-only file system'",
        ro.join(" "),
        hidden.join(" ")
    );
    let r = sh(&s, &script);
    let mut want: String = ro.iter().map(|p| format!("{p} ro\n")).collect();
    want.extend(hidden.iter().map(|p| format!("{p} 0\n")));
    want.push_str("1\n");
    assert_eq!(r.stdout(), want, "{}", r.stderr());
    assert_eq!(r.status(), "OK");
}

/// --no-proc, the degraded mode for a container that masks /proc, is only what is asked for:
/// an empty /proc that cannot be written, and the verdict says so; without it /proc is own.
#[test]
fn no_proc_gives_an_empty_proc_and_says_so() {
    let s = Scratch::new();
    let r = run_in(&s, &["--no-proc", "--", "/bin/sh", "-c", "echo in-proc=$(ls -A /proc | wc -l); mkdir /proc/x 2>/dev/null || echo read-only; readlink /dev/fd"]);
    assert_eq!(r.stdout(), "in-proc=0\nread-only\n/proc/self/fd\n", "{}", r.stderr());
    assert_eq!(r.status(), "OK");
    assert_eq!(r.v()["enforced"]["root"]["proc"], "none");
    let r = run_in(&s, &["--", "/bin/sh", "-c", "test -r /proc/self/status && echo own"]);
    assert_eq!(r.stdout(), "own\n");
    assert_eq!(r.v()["enforced"]["root"]["proc"], "own");
}
