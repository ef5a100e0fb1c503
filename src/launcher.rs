//! The parent pipeline: preflight, open the program's stdio with the caller's rights, clone
//! the child into new user, mount, pid, ipc, uts, cgroup and net namespaces, write its id
//! maps, tell it to go, then supervise: forward SIGTERM/SIGINT/SIGHUP to the sandbox's init,
//! collect its report, reap it.
//!
//! The launcher stays single-threaded until clone (asserted), and supervises with a
//! signalfd and poll, so no signal handler or thread exists while the child is forked.

use crate::child::{self, Plan};
use crate::error::{Error, Result};
use crate::idmap;
use crate::policy::Policy;
use crate::sync::{Msg, Stage, recv_msg_fd, send_msg};
use crate::sys;
use crate::verdict::{Enforced, Ending};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// The namespaces every sandbox gets.
pub const CLONE_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWNET;

/// What happened, and what was in force.
#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    pub enforced: Option<Enforced>,
    /// Calls the seccomp filter denied, as the supervisor saw them.
    pub blocked: Vec<crate::seccomp::Blocked>,
    /// The sandbox was killed for a denied call (kill-on-deny).
    pub killed_for_syscall: bool,
    /// The launcher killed the sandbox for this limit.
    pub limit_hit: Option<crate::limits::Hit>,
}

pub fn assert_single_threaded() -> Result<()> {
    match sys::thread_count() {
        Some(1) | None => Ok(()),
        Some(n) => Err(Error::invalid(format!("the launcher has {n} threads; it must fork from a single-threaded process"), "call ward's library before starting threads")),
    }
}

fn open_stdio(p: &Policy) -> Result<[Option<File>; 3]> {
    let open_in = |path: &std::path::Path| {
        File::open(path).map_err(|e| Error::invalid(format!("--stdin {}: {e}", path.display()), "check that the file exists and that you can read it"))
    };
    let open_out = |what: &str, path: &std::path::Path| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| Error::invalid(format!("{what} {}: {e}", path.display()), "check that the directory exists and that you can write there"))
    };
    let stdout = p.stdout.as_deref().map(|x| open_out("--stdout", x)).transpose()?;
    let stderr = if p.stderr_to_stdout {
        // the same open file as stdout (one offset), or the launcher's own stdout
        let dup = match &stdout {
            Some(f) => f.try_clone(),
            None => std::io::stdout().as_fd().try_clone_to_owned().map(File::from),
        };
        Some(dup.map_err(|e| Error::io("duplicate stdout for stderr", e))?)
    } else {
        p.stderr.as_deref().map(|x| open_out("--stderr", x)).transpose()?
    };
    Ok([p.stdin.as_deref().map(open_in).transpose()?, stdout, stderr])
}

fn userns_error(errno: Errno) -> Error {
    let blockers = crate::probe::userns_blockers();
    let fix = if blockers.is_empty() {
        "run 'ward check' to see what the host forbids".to_string()
    } else {
        blockers.iter().map(|(what, fix)| format!("{what}: {fix}")).collect::<Vec<_>>().join("; ")
    };
    Error::Host {
        what: format!("cannot create the sandbox's namespaces: clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|...) => {}", crate::error::errno_name(errno)),
        fix: format!("unprivileged user namespaces are not allowed on this host; {fix}"),
    }
}

fn child_error(stage: Stage, errno: i32, what: &str) -> Error {
    let errno = Errno::from_raw(errno);
    let fix = match (stage, errno) {
        (Stage::Exec, Errno::ENOENT | Errno::ENOTDIR) => {
            "the program is not inside the sandbox: give its full path, bind its directory with --ro-bind, or run from its directory".into()
        }
        (Stage::Exec, Errno::EACCES) => "the file is not executable inside the sandbox (mode, or a noexec mount)".into(),
        (Stage::Exec, Errno::ENOEXEC) => "the file is not a program this kernel can run (missing #! line?)".into(),
        (Stage::Mount | Stage::UserNs | Stage::Net | Stage::Hostname, Errno::EPERM | Errno::EACCES) => {
            "the host may restrict unprivileged user namespaces (e.g. AppArmor on Ubuntu 23.10+); run 'ward check'".into()
        }
        _ => String::new(),
    };
    Error::Child { stage, errno, what: what.to_string(), fix }
}

