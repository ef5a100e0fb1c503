//! The launcher while the sandbox runs: one poll loop over the signalfd, the channel from the
//! child, and the seccomp listener. It forwards SIGTERM/SIGINT/SIGHUP to init, answers
//! denied calls, watches the limits (`watch`) and kills the sandbox for one, checks that the
//! child's messages come in the order the child's lists send them, and waits for init's end
//! (its caller reaps it).
//!
//! Single-threaded: no signal handler runs; signals are read from the signalfd.

use super::cgroup::Leaf;
use super::seccomp::Supervisor;
use super::watch::Watch;
use crate::error::Error;
use crate::policy::Policy;
use crate::policy::limits::Hit;
use crate::sync::{ExitReport, Msg, Stage, recv_msg_fd};
use crate::sys;
use crate::verdict::Blocked;
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// init's own rusage (everything it reaped), from wait4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitUsage {
    pub utime_us: u64,
    pub stime_us: u64,
    pub maxrss_kib: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
}

/// What supervision saw.
#[derive(Debug, Default)]
pub struct Supervised {
    /// init's report (the program ended).
    pub report: Option<ExitReport>,
    /// A step of the child failed before the program started, or the child broke the
    /// protocol.
    pub failed: Option<Error>,
    pub init_status: libc::c_int,
    pub init_usage: InitUsage,
    pub blocked: Vec<Blocked>,
    pub killed_for_syscall: bool,
    pub hit: Option<Hit>,
    /// Wall time since the program started (for a run init never reported).
    pub wall_ns: u64,
    /// CPU the program's process spent in ward's steps before execve.
    pub pre_exec_us: u64,
    pub max_sampled_cpu: f64,
    pub max_sampled_rss: u64,
    pub cgroup_baseline_us: f64,
}

/// The order the child's messages come in (`child::run`, `child::program`): init's steps may
/// fail; then `Started` from init, while the program's process sends the seccomp `Listener`
/// (when there is a filter), then `PreExec`, or fails at a step; last, init's `Exited`. The
/// program's process is forked before `Started` is sent, so its messages may come first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    started: bool,
    listener: bool,
    pre_exec: bool,
    failed: bool,
    exited: bool,
}

impl Sequence {
    /// Accept `m` or say why it is out of order. `seccomp`: the program loads a filter.
    pub fn accept(&mut self, m: &Msg, seccomp: bool) -> Result<(), &'static str> {
        if self.exited {
            return Err("a message after init's report");
        }
        match m {
            Msg::Go | Msg::NetReady | Msg::Stdio(_) => Err("a message only the launcher sends"),
            Msg::Failed { stage, .. } => {
                let in_init = matches!(stage, Stage::UserNs | Stage::Mount | Stage::Net | Stage::Hostname | Stage::Keyring | Stage::Init);
                if self.failed {
                    Err("a second failure")
                } else if in_init && self.started && *stage != Stage::Init {
                    Err("an init step failing after the program started")
                } else if *stage == Stage::Exec && !self.pre_exec {
                    Err("exec failing before the program's last steps")
                } else {
                    self.failed = true;
                    Ok(())
                }
            }
            Msg::Started if self.started => Err("a second Started"),
            Msg::Started => {
                self.started = true;
                Ok(())
            }
            Msg::Listener if !seccomp || self.listener || self.pre_exec => Err("an unexpected seccomp listener"),
            Msg::Listener => {
                self.listener = true;
                Ok(())
            }
            Msg::PreExec(_) if self.pre_exec || (seccomp && !self.listener) || self.failed => Err("PreExec out of order"),
            Msg::PreExec(_) => {
                self.pre_exec = true;
                Ok(())
            }
            Msg::Exited(_) if !self.started => Err("a report before the program started"),
            Msg::Exited(_) => {
                self.exited = true;
                Ok(())
            }
        }
    }
}

/// The degraded mode a masked /proc leaves, only on request.
pub const NO_PROC: &str = "failing that, --no-proc (WARD_ISOLATE_NO_PROC=1 for isolate) runs the program with an empty /proc, and its verdict says so";

