//! ward: a rootless sandbox for untrusted code on Linux.
//!
//! One unprivileged process runs a program inside new user, mount, pid, ipc, uts, cgroup and
//! net namespaces, on a fresh root built on tmpfs, with no capabilities and no_new_privs,
//! under a small init that reaps and guarantees nothing outlives the run, and reports one
//! verdict. SECURITY.md has the threat model.
//!
//! ```text
//!  launcher (caller's uid)                    sandbox
//!  ───────────────────────                    ───────────────────────────────────────────
//!  Request ─► Policy::build (pure)
//!  filter (BPF written or cached)
//!  open --stdin/--stdout/--stderr
//!  cgroup::obtain (leaf; systemd scope)
//!  clone(NEWUSER|NEWNS|NEWPID|...) ─────────► init (pid 1)
//!  userns::write_maps ── Go ────────────────►   userns::enter   (pdeathsig, wait for maps)
//!                                               mount::build_root (tmpfs, binds, pivot_root)
//!                                               net::configure   (lo up)
//!                                               hostname
//!                                               vfork ─► program:
//!                                                         session, bounding set, ids,
//!                                                         caps + nnp, landlock rules,
//!                                                         stdio, landlock in force,
//!                                                         chdir, rlimits, fds,
//!  net::start_for ── NetReady ──────────────►   (waits for the helper)
//!  supervise ◄── listener fd ───────────────               seccomp (listener), execve
//!  (signalfd + poll) ◄── Exited ────────────    reap, forward signals, kill the rest
//!  account (pure) ─► Verdict (JSON)
//! ```
//!
//! The source tree is arranged by role: `request/` (what the caller asks for) and `policy/`
//! (what one run will be, validated) are declarations; `host/` reads facts; `launcher/` is
//! everything the caller's process does (each mechanism's parent half); `child/init/` and
//! `child/program/` are what runs in the sandbox's init and in the program's process; all
//! `unsafe` is in `sys`.
//!
//! # Example
//!
//! ```no_run
//! use ward::Sandbox;
//!
//! let verdict = Sandbox::new(["/bin/sh", "-c", "echo hello from the sandbox"]).run()?;
//! assert_eq!(verdict.status, ward::Status::OK);
//! println!("{} ms of CPU", verdict.cpu_time_ms);
//! # Ok::<(), ward::Error>(())
//! ```

#[allow(unsafe_code)]
pub(crate) mod sys;

pub(crate) mod child;
pub mod error;
pub(crate) mod frontend;
pub(crate) mod host;
pub(crate) mod launcher;
pub(crate) mod policy;
pub mod request;
pub(crate) mod sync;
#[cfg(any(test, fuzzing))]
pub mod testing;
pub mod verdict;

pub use error::{Error, Result};
pub use request::{BindAccess, Limit, MountSpec, Request, Size, Workdir, WorkdirMode};
pub use verdict::{Status, Verdict};

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A sandbox to run one program in: a builder over a [`Request`].
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    req: Request,
}

