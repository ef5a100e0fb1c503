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
//!  filter (compiled or cached)
//!  open --stdin/--stdout/--stderr
//!  cgroup::obtain (leaf; systemd scope)
//!  clone(NEWUSER|NEWNS|NEWPID|...) ─────────► init (pid 1)
//!  userns::write_maps ── Go ────────────────►   userns::enter   (pdeathsig, wait for maps)
//!                                               mount::build_root (tmpfs, binds, pivot_root)
//!                                               net::configure   (lo up)
//!                                               hostname
//!                                               fork ─► program:
//!                                                         session, stdio, rlimits,
//!                                                         bounding set, ids, caps + nnp,
//!                                                         landlock, chdir, fds,
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
use std::path::PathBuf;

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
}

/// The whole pipeline for `req`: the host's facts (read only), the validated policy, the
/// run (`launcher::run`), and its verdict, judged against the seccomp supervisor's record and
/// the limits. Failures before the program started are errors; how it ended (exec failures
/// included) is in the verdict.
pub fn run(req: &Request) -> Result<Verdict> {
    let want_net = req.network.mode.is_some_and(|m| m != request::NetMode::None);
    let host = host::Host::gather(req.process.map_ranges.unwrap_or(false), want_net).map_err(|e| Error::io("read the current directory", e))?;
    let policy = policy::Policy::build(req, &host, &policy::tree::RealFs)?;
    let outcome = launcher::run(&policy)?;
    Ok(Verdict::new(&outcome.ending, outcome.enforced).with_blocked(outcome.blocked, outcome.killed_for_syscall).with_limits(&policy.limits, outcome.limit_hit))
}

/// The `ward` command line (and isolate's, when `args[0]` is `isolate`), for the `ward`
/// binary; returns the exit code.
pub fn cli_main(args: Vec<OsString>) -> i32 {
    frontend::main(args)
}
