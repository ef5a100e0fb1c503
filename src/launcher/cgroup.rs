//! Parent half of cgroup v2 (the only place that talks to systemd): obtain the run's subtree
//! (already delegated, or a scope from the systemd user manager), move the launcher into a leaf
//! of its own (no internal processes), enable the controllers, make one leaf per run with its
//! limits, let the sandbox be born in it (clone3 CLONE_INTO_CGROUP), read exact accounting,
//! end the whole tree with one cgroup.kill, remove the leaf. Parent (launcher) only.
//!
//! Leaves are named `ward-PID-run` (`ward-PID-runN` for a launcher's later runs) and
//! `ward-PID-launcher` after the launcher's pid; leaves
//! of dead launchers are removed by the next run (and by `ward cleanup`). Other processes
//! found in the subtree's root (the grader that started ward) are moved to `ward-caller`,
//! since a cgroup whose controllers are enabled for its children may hold no process.
//!
//! The subtree is either already delegated (a `systemd-run --user --scope -p Delegate=yes`
//! scope, a CI runner's or container's own cgroup) or, when the caller sits in a session
//! scope it does not own, obtained from the systemd user manager over the session bus
//! (`dbus`: StartTransientUnit of a scope with Delegate=yes holding the launcher). Without
//! either, runs fall back to sampling (see `watch`), unless the policy requires a leaf.

use crate::error::{CgroupError, Error, Result};
use crate::host::{CGROUP_ROOT as ROOT, NoCgroup, Subtree, find_cgroup, is_ward_leaf, own_cgroup};
use crate::policy::limits::{CgLimits, CgroupNeed, CgroupPlan, CgroupSource};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn write(p: &Path, v: &str) -> std::io::Result<()> {
    std::fs::write(p, v)
}

/// The run's leaf, or why it has none (the verdict says which).
#[derive(Debug)]
pub enum Obtained {
    Leaf(Leaf),
    None(String),
}

/// Step "obtain the cgroup": the run's leaf as the policy plans it. Without a delegated
/// subtree, ask the systemd user manager for a scope with Delegate=yes holding the launcher
/// (StartTransientUnit over the session bus). A run that requires a leaf and gets none is
/// refused; one that merely prefers one goes on with sampled limits.
pub fn obtain(plan: &CgroupPlan) -> Result<Obtained> {
    let sub = match &plan.source {
        CgroupSource::Delegated(sub) => Ok(sub.clone()),
        CgroupSource::FromSystemd(why) => from_systemd(why),
        CgroupSource::Unavailable(why) => Err(why.to_string()),
    };
    let leaf = sub.and_then(|s| prepare(&s, plan.limits).map_err(|e| e.to_string()));
    match (leaf, plan.need) {
        (Ok(l), _) => Ok(Obtained::Leaf(l)),
        (Err(why), CgroupNeed::Required(what)) => Err(crate::policy::no_cgroup(what, &why)),
        (Err(why), CgroupNeed::Preferred) => Ok(Obtained::None(why)),
    }
}

/// After the run: what the leaf counted and the verdict's cgroup line; then the leaf goes
/// (one cgroup.kill ends anything left, and the directory is removed).
pub fn finish(leaf: Option<Leaf>, note: &str) -> (Option<Usage>, String) {
    let Some(l) = leaf else { return (None, format!("unavailable ({note}); cpu time and peak memory come from rusage")) };
    let u = l.usage();
    let line = format!(
        "leaf {} in the delegated subtree {} ({}; controllers: {}); cpu time from cpu.stat, peak memory from memory.peak",
        l.dir.display(),
        l.subtree.dir.display(),
        l.subtree.how,
        l.subtree.controllers.join(" ")
    );
    l.kill();
    l.remove();
    (Some(u), line)
}

fn from_systemd(why: &NoCgroup) -> std::result::Result<Subtree, String> {
    match super::dbus::start_delegated_scope(std::process::id()) {
        Ok(unit) => find_cgroup()
            .map(|s| Subtree { how: "a scope with Delegate=yes from the systemd user manager (StartTransientUnit)", ..s })
            .map_err(|e| format!("{unit}: {e}")),
        Err(e) => Err(format!("{why}, and the systemd user manager gave no delegated scope: {e}")),
    }
}

/// The leaf of one run.
#[derive(Debug)]
pub struct Leaf {
    pub dir: PathBuf,
    /// O_PATH fd of the leaf, for clone3's CLONE_INTO_CGROUP.
    pub fd: OwnedFd,
    pub subtree: Subtree,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| CgroupError::File { what, source: e }.into()
}