impl Sandbox {
    /// A strict sandbox for `argv` (program first).
    pub fn new<I, S>(argv: I) -> Sandbox
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Sandbox { req: Request::new(argv.into_iter().map(Into::into).collect()) }
    }

    /// Start from a request built elsewhere (a profile: `request::profile::load`).
    pub fn from_request(req: Request) -> Sandbox {
        Sandbox { req }
    }

    fn mount(mut self, m: MountSpec) -> Sandbox {
        self.req.tree.mounts.push(m);
        self
    }

    /// Bind `src` read-only at `dst`.
    pub fn ro_bind(self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Sandbox {
        self.mount(MountSpec::Bind { src: src.into(), dst: dst.into(), access: BindAccess::ReadOnly, optional: false })
    }

    /// Bind `src` read-write at `dst`.
    pub fn bind(self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Sandbox {
        self.mount(MountSpec::Bind { src: src.into(), dst: dst.into(), access: BindAccess::ReadWrite, optional: false })
    }

    /// A tmpfs at `dst` (`size` in bytes; default: the /tmp size).
    pub fn tmpfs(self, dst: impl Into<PathBuf>, size: Option<u64>) -> Sandbox {
        self.mount(MountSpec::Tmpfs { dst: dst.into(), size: size.map(Size) })
    }

    /// Which host directory is the work dir (default: the current directory, see [`Workdir`]).
    pub fn workdir(mut self, w: Workdir, mode: WorkdirMode) -> Sandbox {
        self.req.tree.workdir = Some(w);
        self.req.tree.workdir_mode = Some(mode);
        self
    }

    /// Set an environment variable for the program.
    pub fn setenv(mut self, k: impl Into<String>, v: impl Into<String>) -> Sandbox {
        self.req.process.env.push((k.into(), v.into()));
        self
    }

    /// Set a resource limit (`None`: unlimited).
    pub fn rlimit(mut self, l: Limit, v: Option<u64>) -> Sandbox {
        self.req.process.rlimits.insert(l, request::Rlim(v));
        self
    }

    /// Files for the program's stdin, stdout and stderr, opened with the caller's rights.
    pub fn stdio(mut self, stdin: Option<PathBuf>, stdout: Option<PathBuf>, stderr: Option<PathBuf>) -> Sandbox {
        self.req.run.stdin = stdin;
        self.req.run.stdout = stdout;
        self.req.run.stderr = stderr;
        self
    }

    /// The whole request, for what the builder methods do not cover.
    pub fn request_mut(&mut self) -> &mut Request {
        &mut self.req
    }

    /// Validate, run, wait, and return the verdict. Failures before the program started are
    /// errors; how the program ended (including exec failures) is in the verdict.
    pub fn run(&self) -> Result<Verdict> {
        run(&self.req)
    }

    /// Run in `warm`, which keeps the namespaces and the tree between runs (see
    /// [`WarmSandbox`]).
    pub fn run_in(&self, warm: &mut WarmSandbox) -> Result<Verdict> {
        warm.run(&self.req)
    }
}

/// The whole pipeline for `req`: the host's facts (read only), the validated policy, the
/// run (`launcher::run`), and its verdict, judged against the seccomp supervisor's record and
/// the limits. Failures before the program started are errors; how it ended (exec failures
/// included) is in the verdict.
pub fn run(req: &Request) -> Result<Verdict> {
    let policy = build(req)?;
    let outcome = launcher::run(&policy)?;
    Ok(verdict(&policy, outcome, Default::default()))
}

fn verdict(policy: &policy::Policy, outcome: launcher::account::Outcome, warm: verdict::WarmInfo) -> Verdict {
    let enforced = outcome.enforced.map(|mut e| {
        e.warm = warm;
        e
    });
    Verdict::new(&outcome.ending, enforced).with_blocked(outcome.blocked, outcome.killed_for_syscall).with_limits(&policy.limits, outcome.limit_hit)
}

fn build(req: &Request) -> Result<policy::Policy> {
    build_with(req, &mut None)
}

/// The host's facts a batch reads once, keyed by what was asked of them (subordinate ids,
/// networking); the cgroup, which a run may change (a scope from systemd), is read afresh.
type HostCache = Option<((bool, bool), host::Host)>;

fn build_with(req: &Request, cache: &mut HostCache) -> Result<policy::Policy> {
    let want = (req.process.map_ranges.unwrap_or(false), req.network.mode.is_some_and(|m| m != request::NetMode::None));
    let host = match cache {
        Some((w, h)) if *w == want => host::Host { cgroup: host::find_cgroup(), ..h.clone() },
        _ => {
            let h = host::Host::gather(want.0, want.1).map_err(|e| Error::io("read the current directory", e))?;
            *cache = Some((want, h.clone()));
            h
        }
    };
    policy::Policy::build(req, &host, &policy::tree::RealFs)
}

fn warm_info(p: &policy::Policy, w: &policy::warm::WarmPlan, k: &launcher::warm::Keeper) -> verdict::WarmInfo {
    let fresh = w.fresh.iter().filter_map(|i| match &p.tree[*i] {
        policy::tree::MountOp::Tmpfs { dst, .. } => Some(format!("tmpfs {}", dst.display())),
        policy::tree::MountOp::Proc { dst } => Some(format!("proc {}", dst.display())),
        policy::tree::MountOp::DevPts { dst } => Some(format!("devpts {}", dst.display())),
        _ => None,
    });
    let fresh = fresh.chain(["pid, ipc, uts and cgroup namespaces", "session keyring", "Landlock domain", "seccomp filter"].map(String::from)).collect();
    verdict::WarmInfo { used: true, keeper_pid: Some(k.pid.as_raw()), fresh, ..Default::default() }
}

/// A batch run's warm facts: a user namespace of its own is fresh too.
fn batch_info(p: &policy::Policy, w: &policy::warm::WarmPlan, k: &launcher::warm::Keeper, s: &launcher::Spawned, cloned_ahead: bool) -> verdict::WarmInfo {
    let mut info = warm_info(p, w, k);
    if s.own_userns() {
        info.fresh.insert(0, "user namespace (below the keeper's; the sandbox's ids map to themselves)".into());
    }
    info.cloned_ahead = cloned_ahead;
    info
}

fn warm_plan(req: &Request, p: &policy::Policy) -> std::result::Result<policy::warm::WarmPlan, String> {
    if req.process.warm == Some(false) {
        return Err("the profile or the options turn warm sandboxes off (process.warm = false)".into());
    }
    policy::warm::plan(p)
}

fn fresh_because(why: impl Into<String>) -> verdict::WarmInfo {
    verdict::WarmInfo { why_not: Some(why.into()), ..Default::default() }
}

/// A handle that runs many programs, each in a warm sandbox when its configuration allows
/// one (`policy::warm`): the first run of a configuration starts a keeper held by this
/// handle, later runs with the same tree and ids join it; a run whose configuration differs
/// replaces it. Isolation between runs is a fresh run's (see SECURITY.md); a configuration
/// that cannot have it runs fresh, and its verdict's `enforced.warm.why_not` says why. The
/// keeper ends when the handle is dropped (or its process dies).
#[derive(Debug, Default)]
pub struct WarmSandbox {
    keeper: Option<launcher::warm::Keeper>,
}

impl WarmSandbox {
    pub fn new() -> WarmSandbox {
        WarmSandbox::default()
    }

    pub fn run(&mut self, req: &Request) -> Result<Verdict> {
        let policy = build(req)?;
        let w = match warm_plan(req, &policy) {
            Ok(w) => w,
            Err(why) => return Ok(verdict(&policy, launcher::run(&policy)?, fresh_because(why))),
        };
        let k = self.keeper_for(&policy, &w)?;
        let info = warm_info(&policy, &w, k);
        Ok(verdict(&policy, launcher::run_in(&policy, Some((k, &w)))?, info))
    }
}

/// Where a batch's requests come from (`ward run --batch`).
pub(crate) trait Requests {
    /// The next request, waiting for it if need be; `None` at the end.
    fn next(&mut self) -> Option<Result<Request>>;
    /// Whether `next` can answer now without waiting (the input is a file, or a whole line is
    /// already read): only then is a request looked at before its turn.
    fn ready(&mut self) -> bool;
}

/// A batch's request, validated: its policy and, when it can be warm, what is fresh per run.
enum Item {
    Invalid(Error),
    Fresh(policy::Policy, String),
    Warm(policy::Policy, policy::warm::WarmPlan),
}

impl Item {
    fn from(req: Result<Request>, hosts: &mut HostCache) -> Item {
        let built = req.and_then(|r| build_with(&r, hosts).map(|p| (r, p)));
        match built {
            Err(e) => Item::Invalid(e),
            Ok((r, p)) => match warm_plan(&r, &p) {
                Ok(w) => Item::Warm(p, w),
                Err(why) => Item::Fresh(p, why),
            },
        }
    }
}

impl WarmSandbox {
    /// The keeper holding `w`'s configuration (started, or replacing one holding another).
    fn keeper_for(&mut self, p: &policy::Policy, w: &policy::warm::WarmPlan) -> Result<&launcher::warm::Keeper> {
        if self.keeper.as_ref().is_some_and(|k| k.key != w.key) {
            if let Some(old) = self.keeper.take() {
                old.end();
            }
        }
        if self.keeper.is_none() {
            self.keeper = Some(launcher::warm::Keeper::start(p, w)?);
        }
        self.keeper.as_ref().ok_or_else(|| Error::host("the warm sandbox's keeper is gone", "run again"))
    }

    /// Run every request of `reqs` in order, as `run` runs each, handing each verdict to `out`
    /// (which returns false to stop). Runs of the same configuration are pipelined: while one
    /// runs, the next one's init is already cloned into the keeper's namespaces, its fresh
    /// mounts made and its program's process taken through the steps that do not depend on
    /// the run being due (`launcher::spawn_run`), when its request can be read without
    /// waiting. It is due, and only then are its stdio files opened, once this run's init has
    /// reported that every process of the run is gone. Pipelined runs have user namespaces of
    /// their own (below the keeper's), so each program's RLIMIT_NPROC counts its own
    /// processes only; a caller whose runs cannot (root, or whole ranges mapped) is not
    /// pipelined.
    pub(crate) fn run_batch(&mut self, reqs: &mut dyn Requests, out: &mut dyn FnMut(Result<Verdict>) -> bool) {
        use std::collections::VecDeque;
        /// A run whose init is cloned.
        struct Run {
            p: policy::Policy,
            key: u64,
            info: verdict::WarmInfo,
            s: launcher::Spawned,
        }
        // every run's signals stay blocked between runs, while a cloned init waits (declared
        // first: dropped last)
        let held = launcher::hold_signals();
        let pipelined = held.is_ok();
        let mut queue: VecDeque<Item> = VecDeque::new();
        let mut hosts: HostCache = None;
        // the item at `i` in the queue, read only if it can be without waiting
        fn peek<'q>(queue: &'q mut VecDeque<Item>, reqs: &mut dyn Requests, hosts: &mut HostCache, i: usize) -> Option<&'q Item> {
            while queue.len() <= i && reqs.ready() {
                match reqs.next() {
                    Some(r) => queue.push_back(Item::from(r, hosts)),
                    None => break,
                }
            }
            queue.get(i)
        }
        // inits that reported and are still ending: reaped once the run after them has ended
        let mut zombies: Vec<nix::unistd::Pid> = Vec::new();
        let reap = |zombies: &mut Vec<nix::unistd::Pid>| {
            for z in zombies.drain(..) {
                let _ = sys::wait4(z, false);
            }
        };
        let mut going: Option<Run> = None;
        loop {
            let run = match going.take() {
                Some(r) => r,
                None => {
                    let item = match queue.pop_front() {
                        Some(i) => i,
                        None => match reqs.next() {
                            Some(r) => Item::from(r, &mut hosts),
                            None => break,
                        },
                    };
                    reap(&mut zombies);
                    let started = match item {
                        Item::Invalid(e) => Err(e),
                        Item::Fresh(p, why) => launcher::run(&p).map(|o| verdict(&p, o, fresh_because(why))),
                        Item::Warm(p, w) => match self.keeper_for(&p, &w).and_then(|k| {
                            let mut s = launcher::spawn_run(&p, Some((k, &w)), pipelined)?;
                            let info = batch_info(&p, &w, k, &s, false);
                            launcher::go(&p, &mut s)?;
                            Ok((info, s))
                        }) {
                            Ok((info, s)) => {
                                going = Some(Run { key: w.key, p, info, s });
                                continue;
                            }
                            Err(e) => Err(e),
                        },
                    };
                    if !out(started) {
                        break;
                    }
                    continue;
                }
            };
            // The next run, cloned while this one goes on, when both have user namespaces of
            // their own and the same keeper. A failure here is the next run's, tried again in
            // its turn.
            let mut ahead = None;
            let next_fits = |i: Option<&Item>| matches!(i, Some(Item::Warm(p, w)) if w.key == run.key && launcher::own_userns_possible(p));
            if run.s.own_userns() && next_fits(peek(&mut queue, reqs, &mut hosts, 0)) {
                if let Some(Item::Warm(p, w)) = queue.pop_front() {
                    let spawned = self.keeper_for(&p, &w).and_then(|k| {
                        let s = launcher::spawn_run(&p, Some((k, &w)), true)?;
                        Ok((batch_info(&p, &w, k, &s, true), s))
                    });
                    match spawned {
                        Ok((info, s)) => ahead = Some(Run { key: w.key, p, info, s }),
                        Err(_) => queue.push_front(Item::Warm(p, w)),
                    }
                }
            }
            let (outcome, init) = launcher::wait_keeping(&run.p, run.s, ahead.is_some());
            // every process of this run is gone: the next one is due now
            let mut ahead_failed = None;
            if let Some(mut a) = ahead {
                match launcher::go(&a.p, &mut a.s) {
                    Ok(()) => going = Some(a),
                    Err(e) => ahead_failed = Some(e),
                }
            }
            let result = outcome.map(|o| verdict(&run.p, o, run.info));
            // the run before this one has ended long ago; this one's init is still ending
            reap(&mut zombies);
            zombies.extend(init);
            if !out(result) || ahead_failed.is_some_and(|e| !out(Err(e))) {
                break;
            }
        }
        drop(going);
        reap(&mut zombies);
        drop(held);
    }
}

