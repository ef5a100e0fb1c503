//! Test harness: run the real `ward` binary as an unprivileged user, even when the test
//! process is root (then as $WARD_TEST_USER, default ward-test, created by tests/setup.sh,
//! through setpriv). Every test gets its own scratch directory owned by that user.

use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub struct TestUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    /// true when the tests run as root and drop to this user.
    pub drop: bool,
}

pub fn user() -> &'static TestUser {
    static U: OnceLock<TestUser> = OnceLock::new();
    U.get_or_init(|| {
        let me = nix::unistd::Uid::current();
        if !me.is_root() {
            let name = nix::unistd::User::from_uid(me).ok().flatten().map(|u| u.name).unwrap_or_default();
            return TestUser { uid: me.as_raw(), gid: nix::unistd::Gid::current().as_raw(), name, drop: false };
        }
        let name = std::env::var("WARD_TEST_USER").unwrap_or_else(|_| "ward-test".into());
        let u = nix::unistd::User::from_name(&name).ok().flatten().unwrap_or_else(|| {
            panic!("running as root, but the unprivileged test user {name:?} does not exist: run 'bash tests/setup.sh' as root first")
        });
        assert!(u.uid.as_raw() != 0, "the test user must not be root");
        TestUser { uid: u.uid.as_raw(), gid: u.gid.as_raw(), name, drop: true }
    })
}

/// The ward binary, copied where the unprivileged user can execute it.
pub fn ward_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| copy_for_user(Path::new(env!("CARGO_BIN_EXE_ward")), "ward"))
}

/// Copy an executable into a directory the test user can reach (/tmp/ward-test-bin-UID).
pub fn copy_for_user(src: &Path, name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/ward-test-bin-{}", nix::unistd::Uid::current()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // one copy per name, replaced atomically: no copies pile up across runs
    let dst = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::copy(src, &tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &dst).unwrap();
    dst
}

/// A scratch directory owned by the test user (removed at drop).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new().prefix("ward-it-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_user(dir.path());
        Scratch { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// Write a file owned by the test user.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, contents).unwrap();
        chown_user(&p);
        p
    }
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir_all(&p).unwrap();
        chown_user(&p);
        p
    }
}

pub fn chown_user(p: &Path) {
    if user().drop {
        std::os::unix::fs::chown(p, Some(user().uid), Some(user().gid)).unwrap();
    }
}

/// A command that runs `program args` as the test user.
pub fn as_user<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Command {
    let u = user();
    let mut c = if u.drop {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", u.uid)).arg(format!("--regid={}", u.gid)).arg("--clear-groups").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    };
    c.args(args);
    c.env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").env("HOME", "/tmp").env("LANG", "C.UTF-8");
    c.stdin(Stdio::null());
    c
}

/// Tests of what ward does for a root caller need the test process to be root (CI is);
/// elsewhere they say they are skipped, and in CI a non-root run is a failure.
pub fn root_or_skip(what: &str) -> bool {
    if nix::unistd::Uid::current().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what}: CI must run the tests as root");
    eprintln!("skipped {what}: needs the test process to be root");
    false
}

/// `ward ARGS` as root itself (the test process), in `cwd`.
pub fn root_cmd<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Command {
    let mut c = Command::new(ward_bin());
    c.args(args).current_dir(cwd).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", "/root");
    c
}

/// `ward ARGS` as the test user, in `cwd`.
pub fn ward_cmd<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Command {
    let mut c = as_user(ward_bin(), args);
    c.current_dir(cwd);
    c
}

pub struct Run {
    pub out: Output,
    pub verdict: Option<Value>,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn v(&self) -> &Value {
        self.verdict.as_ref().unwrap_or_else(|| panic!("no verdict; stderr: {}", self.stderr()))
    }
    pub fn status(&self) -> &str {
        self.v()["status"].as_str().unwrap_or("")
    }
}