/// Remove leaves of launchers that no longer exist (they are empty once those are gone).
pub fn remove_stale(sub: &Subtree) -> usize {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(&sub.dir) else { return 0 };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_ward_leaf(&name) || name == "ward-caller" {
            continue;
        }
        let Some(rest) = name.strip_prefix("ward-") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        if pid as u32 == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // a dead launcher's run may still have processes: end them first
        let _ = write(&e.path().join("cgroup.kill"), "1");
        for _ in 0..50 {
            if std::fs::remove_dir(e.path()).is_ok() {
                removed += 1;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    removed
}

/// Prepare the leaf of a run in `sub`.
pub fn prepare(sub: &Subtree, l: CgLimits) -> Result<Leaf> {
    remove_stale(sub);
    let pid = std::process::id();
    // No internal processes: if the launcher sits in the subtree's root, it moves to a leaf.
    let own = own_cgroup().unwrap_or_default();
    if Path::new(ROOT).join(own.trim_start_matches('/')) == sub.dir {
        let me = sub.dir.join(format!("ward-{pid}-launcher"));
        match std::fs::create_dir(&me) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("mkdir {}", me.display()))(e)),
        }
        write(&me.join("cgroup.procs"), &pid.to_string()).map_err(io_err(format!("move the launcher into {}", me.display())))?;
    }
    let wanted: Vec<&str> = ["cpu", "memory", "pids"].into_iter().filter(|c| sub.controllers.iter().any(|x| x == c)).collect();
    let enabled = read(&sub.dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<String> = wanted.iter().filter(|c| !enabled.split_whitespace().any(|x| x == **c)).map(|c| format!("+{c}")).collect();
    if !missing.is_empty() {
        let control = sub.dir.join("cgroup.subtree_control");
        let mut res = write(&control, &missing.join(" "));
        if res.as_ref().is_err_and(|e| e.raw_os_error() == Some(nix::libc::EBUSY)) {
            // No internal processes: whatever else still sits in the subtree's root (the
            // grader that started ward, a shell) moves to a leaf of its own, then retry.
            let others = sub.dir.join("ward-caller");
            let _ = std::fs::create_dir(&others);
            for p in read(&sub.dir.join("cgroup.procs")).unwrap_or_default().split_whitespace() {
                let _ = write(&others.join("cgroup.procs"), p);
            }
            res = write(&control, &missing.join(" "));
        }
        res.map_err(|e| {
            let why = if e.raw_os_error() == Some(nix::libc::EBUSY) { " (other processes are still in it: start ward in a scope of its own)" } else { "" };
            CgroupError::Enable { controllers: missing.join(" "), subtree: sub.dir.clone(), why: format!("{e}{why}") }
        })?;
    }
    // one leaf per run; a batch's next run has its own while this one's still exists
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = sub.dir.join(if n == 0 { format!("ward-{pid}-run") } else { format!("ward-{pid}-run{n}") });
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir(&dir).map_err(io_err(format!("mkdir {}", dir.display())))?;
    let set = |file: &str, v: String| -> Result<()> {
        write(&dir.join(file), &v).map_err(io_err(format!("write {v} to {}", dir.join(file).display())))
    };
    let need = |c: &'static str, what: &'static str| -> Result<()> {
        if wanted.contains(&c) {
            Ok(())
        } else {
            Err(CgroupError::ControllerMissing { option: what, controller: c, subtree: sub.dir.clone() }.into())
        }
    };
    if let Some(m) = l.mem {
        need("memory", "--mem")?;
        set("memory.max", m.to_string())?;
        if dir.join("memory.swap.max").exists() {
            set("memory.swap.max", "0".into())?;
        }
        set("memory.oom.group", "1".into())?;
    }
    if let Some(p) = l.procs {
        need("pids", "--procs")?;
        // the sandbox's init lives in the leaf too: it is not one of the program's processes
        set("pids.max", (p + 1).to_string())?;
    }
    if let Some(c) = l.cpus {
        need("cpu", "--cpus")?;
        set("cpu.max", format!("{} 100000", (c * 100_000.0).round().max(1000.0) as u64))?;
    }
    let fd = nix::fcntl::open(&dir, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| Error::sys(format!("open({})", dir.display()), e))?;
    Ok(Leaf { dir, fd, subtree: sub.clone() })
}

/// What the leaf accounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    /// memory.peak (bytes), if the kernel has it (5.19+).
    pub peak: Option<u64>,
    pub current: u64,
    pub oom_kills: u64,
    pub pids_max_hits: u64,
}

fn keyed(text: &str, key: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.trim().parse().ok())).unwrap_or(0)
}

impl Leaf {
    /// The leaf's O_PATH fd (for clone3's CLONE_INTO_CGROUP).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn usage(&self) -> Usage {
        let cpu = read(&self.dir.join("cpu.stat")).unwrap_or_default();
        let ev = read(&self.dir.join("memory.events")).unwrap_or_default();
        Usage {
            usage_usec: keyed(&cpu, "usage_usec "),
            user_usec: keyed(&cpu, "user_usec "),
            system_usec: keyed(&cpu, "system_usec "),
            peak: read(&self.dir.join("memory.peak")).and_then(|s| s.trim().parse().ok()),
            current: read(&self.dir.join("memory.current")).and_then(|s| s.trim().parse().ok()).unwrap_or(0),
            oom_kills: keyed(&ev, "oom_kill "),
            pids_max_hits: keyed(&read(&self.dir.join("pids.events")).unwrap_or_default(), "max "),
        }
    }

    /// End every process in the leaf (cgroup.kill, Linux 5.14+; else each pid).
    pub fn kill(&self) {
        if write(&self.dir.join("cgroup.kill"), "1").is_err() {
            for p in read(&self.dir.join("cgroup.procs")).unwrap_or_default().split_whitespace() {
                if let Ok(pid) = p.parse() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }

    /// Remove the leaf once it is empty (retrying briefly while the kernel reaps).
    pub fn remove(self) {
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_leaf_that_cannot_be_had_is_an_error() {
        let none = |need| CgroupPlan { need, source: CgroupSource::Unavailable(NoCgroup::NotMounted), limits: CgLimits::default() };
        let e = obtain(&none(CgroupNeed::Required("--procs"))).unwrap_err().to_string();
        assert!(e.starts_with("--procs: no cgroup can be used: cgroup v2 is not mounted"), "{e}");
        assert!(matches!(obtain(&none(CgroupNeed::Preferred)).unwrap(), Obtained::None(why) if why.starts_with("cgroup v2 is not mounted")));
    }
}
