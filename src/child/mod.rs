//! Everything that runs inside the sandbox between clone and exec, as one ordered list.
//!
//! `run` is the sandbox's init (pid 1 of the new pid namespace): it waits for the id maps,
//! builds the root, configures the network namespace and the hostname, then forks the program
//! and supervises it (`init`). `program` is the forked program process: its last steps tighten
//! monotonically and end in execve. Each step that fails reports `Msg::Failed { stage, errno,
//! what }` to the launcher and exits, so the user learns which step failed and why.
//!
//! No threads are started here; allocation is limited to what the steps need.

// `Fail` carries its message inline (no allocation between clone and exec), so it is large.
#![allow(clippy::result_large_err)]

pub mod caps;
pub mod init;
pub mod landlock;
pub mod mount;
pub mod net;
pub mod process;
pub mod seccomp;
pub mod userns;

use crate::policy::{Ids, Limit, Policy};
use crate::sync::{Msg, Note, Stage, send_msg};
use crate::sys;
use nix::errno::Errno;
use std::ffi::CString;
use std::fmt;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// Exit code of a child step that failed (the launcher reports the step, not this code).
pub const EXIT_SETUP_FAILED: i32 = 125;

/// A failed step: the errno and what was being done, formatted without allocation.
#[derive(Debug)]
pub struct Fail {
    pub errno: Errno,
    pub what: Note,
}

pub fn fail(errno: Errno, what: fmt::Arguments<'_>) -> Fail {
    Fail { errno, what: Note::from_args(what) }
}

/// Everything the child needs, prepared by the launcher before clone: C strings, fds, ids.
pub struct Plan {
    pub ops: Vec<mount::Op>,
    pub hostname: CString,
    pub chdir: CString,
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub rlimits: Vec<(Limit, Option<u64>)>,
    pub ids: Ids,
    /// `INSIDE OUTSIDE 1` lines for a single mapping (written by the child itself).
    pub uid_map: CString,
    pub gid_map: CString,
    pub new_session: bool,
    /// Files the launcher opened for the program's stdin, stdout and stderr.
    pub stdio: [Option<RawFd>; 3],
    /// The child's end of the channel to the launcher.
    pub chan: RawFd,
    /// The compiled seccomp filter, if any.
    pub seccomp_bpf: Option<Vec<u8>>,
    /// The Landlock ABI and rules, if Landlock is applied.
    pub landlock: Option<crate::landlock::LandlockPolicy>,
    /// A networking helper is being started: wait for `NetReady` before the program.
    pub wait_for_net: bool,
}

fn c(b: &[u8]) -> crate::error::Result<CString> {
    CString::new(b).map_err(|_| crate::error::Error::invalid("a string contains a NUL byte", "remove it"))
}

impl Plan {
    /// Parent half: turn the policy into what the child uses, so the child only does effects.
    pub fn prepare(p: &Policy, stdio: [Option<RawFd>; 3], chan: RawFd, seccomp_bpf: Option<Vec<u8>>) -> crate::error::Result<Plan> {
        Ok(Plan {
            ops: mount::Op::prepare(p)?,
            hostname: c(p.hostname.as_bytes())?,
            chdir: c(p.chdir.as_os_str().as_bytes())?,
            candidates: p.exec_candidates.iter().map(|x| c(x.as_os_str().as_bytes())).collect::<Result<_, _>>()?,
            argv: p.argv.iter().map(|a| c(a.as_bytes())).collect::<Result<_, _>>()?,
            envp: p
                .env
                .iter()
                .map(|(k, v)| {
                    let mut b = k.as_bytes().to_vec();
                    b.push(b'=');
                    b.extend_from_slice(v.as_bytes());
                    c(&b)
                })
                .collect::<Result<_, _>>()?,
            rlimits: p.rlimits.clone(),
            ids: p.ids.clone(),
            uid_map: c(format!("{} {} 1\n", p.ids.inside_uid, p.ids.outside_uid).as_bytes())?,
            gid_map: c(format!("{} {} 1\n", p.ids.inside_gid, p.ids.outside_gid).as_bytes())?,
            new_session: p.new_session,
            stdio,
            chan,
            seccomp_bpf,
            wait_for_net: p.net.is_some(),
            landlock: match &p.landlock {
                crate::policy::LandlockState::On(l) => Some(l.clone()),
                crate::policy::LandlockState::Off(_) => None,
            },
        })
    }

    pub fn chan(&self) -> BorrowedFd<'_> {
        // SAFETY-free: the channel fd stays open for the whole life of the child.
        borrowed(self.chan)
    }
}

fn borrowed(fd: RawFd) -> BorrowedFd<'static> {
    crate::sys::borrow_fd(fd)
}

/// Run one step; on failure report it to the launcher and leave.
fn step(plan: &Plan, stage: Stage, f: impl FnOnce() -> Result<(), Fail>) {
    if let Err(e) = f() {
        report(plan, stage, &e);
        sys::exit_now(EXIT_SETUP_FAILED);
    }
}

fn report(plan: &Plan, stage: Stage, e: &Fail) {
    let _ = send_msg(plan.chan(), &Msg::Failed { stage, errno: e.errno as i32, what: e.what.clone() });
}

/// The sandbox's init, pid 1 of the new pid namespace. Never returns.
pub fn run(plan: &Plan) -> ! {
    step(plan, Stage::UserNs, || userns::enter(plan)); // die with the launcher; id maps
    step(plan, Stage::Mount, || mount::build_root(&plan.ops)); // needs the maps: mounting needs CAP_SYS_ADMIN in the userns
    step(plan, Stage::Net, || net::configure(plan)); // loopback up; with a helper, wait until it is ready
    step(plan, Stage::Hostname, || process::set_hostname(plan));
    step(plan, Stage::Keyring, process::keyring); // a new, empty session keyring
    init::supervise(plan) // forks `program`, reaps, forwards signals, reports, kills the rest
}

/// The program's process, forked by init. The order tightens monotonically: the bounding set
/// needs CAP_SETPCAP, so it goes before the ids change; no_new_privs and the empty capability
/// sets come last, right before exec.
pub fn program(plan: &Plan) -> ! {
    sys::reset_signals();
    step(plan, Stage::Session, || process::session(plan)); // setsid unless --keep-session; umask 022
    step(plan, Stage::Stdio, || process::stdio(plan)); // --stdin/--stdout/--stderr onto 0, 1, 2
    step(plan, Stage::Rlimits, || process::rlimits(plan));
    step(plan, Stage::Bounding, caps::drop_bounding); // while CAP_SETPCAP is still held
    step(plan, Stage::Ids, || process::switch_ids(plan)); // only with --map-ranges
    step(plan, Stage::Caps, caps::drop_all); // effective, permitted, inheritable; no_new_privs
    step(plan, Stage::Landlock, || landlock::restrict(plan)); // needs no_new_privs; after the mounts
    step(plan, Stage::Chdir, || process::chdir(plan));
    step(plan, Stage::Fds, process::close_fds); // everything above 2 closes at exec
    step(plan, Stage::Seccomp, || seccomp::load(plan)); // last: nothing after it may need a denied call
    // The program's CPU time starts at execve: report what ward's steps cost this process.
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        let _ = crate::sync::send_msg(plan.chan(), &crate::sync::Msg::PreExec(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64));
    }
    let e = process::exec(plan);
    report(plan, Stage::Exec, &e);
    sys::exit_now(if e.errno == Errno::ENOENT || e.errno == Errno::ENOTDIR { 127 } else { 126 })
}
