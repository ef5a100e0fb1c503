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
//!  Options ─► Policy::build (pure)
//!  open --stdin/--stdout/--stderr
//!  clone(NEWUSER|NEWNS|NEWPID|...) ─────────► init (pid 1)
//!  idmap::write_maps ── Go ─────────────────►   userns::enter   (pdeathsig, wait for maps)
//!                                               mount::build_root (tmpfs, binds, pivot_root)
//!                                               net::configure   (lo up)
//!                                               hostname
//!                                               fork ─► program:
//!                                                         session, stdio, rlimits,
//!                                                         bounding set, ids, caps + nnp,
//!                                                         landlock, chdir, fds,
//!  seccomp::Supervisor ◄── listener fd ─────               seccomp (listener), execve
//!  supervise (signalfd + poll) ◄── Exited ──    reap, forward signals, kill the rest
//!  Verdict (JSON)
//! ```
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
pub mod sys;

pub mod cgroup;
pub mod dbus;
pub mod check;
pub mod cli;
pub mod child;
pub mod error;
pub mod fuzzing;
pub mod idmap;
pub mod isolate;
pub mod landlock;
pub mod launcher;
pub mod limits;
pub mod net;
pub mod policy;
pub mod probe;
pub mod profile;
pub mod seccomp;
pub mod sync;
pub mod syscalls;
pub mod verdict;

pub use error::{Error, Result};
pub use policy::{Limit, MountSpec, Options, Policy, Workdir, WorkdirMode};
pub use verdict::{Status, Verdict};

use std::ffi::OsString;
use std::path::PathBuf;

/// A sandbox to run one program in: a builder over [`Options`].
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    opts: Options,
}

impl Sandbox {
    /// A strict sandbox for `argv` (program first).
    pub fn new<I, S>(argv: I) -> Sandbox
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Sandbox { opts: Options { argv: argv.into_iter().map(Into::into).collect(), ..Options::default() } }
    }

    /// Start from options built elsewhere (the CLI, a profile).
    pub fn from_options(opts: Options) -> Sandbox {
        Sandbox { opts }
    }

    /// Bind `src` read-only at `dst`.
    pub fn ro_bind(mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Sandbox {
        self.opts.mounts.push(MountSpec::RoBind { src: src.into(), dst: dst.into() });
        self
    }

    /// Bind `src` read-write at `dst`.
    pub fn bind(mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Sandbox {
        self.opts.mounts.push(MountSpec::Bind { src: src.into(), dst: dst.into() });
        self
    }

    /// A tmpfs at `dst` (`size` in bytes; default: the /tmp size).
    pub fn tmpfs(mut self, dst: impl Into<PathBuf>, size: Option<u64>) -> Sandbox {
        self.opts.mounts.push(MountSpec::Tmpfs { dst: dst.into(), size });
        self
    }

    /// Which host directory is the work dir (default: the current directory, see [`Workdir`]).
    pub fn workdir(mut self, w: Workdir, mode: WorkdirMode) -> Sandbox {
        self.opts.workdir = w;
        self.opts.workdir_mode = mode;
        self
    }

    /// Set an environment variable for the program.
    pub fn setenv(mut self, k: impl Into<String>, v: impl Into<OsString>) -> Sandbox {
        self.opts.setenv.push((k.into(), v.into()));
        self
    }

    /// Set a resource limit (`None`: unlimited).
    pub fn rlimit(mut self, l: Limit, v: Option<u64>) -> Sandbox {
        self.opts.rlimits.push((l, v));
        self
    }

    /// Files for the program's stdin, stdout and stderr, opened with the caller's rights.
    pub fn stdio(mut self, stdin: Option<PathBuf>, stdout: Option<PathBuf>, stderr: Option<PathBuf>) -> Sandbox {
        self.opts.stdin = stdin;
        self.opts.stdout = stdout;
        self.opts.stderr = stderr;
        self
    }

    /// Every option, for what the builder methods do not cover.
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.opts
    }

    /// Validate, run, wait, and return the verdict. Failures before the program started are
    /// errors; how the program ended (including exec failures) is in the verdict.
    pub fn run(&self) -> Result<Verdict> {
        run(&self.opts)
    }
}

/// The whole pipeline for `opts`: the host's facts, the validated policy, the run, and its
/// verdict (judged against the seccomp supervisor's record and the limits). Failures before
/// the program started are errors; how it ended (exec failures included) is in the verdict.
pub fn run(opts: &Options) -> Result<Verdict> {
    let host = policy::Host::gather_for(opts.map_ranges, opts.net.mode != net::NetMode::None).map_err(|e| Error::io("read the current directory", e))?;
    let policy = Policy::build(opts, &host, &policy::RealFs)?;
    let outcome = launcher::run(&policy)?;
    Ok(Verdict::new(&outcome.ending, outcome.enforced)
        .with_blocked(outcome.blocked, outcome.killed_for_syscall)
        .with_limits(&policy.limits, outcome.limit_hit))
}

/// The options of `ward run`: the profile (`--profile`, default `default`), then the
/// command line on top (kept here so the binary stays thin).
pub fn cli_options(args: &cli::RunArgs, m: &clap::ArgMatches) -> Result<Options> {
    let profile = profile::Profile::load(args.profile.as_deref().unwrap_or("default"))?;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let base = profile.to_options(home.as_deref())?;
    args.to_options(m, base)
}