fn child_error(stage: Stage, errno: i32, what: &str) -> Error {
    let errno = Errno::from_raw(errno);
    let fix = match (stage, errno) {
        (Stage::Exec, Errno::ENOENT | Errno::ENOTDIR) => {
            "the program is not inside the sandbox: give its full path, bind its directory with --ro-bind, or run from its directory".into()
        }
        (Stage::Exec, Errno::EACCES) => "the file is not executable inside the sandbox (mode, or a noexec mount)".into(),
        (Stage::Exec, Errno::ENOEXEC) => "the file is not a program this kernel can run (missing #! line?)".into(),
        (Stage::Mount, Errno::EPERM) if what.starts_with("mount(proc") => {
            // a runtime's masked /proc: the kernel refuses a procfs that would reveal it
            let masked = crate::host::probe::masked_proc();
            match (crate::host::probe::container_engine(), masked.is_empty()) {
                (Some(engine), false) => format!("this {} container masks {}, so the kernel refuses a fresh /proc: {}; {NO_PROC}", engine.name(), masked.join(" "), engine.masked_proc_fix()),
                (None, false) => format!("/proc has mounts over {}, so the kernel refuses a fresh /proc in a new user namespace: run ward where /proc is not masked; {NO_PROC}", masked.join(" ")),
                _ => "the host may restrict unprivileged user namespaces (e.g. AppArmor on Ubuntu 23.10+); run 'ward check'".into(),
            }
        }
        (Stage::Mount | Stage::UserNs | Stage::Net | Stage::Hostname, Errno::EPERM | Errno::EACCES) => {
            // in a container the runtime's profiles are the likely cause: name them
            use crate::host::probe;
            match (probe::container_engine(), probe::apparmor_profile()) {
                (Some(engine), Some(aa)) => format!("this {} container runs under the AppArmor profile {aa}, which may refuse it: {}; or its seccomp profile does: {}", engine.name(), engine.apparmor_fix(), engine.userns_fix()),
                (Some(engine), None) => format!("this {} container's seccomp profile refuses it to an unprivileged process: {}", engine.name(), engine.userns_fix()),
                (None, _) => "the host may restrict unprivileged user namespaces (e.g. AppArmor on Ubuntu 23.10+); run 'ward check'".into(),
            }
        }
        _ => String::new(),
    };
    Error::Child { stage, errno, what: what.to_string(), fix }
}

