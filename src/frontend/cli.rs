//! `ward run`'s command line (clap) and the `Request` it fills: only what is given, so that
//! `Request::overlay` puts it over the profile. Tree options keep the order they were given
//! in, as in bubblewrap: later operations build on earlier ones.

use crate::request::{BindAccess, Limit, MountSpec, NetMode, OnDeny, RLIMITS, Request, Rlim, Size, Workdir, WorkdirMode, parse_limit, parse_size};
use crate::{Error, Result};
use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit status of `ward run`:
  N        the program's own exit status
  128+N    the program was killed by signal N (also when ward killed it for a limit:
           137 = SIGKILL for TLE/WLE, 159 = SIGSYS for SYS; the verdict's status tells which)
  125      ward failed before the program started (the reason is on stderr)
  126      the program was found but could not be executed
  127      the program was not found inside the sandbox
  2        command-line usage error";

#[derive(Debug, Parser)]
#[command(name = "ward", version, about = "A rootless sandbox for untrusted code on Linux", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Run a program in a new sandbox and report what happened.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// List the built-in profiles, or print one (merged, as TOML).
    Profile {
        #[command(subcommand)]
        action: ProfileAction,
    },
    /// End warm sandbox keepers whose box or record is gone, and remove cgroup leaves left
    /// by launchers that no longer exist.
    Cleanup,
    /// Check what this host allows, and how to fix what it does not.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileAction {
    /// The built-in profiles, one per line with its description.
    List,
    /// The effective profile (after `extends`) as TOML, to copy and edit.
    Show {
        /// A built-in name or a path to a .toml file.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile to start from: a built-in name (ward profile list) or a .toml file
    /// [default: default]. The options below override it.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Bind SRC read-only at DST (recursively read-only, nosuid, nodev). Any bind exposes
    /// the unix sockets in SRC: connect() is not a write.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub ro_bind: Vec<PathBuf>,
    /// Bind SRC read-write at DST (nosuid, nodev).
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub bind: Vec<PathBuf>,
    /// Bind a device node SRC at DST (without nodev; nosuid).
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub dev_bind: Vec<PathBuf>,
    /// Mount a tmpfs at DST, of SIZE bytes (K, M, G suffixes; default: --tmp-size).
    #[arg(long, value_name = "DST[:SIZE]", action = clap::ArgAction::Append, help_heading = "Tree")]
    pub tmpfs: Vec<String>,
    /// Show SRC at DST writable; changes are kept in memory and discarded at exit.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub overlay: Vec<PathBuf>,
    /// Create a symlink DST pointing to TARGET.
    #[arg(long, num_args = 2, value_names = ["TARGET", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub symlink: Vec<PathBuf>,
    /// Create a directory DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Tree")]
    pub dir: Vec<PathBuf>,
    /// The host directory bound as the work dir at the same path [default: the current
    /// directory, unless it is /, your home directory or an ancestor of it, a system dir, or
    /// one others may write such as /tmp, whose sockets would be reachable].
    #[arg(long, value_name = "DIR", help_heading = "Tree")]
    pub workdir: Option<PathBuf>,
    /// How the work dir is bound: rw, ro, or overlay (writable, changes discarded) [default: rw].
    #[arg(long, value_name = "MODE", help_heading = "Tree")]
    pub workdir_mode: Option<WorkdirMode>,
    /// Bind no work dir.
    #[arg(long, conflicts_with = "workdir", help_heading = "Tree")]
    pub no_workdir: bool,
    /// Working directory inside [default: the work dir, else /].
    #[arg(long, value_name = "DIR", help_heading = "Tree")]
    pub chdir: Option<PathBuf>,
    /// Size of /tmp and /dev/shm [default: the profile's; 64M].
    #[arg(long, value_name = "SIZE", help_heading = "Tree")]
    pub tmp_size: Option<String>,
    /// Mount a private /dev/pts and /dev/ptmx (for programs that open pseudo-terminals).
    #[arg(long, help_heading = "Tree")]
    pub dev_pts: bool,
    /// No /proc in the sandbox, only an empty directory: for a container whose runtime masks
    /// /proc (the kernel then refuses the sandbox its own) when its fix cannot be applied.
    /// The program loses /proc (and /dev/fd); the verdict's enforced.root.proc says so.
    #[arg(long, help_heading = "Tree")]
    pub no_proc: bool,

    /// The uid the program runs as inside [default: yours; 0 with --map-ranges].
    #[arg(long, value_name = "N", help_heading = "Identity")]
    pub uid: Option<u32>,
    /// The gid the program runs as inside [default: yours; 0 with --map-ranges].
    #[arg(long, value_name = "N", help_heading = "Identity")]
    pub gid: Option<u32>,
    /// Map your whole /etc/subuid and /etc/subgid ranges (through newuidmap/newgidmap): you
    /// are 0 inside and the range is 1..=COUNT.
    #[arg(long, help_heading = "Identity")]
    pub map_ranges: bool,
    /// Host name inside [default: the profile's; ward].
    #[arg(long, value_name = "NAME", help_heading = "Identity")]
    pub hostname: Option<String>,

    /// Set VAR to VALUE in the program's environment.
    #[arg(long, num_args = 2, value_names = ["VAR", "VALUE"], action = clap::ArgAction::Append, help_heading = "Environment")]
    pub setenv: Vec<String>,
    /// VAR=VALUE sets VAR; VAR alone copies it from your environment. The program otherwise
    /// gets only PATH, HOME=/tmp, and your TERM and LANG.
    #[arg(long, short = 'E', value_name = "VAR[=VALUE]", action = clap::ArgAction::Append, help_heading = "Environment")]
    pub env: Vec<String>,

    /// CPU time limit of the whole run in seconds (all processes together): verdict TLE.
    #[arg(long, value_name = "SECONDS", help_heading = "Limits")]
    pub time: Option<f64>,
    /// Wall-clock limit in seconds: the run is killed then, verdict WLE.
    #[arg(long, value_name = "SECONDS", help_heading = "Limits")]
    pub wall_time: Option<f64>,
    /// Grace after --time before the run is killed; the verdict is still judged against --time.
    #[arg(long, value_name = "SECONDS", help_heading = "Limits")]
    pub extra_time: Option<f64>,
    /// Resident memory of the whole run (K, M, G suffixes): verdict MLE. Without cgroups it
    /// is sampled every 10 ms (resident sets and memfd files; approximate), tmpfs mounts are
    /// capped at it and SysV shmget is denied; --rlimit-as limits each process's address space.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub mem: Option<String>,
    /// Largest file the program may write, also caps --stdout/--stderr files (RLIMIT_FSIZE
    /// for every process): a run ended by it is OLE.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub fsize: Option<String>,
    /// Most processes and threads of the program, all together: RLIMIT_NPROC in the
    /// sandbox's own user namespace (Linux 5.14+; forks beyond it fail with EAGAIN), and
    /// pids.max too when the run has a cgroup leaf.
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub procs: Option<u64>,
    /// CPU bandwidth of the whole run in CPUs, e.g. 1 or 0.5 (cgroup cpu.max; needs a
    /// delegated cgroup).
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub cpus: Option<f64>,
    /// Refuse to run unless the run gets a cgroup v2 leaf in a delegated subtree (exact
    /// accounting, kernel-enforced limits); without it, limits are sampled.
    #[arg(long, conflicts_with = "no_require_cgroup", help_heading = "Limits")]
    pub require_cgroup: bool,
    /// Run even without a cgroup leaf (limits are then sampled), though the profile requires
    /// one (the judge profile does).
    #[arg(long, help_heading = "Limits")]
    pub no_require_cgroup: bool,
    /// --rlimit-as ... --rlimit-core, one per entry of `request::RLIMITS`.
    #[command(flatten)]
    pub rlimits: RlimitArgs,

    /// Keep the caller's session (the program can then reach your terminal's job control).
    #[arg(long, help_heading = "Process")]
    pub keep_session: bool,
    /// With --batch: every line in a fresh sandbox, as a single run (profile key
    /// process.warm = false).
    #[arg(long, help_heading = "Process")]
    pub no_warm: bool,
    /// The program's stdin, opened by ward with your rights, never through a link or FIFO in
    /// a directory the sandbox can write; a file you could write goes as a sealed copy
    /// [default: inherited].
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stdin: Option<PathBuf>,
    /// The program's stdout, created or truncated by ward with your rights (a regular file;
    /// never through a link in a directory the sandbox can write).
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stdout: Option<PathBuf>,
    /// The program's stderr, created or truncated by ward with your rights (as --stdout).
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stderr: Option<PathBuf>,

    /// Networking: none (loopback only), slirp4netns, pasta, or auto (pasta if installed,
    /// else slirp4netns) [default: the profile's, none].
    #[arg(long, value_name = "MODE", help_heading = "Network")]
    pub net: Option<NetMode>,
    /// Let the sandbox reach the host's loopback (127.0.0.1) through the helper's gateway.
    #[arg(long, help_heading = "Network")]
    pub allow_host_loopback: bool,
    /// Forward a host port into the sandbox: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp] (HOSTIP
    /// defaults to 127.0.0.1).
    #[arg(long, value_name = "SPEC", action = clap::ArgAction::Append, help_heading = "Network")]
    pub publish: Vec<String>,
    /// Only these TCP ports may be connected to (Landlock, Linux 6.7+): PORT[,PORT...].
    #[arg(long, value_name = "PORTS", value_delimiter = ',', action = clap::ArgAction::Append, help_heading = "Network")]
    pub allow_connect: Vec<u16>,
    /// Only these TCP ports may be bound (Landlock, Linux 6.7+): PORT[,PORT...].
    #[arg(long, value_name = "PORTS", value_delimiter = ',', action = clap::ArgAction::Append, help_heading = "Network")]
    pub allow_bind: Vec<u16>,

    /// Also allow these system calls (names or groups such as @ptrace), beyond the profile's.
    #[arg(long, value_name = "SYSCALL", action = clap::ArgAction::Append, help_heading = "Seccomp")]
    pub seccomp_allow: Vec<String>,
    /// Allow ptrace and process_vm_readv/writev among the sandbox's own processes (debuggers).
    #[arg(long, help_heading = "Seccomp")]
    pub allow_ptrace: bool,
    /// What a denied system call does: errno (it fails with EPERM) or kill (the run ends, SYS).
    #[arg(long, value_name = "ACTION", help_heading = "Seccomp")]
    pub on_deny: Option<OnDeny>,
    /// Print each denied system call to stderr as it happens (the verdict lists them anyway).
    #[arg(long, help_heading = "Seccomp")]
    pub log_denied: bool,
    /// Run without any seccomp filter (weakens the sandbox: the kernel's whole surface is open).
    #[arg(long, help_heading = "Seccomp")]
    pub no_seccomp: bool,

    /// Landlock ABI to ask for (1-7) [default: 7].
    #[arg(long, value_name = "N", help_heading = "Landlock")]
    pub landlock_abi: Option<u8>,
    /// Fail instead of running with less, when the kernel lacks part of the Landlock ABI asked for.
    #[arg(long, conflicts_with = "no_landlock", help_heading = "Landlock")]
    pub require_landlock: bool,
    /// Run without Landlock.
    #[arg(long, help_heading = "Landlock")]
    pub no_landlock: bool,

    /// Write the JSON verdict to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub verdict: Option<PathBuf>,
    /// Also write isolate's meta file (time, time-wall, max-rss, cg-mem, exitcode, exitsig,
    /// killed, message, status RE/SG/TO/XX) to FILE, for graders that read isolate's output.
    #[arg(long, value_name = "FILE", help_heading = "Report")]
    pub meta: Option<PathBuf>,
    /// Write the JSON verdict to the open file descriptor N.
    #[arg(long, value_name = "N", conflicts_with = "verdict", help_heading = "Report")]
    pub verdict_fd: Option<i32>,

    /// Run many programs in one warm sandbox: FILE ('-': stdin) has one JSON request per
    /// line, {"argv": [...]} with optional "stdin", "stdout", "stderr" (host paths), "env"
    /// (["K=V", ...]), "time", "wall_time" (seconds) and "mem" (bytes) over the options
    /// given here; one verdict per line goes to stdout, in order (a program's stdout is
    /// /dev/null unless a file is named). Exit 0 once every line has its verdict. Runs are one after
    /// another; each is isolated from the others as a fresh run is (SECURITY.md). The next
    /// run is prepared while one runs when its line can be read without waiting; its stdio
    /// files are opened only when the run before it has ended.
    #[arg(long, value_name = "FILE", conflicts_with = "argv", help_heading = "Report")]
    pub batch: Option<PathBuf>,

    /// The program and its arguments.
    #[arg(required_unless_present = "batch", trailing_var_arg = true, value_name = "PROGRAM [ARGS]...")]
    pub argv: Vec<OsString>,
}

/// Indices (positions on the command line) of each group of `n` values of option `id`.
fn positions(m: &ArgMatches, id: &str, n: usize) -> Vec<usize> {
    m.indices_of(id).map(|it| it.collect::<Vec<_>>().chunks(n).map(|c| c[0]).collect()).unwrap_or_default()
}

fn pairs(v: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    v.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect()
}

/// The `--rlimit-NAME` options, made from the one table of rlimits.
#[derive(Debug, Clone, Default)]
pub struct RlimitArgs(pub BTreeMap<Limit, String>);

fn rlimit_id(l: Limit) -> String {
    format!("rlimit_{}", l.name())
}

impl FromArgMatches for RlimitArgs {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut a = RlimitArgs::default();
        a.update_from_arg_matches(m)?;
        Ok(a)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        for (l, ..) in RLIMITS {
            if let Some(v) = m.get_one::<String>(&rlimit_id(l)) {
                self.0.insert(l, v.clone());
            }
        }
        Ok(())
    }
}

