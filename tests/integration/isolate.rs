//! The isolate front end, driven the way Judge0 and CMS drive isolate (flags copied from
//! their source), as an unprivileged user. Box roots are per test.

use crate::common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

struct Iso {
    s: Scratch,
    bin: PathBuf,
}

impl Iso {
    fn new() -> Iso {
        let s = Scratch::new();
        let bin = s.join("isolate");
        std::os::unix::fs::symlink(ward_bin(), &bin).unwrap();
        s.mkdir("root");
        Iso { s, bin }
    }
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        let mut c = as_user(&self.bin, args);
        c.current_dir(self.s.path()).env("WARD_ISOLATE_ROOT", self.s.join("root"));
        c.output().unwrap()
    }
    fn init(&self, id: u32) -> PathBuf {
        let out = self.cmd(&["-b", &id.to_string(), "--init"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    }
}

fn meta(p: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(p).unwrap().lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Judge0's run command (app/jobs/isolate_job.rb), without --cg.
#[allow(clippy::too_many_arguments)] // mirrors the grader's command line
fn judge0_run(iso: &Iso, id: u32, workdir: &Path, t: &str, x: &str, w: &str, mem: &str, cmd: &[&str]) -> (i32, BTreeMap<String, String>, String) {
    let b = workdir.join("box");
    let meta_path = b.join("meta.txt");
    let ids = id.to_string();
    let home = format!("HOME={}", workdir.display());
    let mut args = vec!["-b", &ids, "-i", "stdin.txt", "-o", "stdout.txt", "-r", "stderr.txt", "-M", meta_path.to_str().unwrap(), "-t", t, "-x", x, "-w", w, "-k", "64000", "-p60", "-m", mem, "-f", "1024", "-E", &home, "-d", "/etc:noexec", "--run", "--"];
    args.extend(cmd);
    let out = iso.cmd(&args);
    (out.status.code().unwrap_or(-1), meta(&meta_path), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn c_program(dir: &Path, name: &str, src: &str) {
    std::fs::write(dir.join(format!("{name}.c")), src).unwrap();
    let st = std::process::Command::new("gcc").args(["-O2", "-o"]).arg(dir.join(name)).arg(dir.join(format!("{name}.c"))).status().unwrap();
    assert!(st.success());
    chown_user(&dir.join(name));
}

#[test]
fn judge0_sequence() {
    let iso = Iso::new();
    let w = iso.init(11);
    let b = w.join("box");
    assert!(b.is_dir() && w.starts_with(iso.s.join("root")));
    c_program(&b, "sum", "#include <stdio.h>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}");
    c_program(&b, "re", "int main(){return 3;}");
    c_program(&b, "segv", "int main(){volatile int *p=0; return *p;}");
    c_program(&b, "spin", "int main(){for(;;);}");
    c_program(&b, "sleepy", "#include <unistd.h>\nint main(){sleep(30);return 0;}");
    c_program(&b, "hog", "#include <stdlib.h>\n#include <string.h>\n#include <stdio.h>\nint main(){char*p=malloc(400<<20); if(!p){puts(\"nomem\");return 1;} memset(p,1,400<<20); return 0;}");
    c_program(&b, "peek", "#include <stdio.h>\nint main(){FILE*f=fopen(\"/root/.bashrc\",\"r\"); FILE*g=fopen(\"/home\",\"r\"); printf(\"%d %d\\n\", f!=0, g!=0); return 0;}");
    std::fs::write(b.join("stdin.txt"), "2 40\n").unwrap();
    chown_user(&b.join("stdin.txt"));

    let (code, m, err) = judge0_run(&iso, 11, &w, "5", "1", "10", "128000", &["./sum"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("OK ("), "{err}");
    assert_eq!(std::fs::read_to_string(b.join("stdout.txt")).unwrap(), "42\n");
    assert_eq!(m.get("exitcode").map(String::as_str), Some("0"));
    assert!(!m.contains_key("status"));
    assert!(m["time"].parse::<f64>().unwrap() < 1.0 && m.contains_key("time-wall") && m.contains_key("max-rss"));

    let (code, m, _) = judge0_run(&iso, 11, &w, "5", "1", "10", "128000", &["./re"]);
    assert_eq!((code, m["status"].as_str(), m["exitcode"].as_str()), (1, "RE", "3"));
    assert_eq!(m["message"], "Exited with error status 3");

    let (code, m, _) = judge0_run(&iso, 11, &w, "5", "1", "10", "128000", &["./segv"]);
    assert_eq!((code, m["status"].as_str(), m["exitsig"].as_str()), (1, "SG", "11"));
    assert_eq!(m["message"], "Caught fatal signal 11");

    let (code, m, err) = judge0_run(&iso, 11, &w, "0.5", "0.2", "10", "128000", &["./spin"]);
    assert_eq!((code, m["status"].as_str(), m["killed"].as_str()), (1, "TO", "1"), "{err}");
    assert_eq!(m["message"], "Time limit exceeded");
    let t: f64 = m["time"].parse().unwrap();
    assert!((0.69..0.85).contains(&t), "killed at time + extra: {t}");

    let (code, m, _) = judge0_run(&iso, 11, &w, "5", "1", "0.5", "128000", &["./sleepy"]);
    assert_eq!((code, m["status"].as_str()), (1, "TO"));
    assert_eq!(m["message"], "Time limit exceeded (wall clock)");

    // -m is RLIMIT_AS without --cg: the allocation fails
    let (code, m, _) = judge0_run(&iso, 11, &w, "5", "1", "10", "65536", &["./hog"]);
    assert_eq!((code, m["status"].as_str()), (1, "RE"));
    assert_eq!(std::fs::read_to_string(b.join("stdout.txt")).unwrap(), "nomem\n");

    let (code, _, _) = judge0_run(&iso, 11, &w, "5", "1", "10", "128000", &["./peek"]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(b.join("stdout.txt")).unwrap(), "0 0\n", "host files outside the box must be out of reach");

    let (code, m, err) = judge0_run(&iso, 11, &w, "5", "1", "10", "128000", &["./nothere"]);
    assert_eq!((code, m["status"].as_str()), (2, "XX"));
    assert_eq!(m["message"], "execve(\"./nothere\"): No such file or directory");
    assert!(err.contains("execve(\"./nothere\"): No such file or directory"));

    // files the program made are the grader's: readable and removable
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(b.join("stdout.txt")).unwrap().uid(), user().uid);
    let out = iso.cmd(&["-b", "11", "--cleanup"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!w.exists());
}

#[test]
fn extra_time_is_judged_against_time() {
    let iso = Iso::new();
    let w = iso.init(12);
    let b = w.join("box");
    // 0.4 s of CPU: 4x over -t 0.1, 5x under -t 0.1 + -x 2
    let burn = burner(&b);
    std::fs::write(b.join("stdin.txt"), "").unwrap();
    let (code, m, _) = judge0_run(&iso, 12, &w, "0.1", "2", "10", "128000", &[burn, "400"]);
    assert_eq!(std::fs::read_to_string(b.join("stdout.txt")).unwrap(), "burned 400 ms\n", "it must run to the end");
    assert_eq!((code, m["status"].as_str()), (1, "TO"));
    assert!(!m.contains_key("killed"));
}

#[test]
fn cms_style_flags_and_cg() {
    let iso = Iso::new();
    let w = iso.init(13);
    let b = w.join("box");
    let meta_path = b.join("run.log");
    // CMS uses long options with '=' (cms/grading/Sandbox.py)
    let out = iso.cmd(&[
        "--box-id=13", "--dir=/etc", "--chdir=/box", "--env=PATH=/usr/bin:/bin", "--fsize=1024", "--stdout=out.txt", "--stderr-to-stdout",
        &format!("--meta={}", meta_path.display()), "--time=2", "--wall-time=4", "--extra-time=0.5", "--processes=8", "--run", "--", "/bin/sh", "-c", "echo out; echo err >&2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(b.join("out.txt")).unwrap(), "out\nerr\n");
    // --cg needs a delegated cgroup v2 subtree, which this host has not: a sandbox error
    let out = iso.cmd(&["--cg", "--box-id=13", &format!("--meta={}", meta_path.display()), "--cg-mem=65536", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cg: control groups are not available to ward here"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn boxes_are_separate_and_exclusive() {
    let iso = Iso::new();
    let w1 = iso.init(21);
    let w2 = iso.init(22);
    assert_ne!(w1, w2);
    // two boxes at once
    let spawn = |id: &str, secs: &str| {
        let mut c = as_user(&iso.bin, &["-b", id, "--run", "--", "/bin/sleep", secs]);
        c.current_dir(iso.s.path()).env("WARD_ISOLATE_ROOT", iso.s.join("root"));
        KillOnDrop(c.spawn().unwrap())
    };
    let a = spawn("21", "0.6");
    let b = spawn("22", "0.3");
    std::thread::sleep(std::time::Duration::from_millis(150));
    // the same box while it runs: refused clearly
    let out = iso.cmd(&["-b", "21", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("box 21 is in use by another isolate process"));
    assert!(a.wait_with_output_owned().status.success());
    assert!(b.wait_with_output_owned().status.success());
    // cleanup of a box that was never initialized
    assert_eq!(iso.cmd(&["-b", "99", "--cleanup"]).status.code(), Some(0));
    // running an uninitialized box is a sandbox error
    let out = iso.cmd(&["-b", "98", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("box 98 is not initialized"));
}

#[test]
fn usage_errors_and_version() {
    let iso = Iso::new();
    let out = iso.cmd(&["--frobnicate", "--init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown option --frobnicate"));
    let out = iso.cmd(&["--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("The process isolator 2.0 (ward"));
    // `ward isolate` is the same front end
    let mut c = as_user(ward_bin(), &["isolate", "--version"]);
    c.current_dir(iso.s.path());
    assert!(String::from_utf8_lossy(&c.output().unwrap().stdout).starts_with("The process isolator"));
    // --help answers with isolate's usage and what ward supports, exit 0
    for h in ["--help", "-h"] {
        let out = iso.cmd(&[h]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{h}");
        assert!(text.starts_with("Usage: isolate [<options>] <command>") && text.contains("--processes[=<max>]") && text.contains("--cg-mem=<size>"), "{text}");
    }
}

#[test]
fn dir_rules_with_options() {
    let iso = Iso::new();
    let w = iso.init(14);
    let b = w.join("box");
    let tools = iso.s.mkdir("tools");
    c_program(&tools, "tool", "int main(){return 7;}");
    let spec = |opts: &str| format!("--dir=/opt/tools={}{opts}", tools.display());
    // bound read-only and executable by default
    let out = iso.cmd(&["-b", "14", &spec(""), "--run", "--", "/opt/tools/tool"]);
    assert_eq!(out.status.code(), Some(1)); // exit status 7 is RE
    // noexec: the program cannot be executed
    let m = b.join("meta");
    let out = iso.cmd(&["-b", "14", &spec(":noexec"), &format!("--meta={}", m.display()), "--run", "--", "/opt/tools/tool"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(meta(&m)["message"], "execve(\"/opt/tools/tool\"): Permission denied");
    // maybe: a missing directory is skipped; without it, an error
    let out = iso.cmd(&["-b", "14", "--dir=/opt/none=/does/not/exist:maybe", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0));
    let out = iso.cmd(&["-b", "14", "--dir=/opt/none=/does/not/exist", "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    // rw: writable
    let out = iso.cmd(&["-b", "14", &spec(":rw"), "--run", "--", "/bin/sh", "-c", "echo x > /opt/tools/new"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(tools.join("new").exists());
    // norec (no submounts) is refused, not quietly ignored
    let out = iso.cmd(&["-b", "14", &spec(":norec"), "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"norec\""), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn io_files_are_opened_in_the_sandbox_s_view_as_cms_passes_them() {
    // CMS: --dir=/tmp=<box>/home:rw --chdir=/tmp --stdin=/tmp/input.txt --stdout=/tmp/stdout.txt:
    // the paths name files inside; nothing may land in the host's /tmp.
    let iso = Iso::new();
    let w = iso.init(21);
    let home = w.join("box/home");
    std::fs::create_dir(&home).unwrap();
    chown_user(&home);
    std::fs::write(home.join("input.txt"), "2 40\n").unwrap();
    chown_user(&home.join("input.txt"));
    let marker = format!("ward-cms-{}", std::process::id());
    let (o, e) = (format!("--stdout=/tmp/{marker}.out"), format!("--stderr=/tmp/{marker}.err"));
    let dir = format!("--dir=/tmp={}:rw", home.display());
    let out = iso.cmd(&["-b", "21", &dir, "--chdir=/tmp", "--stdin=/tmp/input.txt", &o, &e, "--run", "--", "/bin/sh", "-c", "read a b; echo $((a+b)); echo err >&2"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(home.join(format!("{marker}.out"))).unwrap(), "42\n");
    assert_eq!(std::fs::read_to_string(home.join(format!("{marker}.err"))).unwrap(), "err\n");
    assert!(!Path::new(&format!("/tmp/{marker}.out")).exists(), "written to the host's /tmp");
    // relative paths are relative to --chdir, and a file the sandbox cannot see is an error
    let out = iso.cmd(&["-b", "21", &dir, "--chdir=/tmp", "-i", "input.txt", "-o", "rel.out", "--run", "--", "/bin/cat"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(home.join("rel.out")).unwrap(), "2 40\n");
    let secret = iso.s.write("secret.txt", "host only\n");
    let m = w.join("m");
    let out = iso.cmd(&["-b", "21", "-M", m.to_str().unwrap(), "-i", secret.to_str().unwrap(), "--run", "--", "/bin/cat"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(meta(&m).get("status").map(String::as_str), Some("XX"));
}

#[test]
fn what_a_previous_run_planted_in_the_box_is_never_followed_on_the_host() {
    let iso = Iso::new();
    let w = iso.init(22);
    let victim = iso.s.write("victim.txt", "precious\n");
    let secret = iso.s.write("secret.txt", "the grader's secret\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let plant = format!("ln -s {} in.txt; ln -s {} out.txt; mkfifo fifo; echo ok", secret.display(), victim.display());
    let out = iso.cmd(&["-b", "22", "-p", "--run", "--", "/bin/sh", "-c", &plant]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let m = w.join("meta");
    let ms = m.to_str().unwrap();
    // the links point at host paths the sandbox does not see: an error, never the host file
    for args in [vec!["-i", "in.txt"], vec!["-o", "out.txt"], vec!["-i", "fifo"], vec!["-o", "fifo"]] {
        let mut full = vec!["-b", "22", "-M", ms, "-w", "5"];
        full.extend(&args);
        full.extend(["--run", "--", "/bin/cat"]);
        let t = std::time::Instant::now();
        let out = iso.cmd(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(meta(&m).get("status").map(String::as_str), Some("XX"), "{args:?}");
        assert!(t.elapsed() < std::time::Duration::from_secs(3), "{args:?} blocked");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // a planted meta name is replaced, not written through
    std::os::unix::fs::symlink(&victim, w.join("box/meta-link")).unwrap();
    let ml = w.join("box/meta-link");
    let out = iso.cmd(&["-b", "22", "-M", ml.to_str().unwrap(), "--run", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(meta(&ml).contains_key("time"));
}

#[test]
fn cleanup_removes_what_the_program_locked_and_init_starts_empty() {
    let iso = Iso::new();
    let w = iso.init(23);
    let out = iso.cmd(&["-b", "23", "-p", "--run", "--", "/bin/sh", "-c", "mkdir -p a/b/c && touch a/b/c/f && ln -s / a/root && chmod 000 a/b/c a/b a"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // --init over the old box: it is removed completely first
    let again = iso.init(23);
    assert_eq!(again, w);
    assert_eq!(std::fs::read_dir(w.join("box")).unwrap().count(), 0);
    let out = iso.cmd(&["-b", "23", "-p", "--run", "--", "/bin/sh", "-c", "mkdir -p x/y && chmod 000 x/y x"]);
    assert_eq!(out.status.code(), Some(0));
    let out = iso.cmd(&["-b", "23", "--cleanup"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!w.exists());
}

#[test]
fn processes_are_limited_without_cg_as_isolate_does() {
    // -p absent: one process (isolate's default); -p N: N; -p: no limit
    let iso = Iso::new();
    iso.init(24);
    let fork = ["--run", "--", "/bin/sh", "-c", "(true) && echo forked"];
    let out = iso.cmd(&[&["-b", "24"][..], &fork].concat());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{}", String::from_utf8_lossy(&out.stderr));
    let m = iso.s.join("root/24/meta");
    let out = iso.cmd(&[&["-b", "24", "-p2", "-M", m.to_str().unwrap()][..], &fork].concat());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forked\n", "{}", String::from_utf8_lossy(&out.stderr));
    // the meta file says what held the limit (a key of ward's own; isolate's readers skip it)
    assert_eq!(meta(&m).get("procs-limit").map(String::as_str), Some("2 rlimit-nproc-userns"));
    let out = iso.cmd(&[&["-b", "24", "--processes"][..], &fork].concat());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "forked\n");
}

/// `ward cleanup` removes the boxes made before this boot or container start (their graders
/// are gone) and keeps this life's, which a grader may hold between --init and --cleanup.
#[test]
fn cleanup_removes_boxes_of_an_earlier_life_only() {
    let iso = Iso::new();
    let old = iso.init(5);
    let current = iso.init(6);
    let born = std::fs::read_to_string(old.join("born")).unwrap();
    let (boot, start) = born.trim().split_once(' ').unwrap();
    assert_eq!(boot, std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim());
    assert!(start.parse::<u64>().is_ok(), "{born}");
    // as a box made by an earlier start of this container
    std::fs::write(old.join("born"), format!("{boot} 1\n")).unwrap();
    std::fs::write(old.join("box/left.txt"), "x").unwrap();
    let mut c = as_user(ward_bin(), &["cleanup"]);
    let out = c.env("WARD_ISOLATE_ROOT", iso.s.join("root")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains(&format!("removed 1 isolate boxes left from before this boot or container start under {}", iso.s.join("root").display())), "{text}");
    assert!(!old.exists() && !iso.s.join("root/5.lock").exists());
    assert!(current.join("box").is_dir());
}
