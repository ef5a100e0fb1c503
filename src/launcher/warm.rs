//! Parent half of warm sandboxes: start a keeper, find and check one, join it for a run, end
//! it. The child halves are `child::keeper` (the keeper's steps) and `child::run_warm` (a
//! run's init); what is kept and what is fresh is `policy::warm`.
//!
//! A run joins by a child of the launcher that shares its memory until it ends (the joiner,
//! vfork-style), enters the keeper's user, mount and network namespaces with setns and
//! clones the run's init with CLONE_PARENT into new pid, mount (a copy of the keeper's),
//! ipc, uts and cgroup namespaces: init is the
//! launcher's own child, supervised exactly as a fresh run's, and the keeper never forks,
//! never reads a request and never sees a run.
//!
//! A keeper is trusted only after it is checked: the process recorded is still the one that
//! was started (its start time), and its namespaces are the ones recorded (their inode
//! numbers), the user namespace owned by the caller. Anything else is never joined and never
//! signalled; it is forgotten, and a new keeper is started.

use crate::child;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::policy::warm::WarmPlan;
use crate::sync::{Msg, recv_msg, send_msg};
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// The keeper's namespaces: a user namespace (the maps), a mount namespace (the tree), a
/// network namespace (loopback only), and a pid namespace of its own (its /proc, and no run
/// can see it).
pub const KEEPER_FLAGS: libc::c_int = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
/// What the joiner clones a run's init into, besides the keeper's namespaces.
pub const RUN_FLAGS: libc::c_int = libc::CLONE_PARENT | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWCGROUP;
/// A detached keeper nobody used for this long ends by itself (seconds).
pub const DEFAULT_IDLE: u64 = 600;
/// How long a starter waits for its keeper's tree.
const READY_TIMEOUT_MS: u16 = 10_000;

/// A checked keeper and its namespaces, ready to be joined.
#[derive(Debug)]
pub struct Keeper {
    pub pid: Pid,
    pub key: u64,
    user: OwnedFd,
    mnt: OwnedFd,
    net: OwnedFd,
    /// A pidfd opened before the process was checked: it names that process and no other.
    pidfd: Option<OwnedFd>,
    /// An attached keeper's channel: it ends when this closes (`None`: detached).
    chan: Option<OwnedFd>,
}

fn err(what: impl Into<String>, e: Errno) -> Error {
    Error::sys(what.into(), e)
}

/// Clone the keeper from this (single-threaded) process and wait until its tree is built.
/// `watch`: a detached keeper's state file (it ends when the file is removed or idle).
fn spawn(p: &Policy, watch: Option<&OwnedFd>, idle_s: u64) -> Result<(Pid, OwnedFd)> {
    sys::single_threaded().map_err(|e| err("warm: the launcher must be single-threaded", e))?;
    let (chan, child_chan) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(|e| err("socketpair", e))?;
    let mut plan = super::plan::prepare(p, super::plan::keeper_ops(p)?, [None, None, None], child_chan, None)?;
    plan.wait_for_net = false;
    let pid = match sys::clone_fork(KEEPER_FLAGS) {
        Ok(None) => {
            drop(chan);
            child::keeper(&plan, watch, idle_s)
        }
        Ok(Some(pid)) => pid,
        Err(e) => return Err(err(format!("clone the keeper (0x{KEEPER_FLAGS:x})"), e)),
    };
    drop(plan);
    let abort = |e: Error| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = sys::wait4(pid, false);
        e
    };
    if super::userns::write_maps(pid, &p.ids).map_err(abort)? {
        send_msg(chan.as_fd(), &Msg::Go).map_err(|e| abort(err("send(Go) to the keeper", e)))?;
    }
    let mut fds = [PollFd::new(chan.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(READY_TIMEOUT_MS)) {
        Ok(1..) => {}
        _ => return Err(abort(Error::host("the warm sandbox's keeper did not get ready in 10 s", "run the same command without warm mode to see which step fails"))),
    }
    match recv_msg(chan.as_fd(), false) {
        Ok(Some(Msg::Started)) => Ok((pid, chan)),
        Ok(Some(Msg::Failed { stage, errno, what })) => Err(abort(Error::Child {
            stage,
            errno: Errno::from_raw(errno),
            what: format!("warm sandbox keeper: {}", what.as_str()),
            fix: "run the same command without warm mode for the full diagnosis".into(),
        })),
        _ => Err(abort(Error::host("the warm sandbox's keeper ended while building its tree", "run the same command without warm mode"))),
    }
}