impl Args for RlimitArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        RLIMITS.iter().fold(cmd, |cmd, (l, _, value, help)| {
            cmd.arg(clap::Arg::new(rlimit_id(*l)).long(format!("rlimit-{}", l.name())).value_name(*value).help(*help).help_heading("Limits"))
        })
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn some_if(b: bool) -> Option<bool> {
    b.then_some(true)
}

impl RunArgs {
    /// What the command line asks for, as a request to put over the profile's: only what is
    /// given; tree operations and environment in command-line order.
    pub fn to_request(&self, m: &ArgMatches) -> Result<Request> {
        let mut ops: Vec<(usize, MountSpec)> = Vec::new();
        let bind = |access| move |src, dst| MountSpec::Bind { src, dst, access, optional: false };
        for (id, v, mk) in [
            ("ro_bind", &self.ro_bind, Box::new(bind(BindAccess::ReadOnly)) as Box<dyn Fn(PathBuf, PathBuf) -> MountSpec>),
            ("bind", &self.bind, Box::new(bind(BindAccess::ReadWrite))),
            ("dev_bind", &self.dev_bind, Box::new(bind(BindAccess::Device))),
            ("overlay", &self.overlay, Box::new(|src, dst| MountSpec::Overlay { src, dst, optional: false })),
            ("symlink", &self.symlink, Box::new(|target, dst| MountSpec::Symlink { target, dst })),
        ] {
            for (pos, (a, b)) in positions(m, id, 2).into_iter().zip(pairs(v)) {
                ops.push((pos, mk(a, b)));
            }
        }
        for (pos, spec) in positions(m, "tmpfs", 1).into_iter().zip(&self.tmpfs) {
            let (dst, size) = match spec.rsplit_once(':') {
                Some((d, s)) => (d, Some(Size(parse_size("--tmpfs", s)?))),
                None => (spec.as_str(), None),
            };
            ops.push((pos, MountSpec::Tmpfs { dst: dst.into(), size }));
        }
        for (pos, d) in positions(m, "dir", 1).into_iter().zip(&self.dir) {
            ops.push((pos, MountSpec::Dir { dst: d.clone() }));
        }
        ops.sort_by_key(|(p, _)| *p);

        let mut r = Request::new(self.argv.clone());
        // --setenv and --env in command-line order.
        // (position, Ok(set VAR=VALUE) or Err(pass VAR))
        type EnvOp = std::result::Result<(String, String), String>;
        let mut envs: Vec<(usize, EnvOp)> = Vec::new();
        for (pos, c) in positions(m, "setenv", 2).into_iter().zip(self.setenv.chunks(2)) {
            if let [k, v] = c {
                envs.push((pos, Ok((k.clone(), v.clone()))));
            }
        }
        for (pos, e) in positions(m, "env", 1).into_iter().zip(&self.env) {
            match e.split_once('=') {
                Some((k, v)) => envs.push((pos, Ok((k.to_string(), v.to_string())))),
                None => envs.push((pos, Err(e.clone()))),
            }
        }
        envs.sort_by_key(|(p, _)| *p);
        for (_, e) in envs {
            match e {
                Ok(set) => r.process.env.push(set),
                Err(pass) => r.process.pass_env.push(pass),
            }
        }
        for (l, v) in &self.rlimits.0 {
            r.process.rlimits.insert(*l, Rlim(parse_limit(&format!("--rlimit-{}", l.name()), v)?));
        }
        let t = &mut r.tree;
        t.workdir = if self.no_workdir { Some(Workdir::None) } else { self.workdir.clone().map(Workdir::Dir) };
        t.workdir_mode = self.workdir_mode;
        t.mounts = ops.into_iter().map(|(_, s)| s).collect();
        t.chdir = self.chdir.clone();
        t.tmp_size = self.tmp_size.as_deref().map(|v| parse_size("--tmp-size", v).map(Size)).transpose()?;
        t.dev_pts = some_if(self.dev_pts);
        t.no_proc = some_if(self.no_proc);
        let pr = &mut r.process;
        pr.uid = self.uid;
        pr.gid = self.gid;
        pr.map_ranges = some_if(self.map_ranges);
        pr.hostname = self.hostname.clone();
        pr.keep_session = some_if(self.keep_session);
        if self.no_warm {
            pr.warm = Some(false);
        }
        let run = &mut r.run;
        run.stdin = self.stdin.clone();
        run.stdout = self.stdout.clone();
        run.stderr = self.stderr.clone();
        let sc = &mut r.seccomp;
        sc.enabled = self.no_seccomp.then_some(false);
        sc.allow = self.seccomp_allow.clone();
        sc.allow_ptrace = some_if(self.allow_ptrace);
        sc.on_deny = self.on_deny;
        sc.log_denied = some_if(self.log_denied);
        let l = &mut r.limits;
        l.time = self.time;
        l.wall_time = self.wall_time;
        l.extra_time = self.extra_time;
        l.require_cgroup = if self.no_require_cgroup { Some(false) } else { some_if(self.require_cgroup) };
        l.procs = self.procs;
        l.output = self.fsize.as_deref().map(|f| parse_size("--fsize", f).map(Size)).transpose()?;
        l.cpus = self.cpus;
        l.mem = self.mem.as_deref().map(|v| parse_size("--mem", v).map(Size)).transpose()?;
        let n = &mut r.network;
        n.mode = self.net;
        n.allow_host_loopback = some_if(self.allow_host_loopback);
        n.publish = self.publish.clone();
        n.allow_connect = self.allow_connect.clone();
        n.allow_bind = self.allow_bind.clone();
        let ll = &mut r.landlock;
        ll.enabled = self.no_landlock.then_some(false);
        ll.abi = self.landlock_abi;
        ll.optional = self.require_landlock.then_some(false);
        Ok(r)
    }
}

/// The request of `ward run`: the profile (`--profile`, default `default`), then the command
/// line over it.
pub fn request(args: &RunArgs, m: &ArgMatches) -> Result<Request> {
    let profile = crate::request::profile::load(args.profile.as_deref().unwrap_or("default"))?;
    Ok(profile.overlay(&args.to_request(m)?))
}

/// `--verdict-fd N` must name an open descriptor above 2: a file of ours on the same open
/// file.
pub fn verdict_file(fd: i32) -> Result<std::fs::File> {
    if fd < 3 {
        return Err(Error::invalid(format!("--verdict-fd {fd}: use a descriptor above 2"), "open one for ward, e.g. 3>verdict.json --verdict-fd 3"));
    }
    crate::sys::dup_inherited_fd(fd)
        .map(std::fs::File::from)
        .map_err(|_| Error::invalid(format!("--verdict-fd {fd}: the descriptor is not open"), "open it for ward, e.g. 3>verdict.json --verdict-fd 3"))
}
