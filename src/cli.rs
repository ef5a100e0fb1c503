//! Command-line types (clap) and their translation into `Options`. Tree options keep the
//! order they were given in, as in bubblewrap: later operations build on earlier ones.

use crate::policy::{Limit, MountSpec, Options, Workdir, WorkdirMode, parse_limit, parse_size};
use crate::seccomp::OnDeny;
use crate::{Error, Result};
use clap::{ArgMatches, Args, Parser, Subcommand};
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
    /// Remove cgroup leaves left by launchers that no longer exist.
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
    /// Bind SRC read-only at DST (recursively read-only, nosuid, nodev).
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub ro_bind: Vec<PathBuf>,
    /// Bind SRC read-write at DST (nosuid, nodev).
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Tree")]
    pub bind: Vec<PathBuf>,
    /// Bind a device node SRC at DST (without nodev).
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
    /// directory, unless it is /, your home directory or an ancestor of it, or a system dir].
    #[arg(long, value_name = "DIR", help_heading = "Tree")]
    pub workdir: Option<PathBuf>,
    /// How the work dir is bound: rw, ro, or overlay (writable, changes discarded) [default: rw].
    #[arg(long, value_name = "MODE", value_parser = ["rw", "ro", "overlay"], help_heading = "Tree")]
    pub workdir_mode: Option<String>,
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
    /// is sampled every 10 ms (approximate); --rlimit-as limits each process's address space.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub mem: Option<String>,
    /// Largest file the program may write, also caps --stdout/--stderr files (RLIMIT_FSIZE
    /// for every process): a run ended by it is OLE.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub fsize: Option<String>,
    /// Most processes and threads of the program, all together (cgroup pids.max, plus one for
    /// the sandbox's init; needs a delegated cgroup).
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
    /// RLIMIT_AS for the program (bytes, K/M/G suffixes, or unlimited).
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub rlimit_as: Option<String>,
    /// RLIMIT_FSIZE: largest file the program may write.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub rlimit_fsize: Option<String>,
    /// RLIMIT_NOFILE: most open files.
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rlimit_nofile: Option<String>,
    /// RLIMIT_NPROC (counts all processes of your uid on the host, not only the sandbox's).
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub rlimit_nproc: Option<String>,
    /// RLIMIT_CPU in seconds, per process.
    #[arg(long, value_name = "SECONDS", help_heading = "Limits")]
    pub rlimit_cpu: Option<String>,
    /// RLIMIT_STACK.
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub rlimit_stack: Option<String>,
    /// RLIMIT_CORE [default: 0].
    #[arg(long, value_name = "SIZE", help_heading = "Limits")]
    pub rlimit_core: Option<String>,

    /// Keep the caller's session (the program can then reach your terminal's job control).
    #[arg(long, help_heading = "Process")]
    pub keep_session: bool,
    /// The program's stdin, opened by ward with your rights [default: inherited].
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stdin: Option<PathBuf>,
    /// The program's stdout, created or truncated by ward with your rights.
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stdout: Option<PathBuf>,
    /// The program's stderr, created or truncated by ward with your rights.
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub stderr: Option<PathBuf>,

    /// Networking: none (loopback only), slirp4netns, pasta, or auto (pasta if installed,
    /// else slirp4netns) [default: the profile's, none].
    #[arg(long, value_name = "MODE", value_parser = ["none", "slirp4netns", "pasta", "auto"], help_heading = "Network")]
    pub net: Option<String>,
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
    #[arg(long, value_name = "ACTION", value_parser = ["errno", "kill"], help_heading = "Seccomp")]
    pub on_deny: Option<String>,
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

    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM [ARGS]...")]
    pub argv: Vec<OsString>,
}

/// Indices (positions on the command line) of each group of `n` values of option `id`.
fn positions(m: &ArgMatches, id: &str, n: usize) -> Vec<usize> {
    m.indices_of(id).map(|it| it.collect::<Vec<_>>().chunks(n).map(|c| c[0]).collect()).unwrap_or_default()
}

fn pairs(v: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    v.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect()
}