/// Run the policy's program in a new sandbox and wait for it.
pub fn run(policy: &Policy) -> Result<Outcome> {
    assert_single_threaded()?;
    sys::reap_remembered();
    let filter = policy.seccomp.as_ref().map(|s| crate::seccomp::filter(s, policy.cache_dir.as_deref())).transpose()?;
    let stdio = open_stdio(policy)?;
    let (parent_sock, child_sock) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    let plan = Plan::prepare(
        policy,
        std::array::from_fn(|i| stdio[i].as_ref().map(|f| f.as_raw_fd())),
        child_sock.as_raw_fd(),
        filter.as_ref().map(|f| f.bpf.clone()),
    )?;

    // Block the signals we supervise before clone: the child's init inherits the mask and
    // takes them with sigwait; here they are read from a signalfd.
    let mask = child::init::signals();
    let mut old_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old_mask)).map_err(|e| Error::sys("sigprocmask(SIG_BLOCK)", e))?;
    let result = spawn_and_supervise(policy, &plan, parent_sock, child_sock, &mask).map(|mut o| {
        o.enforced = o.enforced.map(|mut e| {
            e.seccomp = crate::verdict::seccomp_info(policy.seccomp.as_ref(), filter.as_ref());
            e
        });
        o
    });
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    drop(stdio);
    result
}

