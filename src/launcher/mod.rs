//! The parent pipeline: everything the launcher does for one run, as one ordered list (`run`).
//! Each mechanism's parent half is a module here; its child half has the same name under
//! `child/`.
//!
//! The launcher stays single-threaded until clone (clone refuses otherwise), and supervises with a
//! signalfd and poll, so no signal handler or thread exists while the child is forked.

pub mod account;
pub mod cgroup;
pub mod dbus;
pub mod net;
pub mod plan;
pub mod bpf;
pub mod seccomp;
pub mod stdio;
pub mod supervise;
pub mod userns;
pub mod warm;
pub mod watch;

use crate::child;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::policy::limits::CgroupNeed;
use crate::sync::{Msg, send_msg, send_msg_fd};
use crate::sys;
use account::{Facts, Outcome};
use cgroup::{Leaf, Obtained};
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};

/// The namespaces every sandbox gets.
pub const CLONE_FLAGS: libc::c_int =
    libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWCGROUP | libc::CLONE_NEWNET;


/// Blocks the signals the launcher supervises (before clone: init inherits the mask and
/// reads them from its own signalfd); the old mask comes back when this is dropped.
struct BlockedSignals(SigSet);

impl BlockedSignals {
    fn block(set: SigSet) -> Result<BlockedSignals> {
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).map_err(|e| Error::sys("sigprocmask(SIG_BLOCK)", e))?;
        Ok(BlockedSignals(old))
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Run the policy's program in a new sandbox and wait for it: the parent's steps, in order.
pub fn run(p: &Policy) -> Result<Outcome> {
    run_in(p, None)
}

/// Run the policy's program in the warm sandbox `k` (`w`: what is fresh per run; see
/// `policy::warm`), or in a new sandbox when `k` is `None`. The steps are the same but
/// "spawn": a warm run's init is cloned by a joiner into the keeper's namespaces.
pub fn run_in(p: &Policy, warm: Option<(&warm::Keeper, &crate::policy::warm::WarmPlan)>) -> Result<Outcome> {
    let mut s = spawn_run(p, warm, false)?;
    go(p, &mut s)?;
    wait(p, s)
}

/// A run whose init exists (a fresh one waits for its maps; a warm one makes its fresh mounts
/// and then waits until the run is due), not yet told to go.
pub struct Spawned {
    init: Pid,
    chan: OwnedFd,
    leaf: Option<Leaf>,
    cg_note: String,
    filter: Option<seccomp::Filter>,
    warm: bool,
    /// A warm run in a user namespace of its own (see `spawn_run`).
    own_userns: bool,
    /// Made when the run is due.
    sigfd: Option<SignalFd>,
    /// init was reaped (by supervision).
    done: bool,
    _signals: BlockedSignals,
}

impl Spawned {
    /// A warm run in a user namespace of its own: other runs of the keeper may exist beside it.
    pub fn own_userns(&self) -> bool {
        self.own_userns
    }