impl RunArgs {
    /// Apply the command line on top of `o` (the profile's options): scalars given here
    /// replace, tree operations and environment are appended in command-line order.
    pub fn to_options(&self, m: &ArgMatches, mut o: Options) -> Result<Options> {
        let mut ops: Vec<(usize, MountSpec)> = Vec::new();
        for (id, v, mk) in [
            ("ro_bind", &self.ro_bind, (|s, d| MountSpec::RoBind { src: s, dst: d }) as fn(PathBuf, PathBuf) -> MountSpec),
            ("bind", &self.bind, |s, d| MountSpec::Bind { src: s, dst: d }),
            ("dev_bind", &self.dev_bind, |s, d| MountSpec::DevBind { src: s, dst: d }),
            ("overlay", &self.overlay, |s, d| MountSpec::Overlay { src: s, dst: d }),
            ("symlink", &self.symlink, |t, d| MountSpec::Symlink { target: t, dst: d }),
        ] {
            for (pos, (a, b)) in positions(m, id, 2).into_iter().zip(pairs(v)) {
                ops.push((pos, mk(a, b)));
            }
        }
        for (pos, spec) in positions(m, "tmpfs", 1).into_iter().zip(&self.tmpfs) {
            let (dst, size) = match spec.rsplit_once(':') {
                Some((d, s)) => (d, Some(parse_size("--tmpfs", s)?)),
                None => (spec.as_str(), None),
            };
            ops.push((pos, MountSpec::Tmpfs { dst: dst.into(), size }));
        }
        for (pos, d) in positions(m, "dir", 1).into_iter().zip(&self.dir) {
            ops.push((pos, MountSpec::Dir { dst: d.clone() }));
        }
        ops.sort_by_key(|(p, _)| *p);

        let mut setenv: Vec<(String, OsString)> = Vec::new();
        let mut pass_env = Vec::new();
        // --setenv and --env in command-line order.
        type EnvOp = (usize, Option<(String, OsString)>, Option<String>);
        let mut envs: Vec<EnvOp> = Vec::new();
        for (pos, c) in positions(m, "setenv", 2).into_iter().zip(self.setenv.chunks(2)) {
            if let [k, v] = c {
                envs.push((pos, Some((k.clone(), v.into())), None));
            }
        }
        for (pos, e) in positions(m, "env", 1).into_iter().zip(&self.env) {
            match e.split_once('=') {
                Some((k, v)) => envs.push((pos, Some((k.to_string(), v.into())), None)),
                None => envs.push((pos, None, Some(e.clone()))),
            }
        }
        envs.sort_by_key(|(p, _, _)| *p);
        for (_, set, pass) in envs {
            if let Some(s) = set {
                setenv.push(s);
            }
            if let Some(p) = pass {
                pass_env.push(p);
            }
        }

        let mut rlimits = Vec::new();
        for (l, v, what) in [
            (Limit::As, &self.rlimit_as, "--rlimit-as"),
            (Limit::Fsize, &self.rlimit_fsize, "--rlimit-fsize"),
            (Limit::Nofile, &self.rlimit_nofile, "--rlimit-nofile"),
            (Limit::Nproc, &self.rlimit_nproc, "--rlimit-nproc"),
            (Limit::Cpu, &self.rlimit_cpu, "--rlimit-cpu"),
            (Limit::Stack, &self.rlimit_stack, "--rlimit-stack"),
            (Limit::Core, &self.rlimit_core, "--rlimit-core"),
        ] {
            if let Some(v) = v {
                rlimits.push((l, parse_limit(what, v)?));
            }
        }
        if self.no_workdir {
            o.workdir = Workdir::None;
        } else if let Some(d) = &self.workdir {
            o.workdir = Workdir::Dir(d.clone());
        }
        match self.workdir_mode.as_deref() {
            Some("ro") => o.workdir_mode = WorkdirMode::ReadOnly,
            Some("overlay") => o.workdir_mode = WorkdirMode::Overlay,
            Some(_) => o.workdir_mode = WorkdirMode::ReadWrite,
            None => {}
        }
        o.argv = self.argv.clone();
        o.uid = self.uid.or(o.uid);
        o.gid = self.gid.or(o.gid);
        o.map_ranges |= self.map_ranges;
        o.mounts.extend(ops.into_iter().map(|(_, s)| s));
        if self.chdir.is_some() {
            o.chdir = self.chdir.clone();
        }
        if let Some(t) = &self.tmp_size {
            o.tmp_size = Some(parse_size("--tmp-size", t)?);
        }
        o.dev_pts |= self.dev_pts;
        if self.hostname.is_some() {
            o.hostname = self.hostname.clone();
        }
        o.setenv.extend(setenv);
        o.pass_env.extend(pass_env);
        o.rlimits.extend(rlimits);
        o.keep_session |= self.keep_session;
        for (dst, src) in [(&mut o.stdin, &self.stdin), (&mut o.stdout, &self.stdout), (&mut o.stderr, &self.stderr)] {
            if src.is_some() {
                *dst = src.clone();
            }
        }
        let sc = &mut o.seccomp;
        sc.enabled &= !self.no_seccomp;
        sc.allow.extend(self.seccomp_allow.iter().cloned());
        sc.deny.retain(|d| !self.seccomp_allow.contains(d));
        sc.allow_ptrace |= self.allow_ptrace;
        if let Some(a) = &self.on_deny {
            sc.on_deny = if a == "kill" { OnDeny::Kill } else { OnDeny::Errno };
        }
        sc.log_denied |= self.log_denied;
        o.time = self.time.or(o.time);
        o.wall_time = self.wall_time.or(o.wall_time);
        o.extra_time = self.extra_time.or(o.extra_time);
        o.require_cgroup = (o.require_cgroup || self.require_cgroup) && !self.no_require_cgroup;
        o.procs = self.procs.or(o.procs);
        if let Some(f) = &self.fsize {
            o.output = Some(parse_size("--fsize", f)?);
        }
        o.cpus = self.cpus.or(o.cpus);
        if let Some(m) = &self.mem {
            o.mem = Some(parse_size("--mem", m)?);
        }
        if let Some(m) = &self.net {
            o.net.mode = crate::net::NetMode::parse(m)?;
        }
        o.net.allow_host_loopback |= self.allow_host_loopback;
        o.net.publish.extend(self.publish.iter().cloned());
        o.net.allow_connect.extend(&self.allow_connect);
        o.net.allow_bind.extend(&self.allow_bind);
        let ll = &mut o.landlock;
        ll.enabled &= !self.no_landlock;
        if let Some(abi) = self.landlock_abi {
            ll.abi = abi;
        }
        if self.require_landlock {
            ll.optional = false;
        }
        Ok(o)
    }
}

/// `--verdict-fd N` must name an open descriptor above 2.
pub fn check_verdict_fd(fd: i32) -> Result<()> {
    if fd < 3 {
        return Err(Error::invalid(format!("--verdict-fd {fd}: use a descriptor above 2"), "open one for ward, e.g. 3>verdict.json --verdict-fd 3"));
    }
    match nix::fcntl::fcntl(crate::sys::borrow_fd(fd), nix::fcntl::FcntlArg::F_GETFD) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::invalid(format!("--verdict-fd {fd}: the descriptor is not open"), "open it for ward, e.g. 3>verdict.json --verdict-fd 3")),
    }
}