/// Run `ward run --verdict FILE <args>` as the test user in scratch dir `s`.
pub fn run_in(s: &Scratch, args: &[&str]) -> Run {
    run_with(s, args, |_| {})
}

pub fn run_with(s: &Scratch, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
    let vpath = s.join(".verdict.json");
    let _ = std::fs::remove_file(&vpath);
    let mut full: Vec<String> = vec!["run".into(), "--verdict".into(), vpath.display().to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    let mut c = ward_cmd(s.path(), &full);
    f(&mut c);
    let out = c.output().unwrap();
    let verdict = std::fs::read_to_string(&vpath).ok().map(|t| serde_json::from_str(&t).unwrap());
    Run { out, verdict }
}

/// Run a shell snippet in a default sandbox; returns the run.
pub fn sh(s: &Scratch, script: &str) -> Run {
    run_in(s, &["--", "/bin/sh", "-c", script])
}

/// pids of processes whose command line starts with `needle`.
pub fn pids_matching(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with(needle) {
                out.push(pid);
            }
        }
    }
    out
}

/// Wait up to `ms` for `f` to hold.
pub fn eventually(ms: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// Kills the wrapped child (and so the sandbox) if a test fails before waiting for it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// Wait for the child and collect its output (it is not killed then).
    pub fn wait_with_output_owned(mut self) -> std::process::Output {
        let child = std::mem::replace(&mut self.0, std::process::Command::new("true").spawn().unwrap());
        std::mem::forget(self);
        child.wait_with_output().unwrap()
    }
}

/// Held by the tests that fill, clear or read back the test user's keyring (the filter
/// cache), so they do not pull it from under each other.
pub fn keyring_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test helper tests/helpers/NAME.c, built statically once and copied into `dir` as
/// `./NAME` (owned by the test user).
pub fn c_helper(dir: &Path, name: &'static str) -> String {
    static BUILT: std::sync::Mutex<Vec<(&'static str, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let built = {
        let mut b = BUILT.lock().unwrap();
        match b.iter().find(|(n, _)| *n == name) {
            Some((_, p)) => p.clone(),
            None => {
                let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{name}.c"));
                let out = std::env::temp_dir().join(format!("ward-test-{name}-{}", std::process::id()));
                let st = Command::new("gcc").args(["-static", "-O2", "-pthread", "-o"]).arg(&out).arg(&src).status().unwrap();
                assert!(st.success(), "building {} failed", src.display());
                let dst = copy_for_user(&out, name);
                let _ = std::fs::remove_file(&out);
                b.push((name, dst.clone()));
                dst
            }
        }
    };
    let dst = dir.join(name);
    std::fs::copy(built, &dst).unwrap();
    chown_user(&dst);
    format!("./{name}")
}

/// The CPU burner (tests/helpers/burn.c) in `dir` as `./burn`: `./burn MS` uses MS ms of its
/// own CPU time, `./burn forever` spins until killed (an extra argument is ignored: a marker
/// to find it by). Tests that judge CPU time use it, never iteration counts that stand in
/// for time.
pub fn burner(dir: &Path) -> &'static str {
    c_helper(dir, "burn");
    "./burn"
}

/// The kernel's Landlock ABI as `ward check` reports it (0: none).
pub fn landlock_abi() -> u8 {
    static ABI: OnceLock<u8> = OnceLock::new();
    *ABI.get_or_init(|| {
        let out = ward_cmd(Path::new("/"), &["check", "--json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let item = v["items"].as_array().unwrap().iter().find(|i| i["name"] == "landlock").cloned().unwrap_or_default();
        if item["ok"] != true {
            return 0;
        }
        item["detail"].as_str().and_then(|d| d.strip_prefix("ABI ")).and_then(|n| n.parse().ok()).unwrap_or(0)
    })
}

/// The test user's first /etc/subuid range (start, count).
pub fn subuid_range() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/subuid").ok()?;
    let u = user();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        (f.len() == 3 && (f[0] == u.name || f[0] == u.uid.to_string())).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?))).flatten()
    })
}