    /// End the sandbox (a run that will not be done).
    fn abort(&self) {
        if let Some(l) = &self.leaf {
            l.kill();
        }
        let _ = kill(self.init, Signal::SIGKILL);
        let _ = sys::wait4(self.init, false);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // a run never waited for (an error, or a batch that ended early): nothing of it stays
        if !self.done {
            self.abort();
        }
        if let Some(l) = self.leaf.take() {
            l.remove();
        }
    }
}

/// The parent's steps up to "spawn": the filter, the plan, the hard limits, the cgroup leaf,
/// and init cloned into its namespaces. A warm run's stdio files are opened when it is due
/// (`go`), so a run cloned ahead sees what the runs before it wrote. With `own_userns` (a
/// batch's pipelined runs; a caller mapped to itself only) a warm run's init is cloned into a
/// user namespace of its own below the keeper's, mapping the sandbox's ids to themselves:
/// RLIMIT_NPROC then counts the run's own processes only, as in a fresh run, whatever other
/// runs of the keeper exist beside it.
pub fn spawn_run(p: &Policy, warm: Option<(&warm::Keeper, &crate::policy::warm::WarmPlan)>, own_userns: bool) -> Result<Spawned> {
    let own_userns = own_userns && warm.is_some() && own_userns_possible(p);
    // before anything is opened or created: clone would refuse a multi-threaded launcher
    if sys::single_threaded().is_err() {
        return Err(threads_error());
    }
    sys::reap_remembered();
    let filter = seccomp::prepare(p)?; // compiled or cached now: the child only loads bytes
    let stdio = if warm.is_some() { [None, None, None] } else { stdio::open(&p.stdio)? }; // with the caller's rights
    let (chan, child_chan) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::sys("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    let ops = match warm {
        None => plan::ops(p)?,
        Some((k, w)) if k.key == w.key => plan::fresh_ops(p, &w.fresh)?,
        Some(_) => return Err(Error::invalid("the warm sandbox holds another tree than this run's", "start a warm sandbox for this configuration")),
    };
    let mut plan = plan::prepare(p, ops, stdio, child_chan, filter.as_ref().map(|f| std::rc::Rc::clone(&f.bpf)))?;
    if warm.is_some() {
        plan.wait_for_net = false;
        plan.due_by_message = true;
        if own_userns {
            plan.own_userns = true;
            let (u, g) = (p.ids.inside_uid, p.ids.inside_gid);
            plan.uid_map = std::ffi::CString::new(format!("{u} {u} 1\n")).map_err(|_| Error::invalid("uid map", ""))?;
            plan.gid_map = std::ffi::CString::new(format!("{g} {g} 1\n")).map_err(|_| Error::invalid("gid map", ""))?;
        } else {
            warm_nproc(p, &mut plan);
        }
    }
    within_hard_limits(&mut plan.rlimits)?;
    let obtained = cgroup::obtain(&p.cgroup)?; // after validation; the only step that may talk to systemd
    let signals = BlockedSignals::block(child::init::signals())?;
    let (init, chan, leaf, cg_note) = match warm {
        None => spawn(p, &plan, obtained, chan)?, // init never returns from here
        Some((k, _)) => spawn_warm(k, &plan, obtained, chan)?,
    };
    let s = Spawned { init, chan, leaf, cg_note, filter, warm: warm.is_some(), own_userns, sigfd: None, done: false, _signals: signals };
    if own_userns {
        // the joiner wrote the maps of init's own user namespace: init may go on to its fresh
        // mounts (the program's process waits for the run to be due)
        send_msg(s.chan.as_fd(), &Msg::Go).map_err(|e| Error::sys("send(Go)", e))?;
    }
    Ok(s)
    // the plan drops here: the child has its end of the channel and the stdio files now
}

/// Whether a warm run of `p` can have a user namespace of its own: only when the caller is
/// mapped to itself alone (not root, no subordinate ranges), so that the sandbox's ids can
/// map to themselves below the keeper's.
pub fn own_userns_possible(p: &Policy) -> bool {
    p.ids.writer == crate::policy::ids::MapWriter::Child
}

/// The run is due: a fresh run's maps are written (or its helpers told), a warm run's stdio
/// files opened (now, not when it was cloned: a batch's run sees what the runs before it
/// wrote) and passed to its program; then `Go`.
pub fn go(p: &Policy, s: &mut Spawned) -> Result<()> {
    // Signals blocked before clone stay pending: a signalfd made now still reads them.
    let sigfd = SignalFd::with_flags(&child::init::signals(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::sys("signalfd", e))?;
    // A child that already ended (a step failed while it was cloned ahead) has closed its
    // end: nothing more is sent, and supervision reads what it reported.
    let gone = |e: Errno| matches!(e, Errno::EPIPE | Errno::ECONNRESET);
    let mut go = true;
    if s.warm {
        for (n, f) in stdio::open(&p.stdio)?.iter().enumerate() {
            if let Some(f) = f {
                match send_msg_fd(s.chan.as_fd(), &Msg::Stdio(n as u32), f.as_fd()) {
                    Err(e) if gone(e) => go = false,
                    other => other.map_err(|e| Error::sys("send(Stdio)", e))?,
                }
            }
        }
    } else {
        go = userns::write_maps(s.init, &p.ids)?;
    }
    if go {
        match send_msg(s.chan.as_fd(), &Msg::Go) {
            Err(e) if gone(e) => {}
            other => other.map_err(|e| Error::sys("send(Go)", e))?,
        }
    }
    s.sigfd = Some(sigfd);
    Ok(())
}

/// The parent's steps from "go" on: the network helper, supervision, the cgroup's
/// accounting and removal, reaping init, the outcome.
pub fn wait(p: &Policy, s: Spawned) -> Result<Outcome> {
    let (outcome, init) = wait_keeping(p, s, false);
    if let Some(init) = init {
        let _ = sys::wait4(init, false);
    }
    outcome
}

/// `wait`, but init is not reaped: its pid comes back for the caller to reap (a batch reaps
/// it once the next run has ended, so it never waits for init's namespaces to be torn down).
/// With `until_report` (only without a cgroup leaf, which must be empty to be removed)
/// supervision ends with init's report, while init is still ending.
pub fn wait_keeping(p: &Policy, mut s: Spawned, until_report: bool) -> (Result<Outcome>, Option<Pid>) {
    let Some(sigfd) = s.sigfd.take() else {
        return (Err(Error::host("a run was waited for before it was due", "report this as a bug")), None);
    };
    let helper = match net::start_for(p, s.init, s.chan.as_fd()) {
        Ok(h) => h, // while init builds the root
        Err(e) => return (Err(e), None), // Drop ends the sandbox
    };
    let supervised = supervise::supervise(p, s.init, &s.chan, &sigfd, s.leaf.as_ref(), until_report && s.leaf.is_none());
    s.done = true; // init has ended, or reported and is ending: the caller reaps it
    let (leaf_usage, cgroup) = cgroup::finish(s.leaf.take(), &s.cg_note); // accounting, then cgroup.kill and rmdir
    let helper_args = net::finish(helper); // the sandbox is gone: end the helper without waiting
    let filter = s.filter.take();
    let init = s.init;
    drop(s);
    let outcome = supervised.map(|sup| account::outcome(p, sup, Facts { filter: filter.as_ref(), helper_args, cgroup, leaf: leaf_usage }));
    (outcome, Some(init))
}

/// Keep the signals a run supervises blocked until the guard drops (a batch holds it while
/// one run's init is waiting and another runs, so no run's signal is lost in between).
pub fn hold_signals() -> Result<impl Drop> {
    BlockedSignals::block(child::init::signals())
}

/// Step "spawn": clone init into its namespaces, born in the run's leaf when there is one
/// (clone3 CLONE_INTO_CGROUP; plain clone on kernels without clone3, on ENOSYS only). In the
/// child this runs `child::run` and never returns.
fn spawn(p: &Policy, plan: &child::Plan, obtained: Obtained, chan: OwnedFd) -> Result<(Pid, OwnedFd, Option<Leaf>, String)> {
    let (mut leaf, mut note) = match obtained {
        Obtained::Leaf(l) => (Some(l), String::new()),
        Obtained::None(why) => (None, why),
    };
    let cloned = match &leaf {
        Some(l) => match sys::clone3_fork(CLONE_FLAGS, Some(l.fd())) {
            Err(Errno::ENOSYS) => {
                note = "the kernel has no clone3 (Linux 5.7+) to start the sandbox in its cgroup".into();
                if let Some(l) = leaf.take() {
                    l.remove();
                }
                if let CgroupNeed::Required(what) = p.cgroup.need {
                    return Err(crate::error::CgroupError::NoClone3 { option: what }.into());
                }
                sys::clone_fork(CLONE_FLAGS)
            }
            other => other,
        },
        None => sys::clone_fork(CLONE_FLAGS),
    };
    match cloned {
        Ok(None) => {
            // The sandbox's init. Close the launcher's end so a dead launcher reads as EOF.
            drop(chan);
            child::run(plan)
        }
        Ok(Some(pid)) => Ok((pid, chan, leaf, note)),
        Err(e) => {
            // nothing was born in the leaf
            if let Some(l) = leaf {
                l.remove();
            }
            Err(match e {
                // clone_fork and clone3_fork check that the launcher is single-threaded
                Errno::EDEADLK => threads_error(),
                Errno::EPERM | Errno::ENOSPC | Errno::EUSERS | Errno::EINVAL | Errno::EACCES => userns_error(e),
                e => Error::sys(format!("clone(0x{CLONE_FLAGS:x})"), e),
            })
        }
    }
}

/// Step "spawn" of a warm run: the joiner clones init into the keeper's namespaces, born in
/// the run's leaf when there is one (no plain-clone fallback: a warm sandbox needs clone3
/// for a leaf, as the policy's cgroup need says).
fn spawn_warm(k: &warm::Keeper, plan: &child::Plan, obtained: Obtained, chan: OwnedFd) -> Result<(Pid, OwnedFd, Option<Leaf>, String)> {
    let (leaf, note) = match obtained {
        Obtained::Leaf(l) => (Some(l), String::new()),
        Obtained::None(why) => (None, why),
    };
    match warm::join(k, plan, leaf.as_ref().map(|l| l.fd())) {
        Ok(pid) => Ok((pid, chan, leaf, note)),
        Err(e) => {
            if let Some(l) = leaf {
                l.remove();
            }
            Err(e)
        }
    }
}

/// In the keeper's user namespace the keeper is one more process of the program's uid that
/// RLIMIT_NPROC counts (when ward runs as that uid).
fn warm_nproc(p: &Policy, plan: &mut child::Plan) {
    if p.ids.ward_runs_as_program_uid() {
        for (l, v) in plan.rlimits.iter_mut() {
            if *l == crate::request::Limit::Nproc {
                *v = v.map(|n| n + 1);
            }
        }
    }
}

/// The program's rlimits can only be lowered from the hard limits ward was started with (a
/// container's `--ulimit`, a service's LimitNPROC=): a value above one is refused here, with
/// what to change, rather than by setrlimit in the child; "unlimited" keeps the hard limit.
fn within_hard_limits(rlimits: &mut [(crate::request::Limit, Option<u64>)]) -> Result<()> {
    for (l, v) in rlimits.iter_mut() {
        let Ok((_, hard)) = nix::sys::resource::getrlimit(l.resource()) else { continue };
        match *v {
            _ if hard == nix::libc::RLIM_INFINITY => {}
            None => *v = Some(hard),
            Some(n) if n > hard => {
                return Err(Error::host(
                    format!("the sandbox's RLIMIT_{} would be {n}, above the hard limit {hard} ward was started with", l.name().to_uppercase()),
                    format!("raise the hard limit where ward is started (ulimit -H; a container's --ulimit {0}={n}:{n}; systemd's Limit{1}=), or ask for less", l.name(), l.name().to_uppercase()),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn threads_error() -> Error {
    Error::invalid(
        format!("the launcher has {} threads; it must fork from a single-threaded process", sys::thread_count().map_or("several".into(), |n| n.to_string())),
        "call ward's library before starting threads",
    )
}

fn userns_error(errno: Errno) -> Error {
    let mut blockers = crate::host::probe::userns_blockers();
    if blockers.is_empty() {
        blockers.extend(crate::host::probe::container_blocker());
    }
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
