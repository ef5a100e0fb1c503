//! Everything that runs inside the sandbox between clone and exec, as two ordered lists.
//!
//! `run` is the sandbox's init (pid 1 of the new pid namespace, `init/`): it waits for the id
//! maps, builds the root, configures the network namespace and the hostname, then starts the
//! program and supervises it. `program` is the program's process (`program/`), which shares
//! init's memory until its execve (vfork-style: nothing is copied, init waits): its
//! steps tighten monotonically and end in execve. Each step that fails reports
//! `Msg::Failed { stage, errno, what }` to the launcher and exits, so the user learns which
//! step failed and why. The launcher prepares everything the steps need (`launcher::plan`).
//!
//! No threads are started here; allocation is limited to what the steps need.

// `Fail` carries its message inline (no allocation between clone and exec), so it is large.
#![allow(clippy::result_large_err)]

pub mod init;
pub mod program;

use crate::policy::ids::Ids;
use crate::request::Limit;
use crate::sync::{Msg, Note, Stage, send_msg};
use crate::sys;
use nix::errno::Errno;
use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
    pub ops: Vec<init::mount::Op>,
    pub hostname: CString,
    pub chdir: CString,
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub rlimits: Vec<(Limit, Option<u64>)>,
    pub ids: Ids,
    /// The maps, for the child to write itself (`MapWriter::Child`).
    pub uid_map: CString,
    pub gid_map: CString,
    pub new_session: bool,
    /// What the launcher opened for the program's stdin, stdout and stderr.
    pub stdio: [Option<OwnedFd>; 3],
    /// Paths in the sandbox's view for stdin, stdout and stderr (isolate's -i/-o/-r), opened
    /// by the program's process; `stderr_to_stdout` puts stderr on the stdout file.
    pub stdio_inside: [Option<CString>; 3],
    pub stderr_to_stdout: bool,
    /// The child's end of the channel to the launcher.
    pub chan: OwnedFd,
    /// The compiled seccomp filter, if any.
    pub seccomp_bpf: Option<std::rc::Rc<[u8]>>,
    /// The Landlock ABI and rules, if Landlock is applied.
    pub landlock: Option<crate::policy::landlock::LandlockPolicy>,
    /// A networking helper is being started: wait for `NetReady` before the program.
    pub wait_for_net: bool,
    /// A warm run: the program's stdio files come over the channel when the run is due
    /// (`Msg::Stdio`, then `Go`), and its process waits for them before its last steps.
    pub due_by_message: bool,
    /// A warm run in a user namespace of its own, below the keeper's (`uid_map` and `gid_map`
    /// then map the sandbox's ids to themselves).
    pub own_userns: bool,
}