/// One run of an isolate box: warm when the box's keeper (recorded in `state`) holds this
/// run's tree and ids; otherwise fresh, and a keeper for this configuration is started in
/// the background once two runs in a row asked for it (`want`: an open file of the box's,
/// only the caller's, that records the last configuration asked for), so a box used once
/// pays next to nothing for it.
pub fn run_box(req: &Request, state: &Path, want: &std::fs::File, idle_s: u64) -> Result<Verdict> {
    use std::os::unix::fs::FileExt;
    let policy = build(req)?;
    let w = match warm_plan(req, &policy) {
        Ok(w) => w,
        Err(why) => return Ok(verdict(&policy, launcher::run(&policy)?, fresh_because(why))),
    };
    match launcher::warm::Keeper::find(state) {
        Some(k) if k.key == w.key => {
            let info = warm_info(&policy, &w, &k);
            return Ok(verdict(&policy, launcher::run_in(&policy, Some((&k, &w)))?, info));
        }
        Some(k) => k.end(),
        None => {}
    }
    let key = format!("{:016x}", w.key);
    let mut last = [0u8; 16];
    let why = if want.read_exact_at(&mut last, 0).is_ok() && last == key.as_bytes() {
        let _ = want.write_all_at(&[b'-'; 16], 0);
        match launcher::warm::Keeper::start_detached(&policy, &w, state, idle_s) {
            Ok(()) => "the box's warm sandbox for this configuration is being started".to_string(),
            Err(e) => format!("the box's warm sandbox could not be started: {e}"),
        }
    } else {
        let _ = want.write_all_at(key.as_bytes(), 0);
        "no warm sandbox in this box holds this configuration yet".to_string()
    };
    Ok(verdict(&policy, launcher::run(&policy)?, fresh_because(why)))
}

/// Start the warm sandbox for `req` in the background, recorded in `state` (isolate --init).
pub fn prepare_box(req: &Request, state: &Path, idle_s: u64) -> Result<()> {
    let policy = build(req)?;
    let w = warm_plan(req, &policy).map_err(|why| Error::invalid(format!("warm mode: {why}"), "run without warm mode"))?;
    launcher::warm::Keeper::start_detached(&policy, &w, state, idle_s)
}

/// The `ward` command line (and isolate's, when `args[0]` is `isolate`), for the `ward`
/// binary; returns the exit code.
pub fn cli_main(args: Vec<OsString>) -> i32 {
    frontend::main(args)
}

#[cfg(test)]
mod send_check {
    fn is_send<T: Send>() {}
    #[test]
    fn handles_are_send() {
        is_send::<crate::WarmSandbox>();
        is_send::<crate::Sandbox>();
        is_send::<crate::Verdict>();
        is_send::<crate::Request>();
    }
}