/// The namespaces of process `pid`, opened through one /proc/PID directory (so all refer to
/// the same process), with the process's start time.
fn open_ns(pid: Pid) -> nix::Result<(u64, [OwnedFd; 3])> {
    let dir = open(format!("/proc/{pid}").as_str(), OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let stat = openat(&dir, "stat", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut text = String::new();
    std::fs::File::from(stat).read_to_string(&mut text).map_err(|_| Errno::EIO)?;
    // field 22, counted after the command name's closing parenthesis (field 2)
    let start = text.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(19)).and_then(|s| s.parse().ok()).ok_or(Errno::EIO)?;
    let ns = |n: &str| openat(&dir, format!("ns/{n}").as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
    Ok((start, [ns("user")?, ns("mnt")?, ns("net")?]))
}

fn inode(fd: &OwnedFd) -> u64 {
    fstat(fd).map(|s| s.st_ino).unwrap_or(0)
}

impl Keeper {
    /// This process's own child (its pid cannot be reused before it is reaped).
    fn from_pid(pid: Pid, key: u64, chan: Option<OwnedFd>) -> Result<Keeper> {
        let (_, [user, mnt, net]) = open_ns(pid).map_err(|e| err(format!("open the keeper's namespaces (/proc/{pid}/ns)"), e))?;
        Ok(Keeper { pid, key, user, mnt, net, pidfd: sys::pidfd_open(pid).ok(), chan })
    }

    /// A keeper held by this process: it ends when this process does (or `end`).
    pub fn start(p: &Policy, w: &WarmPlan) -> Result<Keeper> {
        let (pid, chan) = spawn(p, None, 0)?;
        Keeper::from_pid(pid, w.key, Some(chan))
    }

    /// A keeper that outlives this process, recorded in the file `state` (in a directory
    /// only the caller can write). Started in the background: this returns at once, and
    /// until the keeper is ready `find` sees none (runs are then fresh).
    pub fn start_detached(p: &Policy, w: &WarmPlan, state: &Path, idle_s: u64) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(state)
            .map_err(|e| Error::io(format!("create the keeper's state file {}", state.display()), e))?;
        let watch: OwnedFd = open(state, OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(|e| err(format!("open {}", state.display()), e))?;
        match sys::clone_fork(0) {
            Ok(Some(starter)) => {
                // reaped at once: the starter forks and leaves as soon as its keeper is ready
                sys::remember_to_reap(starter);
                Ok(())
            }
            Ok(None) => {
                // the starter: it holds nothing of the command that forked it (the box's lock
                // among them: flock belongs to the open file, which a fork shares), and
                // leaves with exit_now, dropping nothing it inherited
                let _ = sys::close_all_except([watch.as_fd(), file.as_fd()]);
                sys::reset_signals();
                let _ = nix::unistd::setsid();
                let code = match spawn(p, Some(&watch), idle_s) {
                    Ok((pid, _chan)) => match open_ns(pid) {
                        Ok((start, [u, m, n])) => {
                            let line = format!("ward-keeper 1 pid={pid} start={start} key={:016x} user={} mnt={} net={}\n", w.key, inode(&u), inode(&m), inode(&n));
                            let mut f = file;
                            if f.write_all(line.as_bytes()).is_ok() { 0 } else { 1 }
                        }
                        Err(_) => 1,
                    },
                    Err(_) => 1,
                };
                sys::exit_now(code)
            }
            Err(e) => Err(err("fork the keeper's starter", e)),
        }
    }

    /// The keeper recorded in `state`, checked; `None` (and the record forgotten) when there
    /// is none, it has ended, or it is not the process and namespaces recorded.
    pub fn find(state: &Path) -> Option<Keeper> {
        let text = std::fs::read_to_string(state).ok()?;
        let field = |k: &str| text.split_whitespace().find_map(|f| f.strip_prefix(k)?.strip_prefix('=')).map(str::to_string);
        let parsed = (|| {
            if !text.starts_with("ward-keeper 1 ") {
                return None;
            }
            let pid: i32 = field("pid")?.parse().ok()?;
            let start: u64 = field("start")?.parse().ok()?;
            let key = u64::from_str_radix(&field("key")?, 16).ok()?;
            let ino = |k: &str| field(k)?.parse::<u64>().ok();
            Some((Pid::from_raw(pid), start, key, [ino("user")?, ino("mnt")?, ino("net")?]))
        })();
        let Some((pid, start, key, inos)) = parsed else {
            return None; // empty while a starter works, or not ours: runs are fresh
        };
        // the pidfd first: if the check below passes, it names the process checked
        let pidfd = sys::pidfd_open(pid).ok();
        // a keeper of another ward binary (an upgrade since) built its tree by other rules
        let exe = |p: &str| std::fs::metadata(p).map(|m| (std::os::unix::fs::MetadataExt::dev(&m), std::os::unix::fs::MetadataExt::ino(&m))).ok();
        let same_binary = exe(&format!("/proc/{pid}/exe")).is_some_and(|k| Some(k) == exe("/proc/self/exe"));
        let checked = open_ns(pid).ok().filter(|(s, fds)| {
            same_binary
                && *s == start
                && fds.iter().map(inode).eq(inos)
                && sys::ns_owner_uid(fds[0].as_fd()).is_ok_and(|u| u == nix::unistd::geteuid().as_raw())
        });
        match checked {
            Some((_, [user, mnt, net])) => {
                // a run keeps it alive: the idle time counts from the last one
                let _ = std::fs::File::options().append(true).open(state).and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Some(Keeper { pid, key, user, mnt, net, pidfd, chan: None })
            }
            None => {
                let _ = std::fs::remove_file(state);
                None
            }
        }
    }

    /// End the keeper recorded in `state` (if it checks out) and remove the record.
    pub fn end_recorded(state: &Path) {
        if let Some(k) = Keeper::find(state) {
            k.end();
        }
        let _ = std::fs::remove_file(state);
    }

    /// End this keeper now.
    pub fn end(self) {
        if let Some(fd) = &self.pidfd {
            // the process checked, even if it has ended since (then nothing happens)
            let _ = sys::pidfd_kill(fd.as_fd());
        }
        if self.chan.is_some() {
            let _ = sys::wait4(self.pid, false);
        }
    }

    pub fn namespaces(&self) -> [BorrowedFd<'_>; 3] {
        [self.user.as_fd(), self.mnt.as_fd(), self.net.as_fd()]
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // an attached keeper sees its channel close and ends; reap it
        if self.chan.take().is_some() {
            let _ = sys::wait4(self.pid, false);
        }
    }
}

/// End this caller's detached keepers that nobody can use any more: their state file was
/// removed or records another process (a box removed by hand, a crash between the steps).
/// Attached keepers (a running batch's) and recorded ones are left alone. Returns how many.
pub fn end_stale() -> usize {
    let me = nix::unistd::geteuid().as_raw();
    let mut n = 0;
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    for e in procs.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim_end() != "ward-keeper").unwrap_or(true) {
            continue;
        }
        if std::os::unix::fs::MetadataExt::uid(&match std::fs::metadata(format!("/proc/{pid}")) { Ok(m) => m, Err(_) => continue }) != me {
            continue;
        }
        // a detached keeper holds its state file (fd 3 or 4) and nothing else of note
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        let state = fds.flatten().filter_map(|f| std::fs::read_link(f.path()).ok()).find(|t| t.file_name().is_some_and(|n| n == "keeper" || n == "keeper (deleted)"));
        let Some(state) = state else { continue }; // attached: its launcher ends it
        let recorded = std::fs::read_to_string(&state).is_ok_and(|t| t.split_whitespace().any(|f| f == format!("pid={pid}")));
        // a record being written (by its starter, a few ms) is not stale
        let settled = std::fs::metadata(&state).map_or(true, |m| m.modified().is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() >= 10)));
        if !recorded && settled {
            if let Ok(fd) = sys::pidfd_open(Pid::from_raw(pid)) {
                // the pidfd names the process just read; if it has ended since, nothing happens
                if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "ward-keeper") && sys::pidfd_kill(fd.as_fd()).is_ok() {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Step "spawn" of a warm run: the joiner, a child sharing the launcher's memory until it
/// ends (vfork: nothing of the launcher is copied for it), enters the keeper's namespaces
/// and clones init as this process's child (CLONE_PARENT), in the run's leaf when there is
/// one; it leaves init's pid (or what failed) in memory the launcher reads once it has
/// ended. In init this runs `child::run_warm` and never returns.
pub fn join(k: &Keeper, plan: &child::Plan, leaf: Option<BorrowedFd<'_>>) -> Result<Pid> {
    let flags = if plan.own_userns { RUN_FLAGS | libc::CLONE_NEWUSER } else { RUN_FLAGS };
    // a user namespace of the run's own: its maps are written by the joiner, in the keeper's
    // (its parent), through the host's /proc (the keeper's mount namespace has another)
    let host_proc = match plan.own_userns {
        true => Some(open("/proc", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| err("open /proc", e))?),
        false => None,
    };
    let write_maps = |pid: Pid, proc: &OwnedFd| -> nix::Result<()> {
        for (file, map) in [("uid_map", &plan.uid_map), ("gid_map", &plan.gid_map)] {
            // the path on the stack: the joiner allocates nothing (its heap is the launcher's)
            let mut path = [0u8; 40];
            let mut at = &mut path[..];
            std::io::Write::write_fmt(&mut at, format_args!("{pid}/{file}")).map_err(|_| Errno::ENAMETOOLONG)?;
            let len = 40 - at.len();
            let f = openat(proc, &path[..len], OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
            nix::unistd::write(&f, map.to_bytes())?;
        }
        Ok(())
    };
    // (init's pid, or -errno; the step that failed)
    let mut report = (0i32, 0usize);
    // an init cloned but ended again (its maps could not be written), to reap
    let mut killed = 0i32;
    let joiner = sys::spawn_sharing_memory(&mut || {
        let [u, m, n] = k.namespaces();
        for (i, (fd, flag)) in [(u, nix::sched::CloneFlags::CLONE_NEWUSER), (m, nix::sched::CloneFlags::CLONE_NEWNS), (n, nix::sched::CloneFlags::CLONE_NEWNET)].into_iter().enumerate() {
            if let Err(e) = nix::sched::setns(fd, flag) {
                report = (-(e as i32), i);
                return child::EXIT_SETUP_FAILED;
            }
        }
        match sys::clone3_joiner(flags, leaf) {
            Ok(None) => child::run_warm(plan),
            Ok(Some(pid)) => match host_proc.as_ref().map(|p| write_maps(pid, p)) {
                Some(Err(e)) => {
                    // init waits for its maps (and dies with the launcher): end it now
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    killed = pid.as_raw();
                    report = (-(e as i32), 4);
                }
                _ => report = (pid.as_raw(), 3),
            },
            Err(e) => report = (-(e as i32), 3),
        }
        0
    })
    .map_err(|e| err("clone the joiner (CLONE_VM|CLONE_VFORK)", e))?;
    let _ = sys::wait4(joiner, false);
    if killed > 0 {
        let _ = sys::wait4(Pid::from_raw(killed), false);
    }
    let (v, step) = report;
    if v > 0 {
        return Ok(Pid::from_raw(v));
    }
    let what = ["setns(user namespace)", "setns(mount namespace)", "setns(network namespace)", "clone(the run's init)", "write the run's id maps"].get(step).copied().unwrap_or("join");
    Err(Error::Host {
        what: format!("cannot join the warm sandbox (keeper {}): {what} => {}", k.pid, crate::error::errno_name(Errno::from_raw(-v))),
        fix: "end the warm sandbox (isolate --cleanup, or ward cleanup) and run again".into(),
    })
}