impl Plan {
    pub fn chan(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

/// Run one step; on failure report it to the launcher and leave.
fn step(plan: &Plan, stage: Stage, f: impl FnOnce() -> Result<(), Fail>) {
    if let Err(e) = f() {
        report(plan, stage, &e);
        sys::exit_now(EXIT_SETUP_FAILED);
    }
}

/// Run one step that yields a value; on failure report it to the launcher and leave.
fn value<T>(plan: &Plan, stage: Stage, f: impl FnOnce() -> Result<T, Fail>) -> T {
    match f() {
        Ok(v) => v,
        Err(e) => {
            report(plan, stage, &e);
            sys::exit_now(EXIT_SETUP_FAILED)
        }
    }
}

/// Wait for the launcher's message `want`; anything else, or the launcher's end closing (it
/// gave up and reports why, or died), ends this process.
pub fn wait_for(plan: &Plan, want: fn(&crate::sync::Msg) -> bool, what: &str) -> Result<(), Fail> {
    match crate::sync::recv_msg(plan.chan(), false) {
        Ok(Some(m)) if want(&m) => Ok(()),
        Ok(_) => sys::exit_now(EXIT_SETUP_FAILED),
        Err(e) => Err(fail(e, format_args!("{what}"))),
    }
}

pub fn report(plan: &Plan, stage: Stage, e: &Fail) {
    let _ = send_msg(plan.chan(), &Msg::Failed { stage, errno: e.errno as i32, what: e.what.clone() });
}

/// The sandbox's init, pid 1 of the new pid namespace. Never returns.
pub fn run(plan: &Plan) -> ! {
    step(plan, Stage::UserNs, || init::userns::enter(plan)); // die with the launcher; id maps
    let sources = value(plan, Stage::Mount, || init::mount::open_sources(&plan.ops)); // no symbolic link followed; before a root caller's ids change
    step(plan, Stage::UserNs, || init::userns::take_ids(plan)); // a root caller: drop root's groups, become the sandbox's ids
    step(plan, Stage::Mount, || init::mount::build_root(&plan.ops, sources)); // needs the maps: mounting needs CAP_SYS_ADMIN in the userns
    step(plan, Stage::Net, || init::net::configure(plan)); // loopback up; with a helper, wait until it is ready
    step(plan, Stage::Hostname, || init::hostname::set_hostname(plan));
    step(plan, Stage::Keyring, init::hostname::keyring); // a new, empty session keyring
    init::supervise(plan) // starts `program`, reaps, forwards signals, reports, kills the rest
}

/// A warm run's init, pid 1 of its new pid namespace, cloned by the launcher's joiner into the
/// keeper's user, mount (a copy) and network namespaces. The tree is built already: only
/// what must be fresh per run is mounted. All this, and the program's steps up to the one
/// that waits for the run to be due, happen ahead (a batch clones the next run's init while
/// the current one runs). Never returns.
pub fn run_warm(plan: &Plan) -> ! {
    step(plan, Stage::UserNs, || init::userns::enter_warm(plan)); // die with the launcher; a user namespace of its own: its maps
    step(plan, Stage::UserNs, || init::userns::take_ids(plan)); // a root caller: the sandbox's ids
    step(plan, Stage::Mount, || init::mount::refresh(&plan.ops)); // fresh tmpfs, /proc of this run, devpts
    step(plan, Stage::Hostname, || init::hostname::set_hostname(plan));
    step(plan, Stage::Keyring, init::hostname::keyring); // a new, empty session keyring
    init::supervise(plan)
}

/// The keeper of a warm sandbox: builds the namespaces and the tree as a fresh run's init
/// does, then holds them for later runs (`init::keep`). Never returns.
pub fn keeper(plan: &Plan, watch: Option<&OwnedFd>, idle_s: u64) -> ! {
    step(plan, Stage::Init, || init::keep::detach(plan, watch)); // nothing of the starter's fds
    step(plan, Stage::UserNs, || init::userns::enter(plan)); // die with the starter while it waits; id maps
    let sources = value(plan, Stage::Mount, || init::mount::open_sources(&plan.ops));
    step(plan, Stage::UserNs, || init::userns::take_ids(plan));
    step(plan, Stage::Mount, || init::mount::build_root(&plan.ops, sources));
    step(plan, Stage::Net, || init::net::configure(plan)); // loopback up, shared by the runs one after another
    init::keep::hold(plan, watch, idle_s)
}

/// The program's process, started by init sharing its memory until execve (so its steps
/// change only its own process's state and leave allocations behind in init's). The order
/// tightens monotonically: the bounding set needs CAP_SETPCAP, so it goes before the ids
/// change; no_new_privs and the empty capability sets come next, then Landlock (which needs
/// no_new_privs; its ruleset is built before the run is due, put in force after the stdio
/// files are in place), and seccomp last, right before exec. A warm run's program takes every
/// step that does not depend on the run being due first, then waits for it (a batch starts the
/// next run's program while one runs); `exec_at` gets the clock at execve (init's wall time
/// starts there).
pub fn program(plan: &Plan, exec_at: &std::cell::Cell<u64>) -> ! {
    sys::reset_signals();
    step(plan, Stage::Session, || program::process::session(plan)); // setsid unless --keep-session; umask 022
    step(plan, Stage::Bounding, program::caps::drop_bounding); // while CAP_SETPCAP is still held
    step(plan, Stage::Ids, || program::process::switch_ids(plan)); // only with --map-ranges
    step(plan, Stage::Caps, program::caps::drop_all); // effective, permitted, inheritable; no_new_privs
    let rules = value(plan, Stage::Landlock, || program::landlock::ruleset(plan)); // after the mounts; not in force yet
    let due = value(plan, Stage::Stdio, || program::process::until_due(plan)); // a warm run: its stdio files, then Go
    step(plan, Stage::Stdio, || program::process::stdio(due.as_ref().unwrap_or(&plan.stdio))); // --stdin/--stdout/--stderr onto 0, 1, 2
    step(plan, Stage::Landlock, || program::landlock::restrict(plan, rules)); // needs no_new_privs; the stdio files stay reopenable
    step(plan, Stage::Chdir, || program::process::chdir(plan));
    step(plan, Stage::Rlimits, || program::process::rlimits(plan)); // after every step that opens or allocates for ward
    step(plan, Stage::Stdio, || program::process::stdio_inside(plan)); // isolate's -i/-o/-r: in the sandbox's view, with the program's rights, relative to its directory
    step(plan, Stage::Fds, program::process::close_fds); // everything above 2 closes at exec
    step(plan, Stage::Seccomp, || program::seccomp::load(plan)); // last: nothing after it may need a denied call
    // The program's CPU time starts at execve: report what ward's steps cost this process.
    if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        let _ = send_msg(plan.chan(), &Msg::PreExec(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64));
    }
    exec_at.set(init::now_ns());
    let e = program::exec::exec(plan);
    report(plan, Stage::Exec, &e);
    sys::exit_now(if e.errno == Errno::ENOENT || e.errno == Errno::ENOTDIR { 127 } else { 126 })
}
