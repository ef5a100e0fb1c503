//! The sandbox's init: pid 1 of the new pid namespace. It starts the program (a child that
//! shares init's memory until its execve, as vfork), reaps every
//! process that ends up as its child (orphans are reparented to it), forwards SIGTERM, SIGINT
//! and SIGHUP from the launcher to the program, and when the program ends kills everything
//! else in the sandbox, reaps it, and reports the program's status and the resource use of
//! the whole tree (RUSAGE_CHILDREN: only the processes it reaped, not its own setup work).
//!
//! Signals arrive blocked (the launcher blocked them before clone) and are read from a
//! signalfd, so no handler runs asynchronously. Only signals sent from outside the sandbox
//! (sender pid 0 as seen from inside: the launcher) are forwarded; the program cannot make
//! init do anything by signalling it.

pub mod hostname;
pub mod keep;
pub mod mount;
pub mod net;
pub mod userns;

use crate::child::Plan;
use crate::sync::{ExitReport, Msg, send_msg};
use crate::sys;
use nix::errno::Errno;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

/// The signals init waits for (blocked in the launcher before clone, so blocked here).
pub fn signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        s.add(sig);
    }
    s
}

pub fn now_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64).unwrap_or(0)
}

fn raw_status(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, code) => Some((code & 0xff) << 8),
        WaitStatus::Signaled(_, sig, core) => Some(sig as i32 | if core { 0x80 } else { 0 }),
        _ => None,
    }
}

pub fn supervise(plan: &Plan) -> ! {
    let set = signals();
    // From here on init is not dumpable: the program (same uid, no capabilities) cannot
    // ptrace it or open its /proc files. (Not earlier: the network helper opens init's
    // /proc/PID/ns files while the root is being built.)
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        crate::child::report(plan, crate::sync::Stage::Init, &crate::child::fail(e, format_args!("prctl(PR_SET_DUMPABLE, 0)")));
        sys::exit_now(crate::child::EXIT_SETUP_FAILED);
    }
    // The program shares init's memory until its execve (no copy of the address space; init
    // waits meanwhile): its steps change only its own process, and what they allocate is
    // left behind in init's memory. It writes the clock at its execve into `exec_at`.
    let exec_at = std::cell::Cell::new(0);
    let prog = match sys::spawn_sharing_memory(&mut || crate::child::program(plan, &exec_at)) {
        Ok(pid) => pid,
        Err(e) => {
            crate::child::report(plan, crate::sync::Stage::Init, &crate::child::fail(e, format_args!("clone(CLONE_VM|CLONE_VFORK)")));
            sys::exit_now(crate::child::EXIT_SETUP_FAILED);
        }
    };
    // the program has exec'd (or ended trying): its wall time starts at its execve
    let start = match exec_at.get() {
        0 => now_ns(),
        t => t,
    };
    let _ = send_msg(plan.chan(), &Msg::Started);
    let sigfd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = kill(prog, Signal::SIGKILL);
            crate::child::report(plan, crate::sync::Stage::Init, &crate::child::fail(e, format_args!("signalfd()")));
            sys::exit_now(crate::child::EXIT_SETUP_FAILED);
        }
    };
    let mut status: Option<i32> = None;
    let mut end = start;
    while status.is_none() {
        let Ok(Some(info)) = sigfd.read_signal() else { continue };
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else { continue };
        match sig {
            Signal::SIGCHLD => loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(st) => {
                        if st.pid() == Some(prog) {
                            if let Some(raw) = raw_status(st) {
                                status = Some(raw);
                                end = now_ns();
                            }
                        }
                    }
                }
            },
            // From the launcher (outside the pid namespace, so pid 0 here): pass it on.
            other if info.ssi_pid == 0 => {
                let _ = kill(prog, other);
            }
            _ => {}
        }
    }
    // The program is gone: nothing else may outlive it.
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Err(Errno::ECHILD) => break,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
    }
    let ru = getrusage(UsageWho::RUSAGE_CHILDREN).ok();
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    let report = ExitReport {
        wait_status: status.unwrap_or(0),
        wall_ns: end.saturating_sub(start),
        utime_us: ru.map(|r| us(r.user_time())).unwrap_or(0),
        stime_us: ru.map(|r| us(r.system_time())).unwrap_or(0),
        maxrss_kib: ru.map(|r| r.max_rss() as u64).unwrap_or(0),
        nvcsw: ru.map(|r| r.voluntary_context_switches() as u64).unwrap_or(0),
        nivcsw: ru.map(|r| r.involuntary_context_switches() as u64).unwrap_or(0),
    };
    let _ = send_msg(plan.chan(), &Msg::Exited(report));
    sys::exit_now(0)
}