/// Supervise the sandbox whose init is `init` until init has ended (it is left a zombie for
/// the caller to reap), or with `until_report` until init's report is in (everything else in
/// the sandbox is gone then, and init is ending: a batch's next run goes meanwhile).
pub fn supervise(p: &Policy, init: Pid, chan: &OwnedFd, sigfd: &SignalFd, leaf: Option<&Leaf>, until_report: bool) -> Result<Supervised, Error> {
    let mut out = Supervised::default();
    let mut seq = Sequence::default();
    let mut sock_open = true;
    let mut listener: Option<OwnedFd> = None;
    let mut supervisor = Supervisor::default();
    let mut watch = Watch::new(p.limits);
    if leaf.is_some() {
        watch.use_cgroup();
    }
    let kill_sandbox = || {
        if let Some(l) = leaf {
            l.kill();
        }
        let _ = kill(init, Signal::SIGKILL);
    };
    // One message from the child, in order, or the sandbox goes.
    let mut take = |m: Msg, fd: Option<OwnedFd>, out: &mut Supervised, watch: &mut Watch, listener: &mut Option<OwnedFd>| {
        if let Err(why) = seq.accept(&m, p.seccomp.is_some()) {
            kill_sandbox();
            out.failed.get_or_insert_with(|| Error::host(format!("the sandbox broke the launcher's protocol: {why}"), "report this as a bug"));
            return;
        }
        match m {
            Msg::Listener => *listener = fd,
            Msg::PreExec(ns) => {
                out.pre_exec_us = ns / 1000;
                watch.set_pre_exec(ns as f64 / 1e9);
            }
            Msg::Started => {
                watch.start(leaf);
            }
            Msg::Exited(r) => out.report = Some(r),
            Msg::Failed { stage, errno, what } => {
                out.failed.get_or_insert_with(|| child_error(stage, errno, what.as_str()));
            }
            Msg::Go | Msg::NetReady | Msg::Stdio(_) => {}
        }
    };
    // A batch's next init may have ended while another run was supervised (its SIGCHLD was
    // read there): look once before waiting for the signal.
    let mut ended_before = sys::wait_ended(init, true).ok().flatten();
    let ended = loop {
        if let Some(st) = ended_before.take() {
            break Some(st);
        }
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let sock_at = sock_open.then(|| {
            fds.push(PollFd::new(chan.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let listener_at = listener.as_ref().map(|l| {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let wait = watch.timeout();
        let due = wait.map(|d| std::time::Instant::now() + d);
        let timeout = match wait {
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 1,
            Err(e) => {
                kill_sandbox();
                let _ = sys::wait_ended(init, false);
                return Err(Error::sys("poll", e));
            }
        };
        // Checked whenever the limits are due, however busy the descriptors keep poll (a
        // flood of seccomp notifications must not starve the limits).
        let due_now = n == 0 || due.is_some_and(|d| std::time::Instant::now() >= d);
        if due_now && watch.hit.is_none() && watch.check(init, leaf).is_some() {
            // A limit is reached: the whole sandbox goes (init's death kills the namespace).
            kill_sandbox();
        }
        let ready = |i: Option<usize>| i.and_then(|i| fds[i].revents()).unwrap_or(PollFlags::empty());
        let (sock_ev, listener_ev) = (ready(sock_at), ready(listener_at));
        drop(fds);
        if !sock_ev.is_empty() {
            match recv_msg_fd(chan.as_fd(), true) {
                Ok(Some((m, fd))) => take(m, fd, &mut out, &mut watch, &mut listener),
                Ok(None) => sock_open = false,
                Err(Errno::EAGAIN) => {}
                Err(_) => sock_open = false,
            }
        }
        if listener_ev.contains(PollFlags::POLLIN) {
            if let (Some(l), Some(sp)) = (&listener, &p.seccomp) {
                if supervisor.handle(l.as_raw_fd(), sp) {
                    kill_sandbox();
                }
            }
        } else if listener_ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            listener = None; // every process with the filter is gone
        }
        let mut reaped = None;
        while let Ok(Some(si)) = sigfd.read_signal() {
            match Signal::try_from(si.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Ok(Some(st)) = sys::wait_ended(init, true) {
                        reaped = Some(st);
                    }
                }
                // the program runs: pass it on (init forwards it)
                Ok(sig) if watch.started() => {
                    let _ = kill(init, sig);
                }
                // before the program started (its process may be waiting in a step before
                // execve, with init waiting for it): end the sandbox now
                Ok(sig) => {
                    kill_sandbox();
                    out.failed.get_or_insert_with(|| Error::host(format!("ward received {sig} before the program started; the sandbox was ended"), ""));
                }
                Err(_) => {}
            }
        }
        if let Some(st) = reaped {
            break Some(st);
        }
        if until_report && out.report.is_some() {
            break None;
        }
    };
    // Init has exited; everything it sent is already queued.
    while let Ok(Some((m, fd))) = recv_msg_fd(chan.as_fd(), true) {
        take(m, fd, &mut out, &mut watch, &mut listener);
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    if let Some((status, ru)) = ended {
        out.init_status = status;
        out.init_usage = InitUsage { utime_us: us(ru.ru_utime), stime_us: us(ru.ru_stime), maxrss_kib: ru.ru_maxrss as u64, nvcsw: ru.ru_nvcsw as u64, nivcsw: ru.ru_nivcsw as u64 };
    }
    out.blocked = std::mem::take(&mut supervisor.blocked);
    out.killed_for_syscall = supervisor.killed;
    out.hit = watch.hit;
    // the program's wall time from its start, or (it never started) from when the run was due
    out.wall_ns = watch.elapsed().as_nanos() as u64;
    out.max_sampled_cpu = watch.max_sampled_cpu;
    out.max_sampled_rss = watch.max_sampled_rss;
    out.cgroup_baseline_us = watch.cgroup_baseline_us();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Note;

    fn failed(stage: Stage) -> Msg {
        Msg::Failed { stage, errno: 2, what: Note::new() }
    }

    #[test]
    fn the_childs_order_is_accepted() {
        // the program's messages may come before init's Started
        for order in [
            vec![Msg::Listener, Msg::Started, Msg::PreExec(1), Msg::Exited(ExitReport::default())],
            vec![Msg::Started, Msg::Listener, Msg::PreExec(1), failed(Stage::Exec), Msg::Exited(ExitReport::default())],
            vec![failed(Stage::Mount)],
            vec![Msg::Started, failed(Stage::Landlock), Msg::Exited(ExitReport::default())],
        ] {
            let mut s = Sequence::default();
            for m in &order {
                assert_eq!(s.accept(m, true), Ok(()), "{order:?}");
            }
        }
        let mut s = Sequence::default();
        assert_eq!(s.accept(&Msg::Started, false), Ok(()));
        assert_eq!(s.accept(&Msg::PreExec(1), false), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        let bad: Vec<(Vec<Msg>, bool)> = vec![
            (vec![Msg::Go], true),
            (vec![Msg::Started, Msg::Started], true),
            (vec![Msg::Started, Msg::PreExec(1)], true), // the filter was never loaded
            (vec![Msg::Listener], false),
            (vec![Msg::Exited(ExitReport::default())], true),
            (vec![Msg::Started, Msg::Listener, Msg::PreExec(1), Msg::Exited(ExitReport::default()), Msg::Started], true),
            (vec![Msg::Started, failed(Stage::Mount)], true),
            (vec![failed(Stage::Exec)], true),
        ];
        for (order, seccomp) in bad {
            let mut s = Sequence::default();
            let results: Vec<_> = order.iter().map(|m| s.accept(m, seccomp)).collect();
            assert!(results.last().is_some_and(|r| r.is_err()), "{order:?}: {results:?}");
        }
    }
}