fn spawn_and_supervise(policy: &Policy, plan: &Plan, parent_sock: OwnedFd, child_sock: OwnedFd, mask: &SigSet) -> Result<Outcome> {
    let sigfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::sys("signalfd", e))?;
    // The run's cgroup leaf, when a delegated subtree is there; otherwise the fallback.
    let mut cg_note = policy.cgroup_unavailable.clone();
    let mut leaf = match &policy.cgroup {
        Some((sub, l)) => match crate::cgroup::prepare(sub, *l) {
            Ok(leaf) => Some(leaf),
            Err(e) if policy.require_cgroup || l.procs.is_some() || l.cpus.is_some() => return Err(e),
            Err(e) => {
                cg_note = e.to_string();
                None
            }
        },
        None => None,
    };
    let cloned = match &leaf {
        Some(l) => match sys::clone3_fork(CLONE_FLAGS, Some(l.raw_fd())) {
            Err(Errno::ENOSYS) => {
                cg_note = "the kernel has no clone3 (Linux 5.7+) to start the sandbox in its cgroup".into();
                if let Some(l) = leaf.take() {
                    l.remove();
                }
                if policy.require_cgroup {
                    return Err(Error::host(format!("--require-cgroup: {cg_note}"), "use a newer kernel"));
                }
                sys::clone_fork(CLONE_FLAGS)
            }
            other => other,
        },
        None => sys::clone_fork(CLONE_FLAGS),
    };
    let init = match cloned {
        Ok(None) => {
            // The sandbox's init. Close the launcher's end so a dead launcher reads as EOF.
            drop(parent_sock);
            drop(sigfd);
            child::run(plan)
        }
        Ok(Some(pid)) => pid,
        Err(e @ (Errno::EPERM | Errno::ENOSPC | Errno::EUSERS | Errno::EINVAL | Errno::EACCES)) => return Err(userns_error(e)),
        Err(e) => return Err(Error::sys(format!("clone(0x{CLONE_FLAGS:x})"), e)),
    };
    drop(child_sock);
    let abort = |e: Error| {
        let _ = kill(init, Signal::SIGKILL);
        let _ = sys::wait4(init, false);
        e
    };
    if idmap::write_maps(init, &policy.ids).map_err(abort)? {
        send_msg(parent_sock.as_fd(), &Msg::Go).map_err(|e| abort(Error::sys("send(Go)", e)))?;
    }
    // The helper starts while init builds the root; init waits for NetReady before the program.
    let helper = match &policy.net {
        Some(n) => {
            let h = crate::net::start(n, init).map_err(abort)?;
            send_msg(parent_sock.as_fd(), &Msg::NetReady).map_err(|e| abort(Error::sys("send(NetReady)", e)))?;
            Some(h)
        }
        None => None,
    };
    let net_info = crate::net::info(policy.net.as_ref(), helper.as_ref());

    let mut report = None;
    let mut failed: Option<Error> = None;
    let mut sock_open = true;
    let mut listener: Option<OwnedFd> = None;
    let mut supervisor = crate::seccomp::Supervisor::default();
    let mut watch = crate::limits::Watch::new(policy.limits);
    if leaf.is_some() {
        watch.use_cgroup();
    }
    let mut started_at: Option<std::time::Instant> = None;
    let mut pre_exec_us: u64 = 0;
    let handle = |m: Msg, report: &mut Option<crate::sync::ExitReport>, failed: &mut Option<Error>| match m {
        Msg::Exited(r) => *report = Some(r),
        Msg::Failed { stage, errno, what } => {
            failed.get_or_insert_with(|| child_error(stage, errno, what.as_str()));
        }
        Msg::Go | Msg::Listener | Msg::NetReady | Msg::Started | Msg::PreExec(_) => {}
    };
    let init_status = loop {
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let sock_at = sock_open.then(|| {
            fds.push(PollFd::new(parent_sock.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let listener_at = listener.as_ref().map(|l| {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let timeout = match watch.timeout() {
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 1,
            Err(e) => return Err(abort(Error::sys("poll", e))),
        };
        if n == 0 && watch.hit.is_none() && watch.check(init, leaf.as_ref()).is_some() {
            // A limit is reached: the whole sandbox goes (init's death kills the namespace).
            if let Some(l) = &leaf {
                l.kill();
            }
            let _ = kill(init, Signal::SIGKILL);
        }
        let ready = |i: Option<usize>| i.and_then(|i| fds[i].revents()).unwrap_or(PollFlags::empty());
        let (sock_ev, listener_ev) = (ready(sock_at), ready(listener_at));
        drop(fds);
        if !sock_ev.is_empty() {
            match recv_msg_fd(parent_sock.as_fd(), true) {
                Ok(Some((Msg::Listener, Some(fd)))) => listener = Some(fd),
                Ok(Some((Msg::PreExec(ns), _))) => {
                    pre_exec_us = ns / 1000;
                    watch.set_pre_exec(ns as f64 / 1e9);
                }
                Ok(Some((Msg::Started, _))) => {
                    watch.start(leaf.as_ref());
                    started_at.get_or_insert_with(std::time::Instant::now);
                }
                Ok(Some((m, _))) => handle(m, &mut report, &mut failed),
                Ok(None) => sock_open = false,
                Err(Errno::EAGAIN) => {}
                Err(_) => sock_open = false,
            }
        }
        if listener_ev.contains(PollFlags::POLLIN) {
            if let (Some(l), Some(sp)) = (&listener, &policy.seccomp) {
                if supervisor.handle(l.as_raw_fd(), sp) {
                    let _ = kill(init, Signal::SIGKILL);
                }
            }
        } else if listener_ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            listener = None; // every process with the filter is gone
        }
        let mut reaped = None;
        while let Ok(Some(si)) = sigfd.read_signal() {
            match Signal::try_from(si.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Ok(Some(st)) = sys::wait4(init, true) {
                        reaped = Some(st);
                    }
                }
                Ok(sig) => {
                    let _ = kill(init, sig);
                }
                Err(_) => {}
            }
        }
        if let Some(st) = reaped {
            break st;
        }
    };
    // The run's accounting, then its leaf goes (one cgroup.kill ends anything left).
    let cg_usage = leaf.as_ref().map(|l| l.usage());
    let cg_info = match &leaf {
        Some(l) => format!(
            "leaf {} in the delegated subtree {} ({}; controllers: {}); cpu time from cpu.stat, peak memory from memory.peak",
            l.dir.display(),
            l.subtree.dir.display(),
            l.subtree.how,
            l.subtree.controllers.join(" ")
        ),
        None => format!("unavailable ({cg_note}); cpu time and peak memory come from rusage"),
    };
    if let Some(l) = leaf.take() {
        l.kill();
        l.remove();
    }
    // The sandbox is gone: end the helper without waiting for it.
    if let Some(h) = helper {
        h.finish();
    }
    // Init has exited; everything it sent is already queued.
    while let Ok(Some((m, _))) = recv_msg_fd(parent_sock.as_fd(), true) {
        if let Msg::PreExec(ns) = m {
            pre_exec_us = ns / 1000;
        }
        handle(m, &mut report, &mut failed);
    }
    let enforced = Some(Enforced { network: net_info, cgroup: cg_info, ..Enforced::from_policy(policy) });
    let blocked = std::mem::take(&mut supervisor.blocked);
    let killed_for_syscall = supervisor.killed;
    let mut limit_hit = watch.hit;
    if cg_usage.is_some_and(|u| u.oom_kills > 0) && limit_hit.is_none() {
        limit_hit = Some(crate::limits::Hit::Memory);
    }
    if limit_hit.is_some() && report.is_none() {
        // Killed by the launcher: init never reported; its rusage covers every process it
        // (or the kernel, tearing the namespace down) reaped.
        // When the kernel tears the namespace down, the processes it kills are not all
        // accounted to init: the CPU time is the larger of init's rusage and the last sample.
        let (_, ru) = init_status;
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        let (utime, stime) = (us(ru.ru_utime), us(ru.ru_stime));
        let sampled = (watch.max_sampled_cpu * 1e6) as u64 + pre_exec_us; // subtracted once below
        report = Some(crate::sync::ExitReport {
            wait_status: libc::SIGKILL,
            wall_ns: started_at.map(|t| t.elapsed().as_nanos() as u64).unwrap_or(0),
            utime_us: utime.max(sampled.saturating_sub(stime)),
            stime_us: stime,
            maxrss_kib: (ru.ru_maxrss as u64).max(watch.max_sampled_rss / 1024),
            nvcsw: ru.ru_nvcsw as u64,
            nivcsw: ru.ru_nivcsw as u64,
        });
    }
    if let Some(e) = failed {
        return Ok(Outcome { ending: Ending::NotStarted(e), enforced: None, blocked, killed_for_syscall, limit_hit });
    }
    // With a leaf: the peak memory of the whole run is memory.peak. CPU time stays init's
    // rusage of everything it reaped (exact, and without init's own setup work), except when
    // the sandbox was killed and init never reported: then the leaf's count since the
    // program started.
    if let (Some(u), Some(r)) = (cg_usage, report.as_mut()) {
        if let Some(peak) = u.peak {
            r.maxrss_kib = peak / 1024;
        }
        if limit_hit.is_some() {
            let used = (u.usage_usec as f64 - watch.cgroup_baseline_us()).max(0.0) as u64;
            let sys_share = if u.usage_usec > 0 { u.system_usec as f64 / u.usage_usec as f64 } else { 0.0 };
            r.stime_us = (used as f64 * sys_share) as u64;
            r.utime_us = used - r.stime_us;
        }
    }
    // ward's own steps in the program's process before execve are not the program's time
    // (mostly system time: Landlock, the seccomp filter load).
    if let Some(r) = report.as_mut() {
        let from_sys = pre_exec_us.min(r.stime_us);
        r.stime_us -= from_sys;
        r.utime_us = r.utime_us.saturating_sub(pre_exec_us - from_sys);
    }
    if killed_for_syscall {
        // init died with the sandbox: there is no report, only the denied call.
        let r = report.unwrap_or(crate::sync::ExitReport { wait_status: libc::SIGSYS, ..Default::default() });
        return Ok(Outcome { ending: Ending::Ran(r), enforced, blocked, killed_for_syscall, limit_hit });
    }
    match report {
        Some(r) => Ok(Outcome { ending: Ending::Ran(r), enforced, blocked, killed_for_syscall, limit_hit }),
        None => {
            let (status, _) = init_status;
            let what = if libc::WIFSIGNALED(status) {
                format!("the sandbox's init was killed by {}", crate::verdict::signal_name(libc::WTERMSIG(status)))
            } else {
                format!("the sandbox's init exited with status {} without a report", libc::WEXITSTATUS(status))
            };
            Ok(Outcome { ending: Ending::NotStarted(Error::host(what, "")), enforced: None, blocked, killed_for_syscall, limit_hit })
        }
    }
}
