//! Declare, validate, normalize: what the caller asked for (`Options`, filled by the CLI or a
//! profile) becomes a `Policy`, the complete and checked description of one run: the ordered
//! list of tree operations, the ids, the environment, the limits. Building a policy is pure
//! apart from the `Host` facts passed in, so every decision here is unit tested; nothing in
//! this module touches the kernel.

use crate::error::{Error, Result};
use crate::landlock::LandlockPolicy;
use crate::seccomp::{OnDeny, SeccompPolicy};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Longest single argument the kernel accepts (MAX_ARG_STRLEN).
pub const MAX_ARG_LEN: usize = 128 * 1024;
/// Cap on argv + environment together; the kernel allows about a quarter of the stack limit.
pub const MAX_ARGS_TOTAL: usize = 2 * 1024 * 1024;
pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_HOSTNAME: &str = "ward";

/// One tree operation the caller asked for, in bubblewrap's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    RoBind { src: PathBuf, dst: PathBuf },
    Bind { src: PathBuf, dst: PathBuf },
    DevBind { src: PathBuf, dst: PathBuf },
    Tmpfs { dst: PathBuf, size: Option<u64> },
    Overlay { src: PathBuf, dst: PathBuf },
    Symlink { target: PathBuf, dst: PathBuf },
    Dir { dst: PathBuf },
    /// Make what is mounted at `dst` (a bind made earlier) noexec, recursively.
    NoExec { dst: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkdirMode {
    /// Bound read-write: the program's changes stay.
    #[default]
    ReadWrite,
    /// Bound read-only.
    ReadOnly,
    /// Shown writable through an overlay; changes are discarded at exit.
    Overlay,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Workdir {
    /// The caller's current directory, unless it is `/`, the home directory or one of its
    /// ancestors (binding those writable would expose dotfiles); then none.
    #[default]
    Auto,
    Dir(PathBuf),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    As,
    Fsize,
    Nofile,
    Nproc,
    Cpu,
    Stack,
    Core,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::As => "as",
            Limit::Fsize => "fsize",
            Limit::Nofile => "nofile",
            Limit::Nproc => "nproc",
            Limit::Cpu => "cpu",
            Limit::Stack => "stack",
            Limit::Core => "core",
        }
    }
}

/// The seccomp part of `Options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompOptions {
    pub enabled: bool,
    /// Groups (`@basic`, `@ptrace`) and system call names.
    pub allow: Vec<String>,
    /// Names removed from what `allow` gives.
    pub deny: Vec<String>,
    pub allow_ptrace: bool,
    pub on_deny: OnDeny,
    pub log_denied: bool,
}

impl Default for SeccompOptions {
    fn default() -> Self {
        SeccompOptions { enabled: true, allow: vec!["@basic".into()], deny: Vec::new(), allow_ptrace: false, on_deny: OnDeny::Errno, log_denied: false }
    }
}

/// The Landlock part of `Options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockOptions {
    pub enabled: bool,
    /// The ABI asked for (1..=7).
    pub abi: u8,
    /// What the kernel lacks of `abi` is dropped (and reported) instead of failing.
    pub optional: bool,
}

impl Default for LandlockOptions {
    fn default() -> Self {
        LandlockOptions { enabled: true, abi: crate::landlock::TESTED_ABI, optional: true }
    }
}

/// The networking part of `Options`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetOptions {
    pub mode: crate::net::NetMode,
    pub allow_host_loopback: bool,
    /// `[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]` specs.
    pub publish: Vec<String>,
    /// TCP ports the program may connect to (empty: any) / bind (empty: any); Landlock ABI 4+.
    pub allow_connect: Vec<u16>,
    pub allow_bind: Vec<u16>,
}

/// Whether Landlock is applied, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandlockState {
    On(LandlockPolicy),
    Off(String),
}

/// What the caller wants: filled by the CLI (and later by profiles). Everything optional has
/// the strict default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub argv: Vec<OsString>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub map_ranges: bool,
    pub mounts: Vec<MountSpec>,
    pub workdir: Workdir,
    pub workdir_mode: WorkdirMode,
    pub chdir: Option<PathBuf>,
    pub tmp_size: Option<u64>,
    pub dev_pts: bool,
    pub hostname: Option<String>,
    /// `--setenv VAR VALUE` and `--env VAR=VALUE` (in order; later wins).
    pub setenv: Vec<(String, OsString)>,
    /// `--env VAR`: copy VAR from the caller's environment if set.
    pub pass_env: Vec<String>,
    /// `--rlimit-*`: `None` value means unlimited.
    pub rlimits: Vec<(Limit, Option<u64>)>,
    pub keep_session: bool,
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub seccomp: SeccompOptions,
    pub landlock: LandlockOptions,
    pub net: NetOptions,
    /// `--time`, `--wall-time`, `--extra-time` (seconds).
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    pub extra_time: Option<f64>,
    /// `--mem`: resident memory of the whole run (bytes).
    pub mem: Option<u64>,
    /// `--fsize`: largest file the program may write (bytes); ended by it: OLE.
    pub output: Option<u64>,
    /// `--procs`, `--cpus`: whole-run process count and CPU bandwidth (cgroups only).
    pub procs: Option<u64>,
    pub cpus: Option<f64>,
    /// Refuse to run without a delegated cgroup v2 subtree.
    pub require_cgroup: bool,
    /// The program's stderr goes where its stdout goes.
    pub stderr_to_stdout: bool,
}

/// Facts about the caller and the host that a policy depends on (gathered by
/// `Host::gather`, or made up in tests).
#[derive(Debug, Clone)]
pub struct Host {
    pub uid: u32,
    pub gid: u32,
    pub user_name: String,
    pub group_name: String,
    pub home: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: Vec<(String, OsString)>,
    /// Top-level directories next to /usr: (name, Some(symlink target)) or (name, None) for a
    /// real directory. Only those that exist.
    pub usr_links: Vec<(String, Option<PathBuf>)>,
    pub has_ld_so_cache: bool,
    pub has_alternatives: bool,
    pub localtime: Option<PathBuf>,
    /// The caller's /etc/subuid and /etc/subgid ranges (start, count), if any.
    pub subuid: Option<(u32, u32)>,
    pub subgid: Option<(u32, u32)>,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: u8,
    /// ward's cache of compiled filters (canonical when it exists).
    pub cache_dir: Option<PathBuf>,
    /// Networking helpers found on PATH, and the host's IPv4 default gateway (only gathered
    /// when networking is asked for).
    pub slirp4netns: Option<PathBuf>,
    pub pasta: Option<PathBuf>,
    pub gateway: Option<std::net::IpAddr>,
    /// The delegated cgroup v2 subtree ward may use, or why there is none.
    pub cgroup: std::result::Result<crate::cgroup::Subtree, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// A device node: read-write and without `nodev`.
    Device,
}

/// One step of building the root, with host paths already canonical and destinations
/// normalized. The child executes the list in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    Bind { src: PathBuf, dst: PathBuf, dir: bool, access: Access },
    Tmpfs { dst: PathBuf, size: u64, mode: u32, noexec: bool },
    Overlay { src: PathBuf, dst: PathBuf, size: u64 },
    Symlink { target: PathBuf, dst: PathBuf },
    Dir { dst: PathBuf },
    File { dst: PathBuf, contents: Vec<u8> },
    Proc { dst: PathBuf },
    DevPts { dst: PathBuf },
    /// Make a mount point read-only (not recursive): used last, for / and /dev.
    RemountRo { dst: PathBuf },
    /// Add noexec to a mount (recursively).
    NoExec { dst: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMap {
    /// The caller's uid/gid appear as `inside_uid`/`inside_gid`; setgroups is denied.
    Single,
    /// Through newuidmap/newgidmap: the caller is 0 inside, and ids 1..=count are the
    /// subordinate range starting at `start`.
    Ranges { uid_start: u32, uid_count: u32, gid_start: u32, gid_count: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub outside_uid: u32,
    pub outside_gid: u32,
    /// The ids the program runs as.
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub map: IdMap,
}

impl Ids {
    /// The id the launcher's own ids map to inside (the init runs as it).
    pub fn init_uid(&self) -> u32 {
        match self.map {
            IdMap::Single => self.inside_uid,
            IdMap::Ranges { .. } => 0,
        }
    }
    pub fn init_gid(&self) -> u32 {
        match self.map {
            IdMap::Single => self.inside_gid,
            IdMap::Ranges { .. } => 0,
        }
    }
}

/// The validated description of one run.
#[derive(Debug, Clone)]
pub struct Policy {
    pub argv: Vec<OsString>,
    /// Where the program is looked for inside, in order (PATH search done ahead of time).
    pub exec_candidates: Vec<PathBuf>,
    pub ids: Ids,
    pub tree: Vec<MountOp>,
    pub chdir: PathBuf,
    pub hostname: String,
    pub env: Vec<(String, OsString)>,
    pub rlimits: Vec<(Limit, Option<u64>)>,
    pub new_session: bool,
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub stderr_to_stdout: bool,
    /// The work directory bound inside, if any, and how.
    pub workdir: Option<(PathBuf, WorkdirMode)>,
    pub seccomp: Option<SeccompPolicy>,
    pub net: Option<crate::net::NetPolicy>,
    pub limits: crate::limits::TimeLimits,
    /// The subtree and limits of the run's cgroup leaf, when one is used.
    pub cgroup: Option<(crate::cgroup::Subtree, crate::cgroup::CgLimits)>,
    /// Why no cgroup is used (when `cgroup` is None).
    pub cgroup_unavailable: String,
    pub require_cgroup: bool,
    /// Where the compiled filter is cached.
    pub cache_dir: Option<PathBuf>,
    pub landlock: LandlockState,
}

/// What `Policy::build` needs from the file system: canonical path and whether it is a dir.
pub trait Resolve {
    fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)>;
}

/// The real file system, seen with the caller's rights.
pub struct RealFs;

impl Resolve for RealFs {
    fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
        let c = std::fs::canonicalize(p)?;
        let dir = std::fs::metadata(&c)?.is_dir();
        Ok((c, dir))
    }
}

/// Normalize a destination inside the sandbox: absolute, no `..`, `.` and `//` folded.
/// `/` itself is refused (the root is ward's own).
pub fn normalize_dst(what: &str, p: &Path) -> Result<PathBuf> {
    let shown = p.display();
    if p.as_os_str().is_empty() {
        return Err(Error::invalid(format!("{what}: the destination is empty"), "give an absolute path such as /data"));
    }
    if p.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid(format!("{what} {shown:?}: the path contains a NUL byte"), ""));
    }
    if !p.is_absolute() {
        return Err(Error::invalid(
            format!("{what} {shown}: the destination must be an absolute path"),
            format!("write it as /{shown}"),
        ));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(
                    format!("{what} {shown}: the destination must not contain '..'"),
                    "write the path without '..'",
                ));
            }
        }
    }
    if out == Path::new("/") {
        return Err(Error::invalid(format!("{what} {shown}: cannot replace the sandbox's root"), "bind to a directory below /"));
    }
    if out.as_os_str().len() > 3000 {
        return Err(Error::invalid(format!("{what}: the destination is longer than 3000 bytes"), ""));
    }
    Ok(out)
}

/// Parse a size: `123`, `64k`, `64K`, `10M`, `2G`, `1T` (powers of 1024; a trailing `B`/`iB` is
/// accepted). `what` names the option in the error.
pub fn parse_size(what: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| Error::invalid(format!("{what} {s:?}: not a size"), "use a number with an optional K, M, G or T suffix, e.g. 64M"))
}

/// Parse an rlimit value: a size/number or `unlimited`.
pub fn parse_limit(what: &str, s: &str) -> Result<Option<u64>> {
    if s == "unlimited" || s == "infinity" { Ok(None) } else { parse_size(what, s).map(Some) }
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

impl Policy {
    pub fn build(o: &Options, host: &Host, fs: &dyn Resolve) -> Result<Policy> {
        let argv = check_argv(&o.argv)?;
        let ids = build_ids(o, host)?;
        let env = build_env(o, host)?;
        let hostname = o.hostname.clone().unwrap_or_else(|| DEFAULT_HOSTNAME.to_string());
        if hostname.is_empty() || hostname.len() > 64 || hostname.bytes().any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace()) {
            return Err(Error::invalid(format!("--hostname {hostname:?}: not a valid host name"), "use 1 to 64 characters without spaces or '/'"));
        }
        let tmp_size = o.tmp_size.unwrap_or(DEFAULT_TMP_SIZE);
        if tmp_size < 4096 {
            return Err(Error::invalid(format!("--tmp-size {tmp_size}: smaller than one page"), "use at least 4K"));
        }

        let net = build_net(&o.net, host)?;
        let mut limits = crate::limits::TimeLimits::with_mem(o.time, o.wall_time, o.extra_time, o.mem)?;
        limits.output = o.output;
        if o.cpus.is_some_and(|c| !c.is_finite() || c <= 0.0 || c > 4096.0) {
            return Err(Error::invalid(format!("--cpus {}: not a usable number of CPUs", o.cpus.unwrap_or(0.0)), "give a positive number, e.g. 1 or 0.5"));
        }
        if o.procs == Some(0) {
            return Err(Error::invalid("--procs 0: the program itself is a process", "give at least 1"));
        }
        let (cgroup, cgroup_unavailable) = match &host.cgroup {
            Ok(sub) => (Some((sub.clone(), crate::cgroup::CgLimits { mem: o.mem, procs: o.procs, cpus: o.cpus })), String::new()),
            Err(why) => (None, why.clone()),
        };
        if cgroup.is_none() {
            let what = if o.require_cgroup {
                Some("--require-cgroup")
            } else if o.procs.is_some() {
                Some("--procs")
            } else if o.cpus.is_some() {
                Some("--cpus")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(Error::host(
                    format!("{what}: no cgroup can be used: {cgroup_unavailable}"),
                    "run where a delegated cgroup v2 subtree exists (systemd-run --user --scope -p Delegate=yes ward ...); 'ward check' shows what is missing",
                ));
            }
        }
        let mut tree = base_tree(host, &ids, &hostname, tmp_size, o.dev_pts);
        if let Some(n) = &net {
            tree.push(MountOp::File { dst: PathBuf::from("/etc/resolv.conf"), contents: format!("nameserver {}\n", n.dns).into_bytes() });
        }
        let workdir = resolve_workdir(o, host, fs)?;
        if let Some((dir, mode)) = &workdir {
            tree.push(match mode {
                WorkdirMode::ReadWrite => MountOp::Bind { src: dir.clone(), dst: dir.clone(), dir: true, access: Access::ReadWrite },
                WorkdirMode::ReadOnly => MountOp::Bind { src: dir.clone(), dst: dir.clone(), dir: true, access: Access::ReadOnly },
                WorkdirMode::Overlay => MountOp::Overlay { src: dir.clone(), dst: dir.clone(), size: tmp_size },
            });
        }
        for m in &o.mounts {
            tree.push(user_op(m, fs, tmp_size)?);
        }
        // ward's own filter cache is never writable inside, even when a writable bind
        // contains it: a program must not be able to weaken the next sandbox's filter.
        if let Some(cache) = &host.cache_dir {
            let shadows: Vec<MountOp> = tree
                .iter()
                .filter_map(|m| match m {
                    MountOp::Bind { src, dst, access: Access::ReadWrite, .. } if cache.starts_with(src) => {
                        let rel = cache.strip_prefix(src).ok()?;
                        Some(MountOp::Bind { src: cache.clone(), dst: dst.join(rel), dir: true, access: Access::ReadOnly })
                    }
                    _ => None,
                })
                .collect();
            tree.extend(shadows);
        }
        // Last: nothing of the root tmpfs itself is writable, nor /dev.
        tree.push(MountOp::RemountRo { dst: PathBuf::from("/dev") });
        tree.push(MountOp::RemountRo { dst: PathBuf::from("/") });

        let chdir = match (&o.chdir, &workdir) {
            (Some(c), _) => {
                if c == Path::new("/") { PathBuf::from("/") } else { normalize_dst("--chdir", c)? }
            }
            (None, Some((dir, _))) => dir.clone(),
            (None, None) => PathBuf::from("/"),
        };
        let exec_candidates = exec_candidates(&argv[0], &env);
        for (what, p) in [("--stdin", &o.stdin), ("--stdout", &o.stdout), ("--stderr", &o.stderr)] {
            if let Some(p) = p {
                if p.as_os_str().is_empty() {
                    return Err(Error::invalid(format!("{what}: the file name is empty"), "name a file"));
                }
            }
        }
        let mut rlimits: Vec<(Limit, Option<u64>)> = vec![(Limit::Core, Some(0))];
        let fsize = o.output.map(|b| (Limit::Fsize, Some(b)));
        for (l, v) in o.rlimits.iter().chain(fsize.iter()) {
            rlimits.retain(|(k, _)| k != l);
            rlimits.push((*l, *v));
        }
        let sc = &o.seccomp;
        let seccomp = if sc.enabled { Some(SeccompPolicy::new(&sc.allow, &sc.deny, sc.allow_ptrace, sc.on_deny, net.is_some(), sc.log_denied)?) } else { None };
        let ll = &o.landlock;
        let landlock = if !ll.enabled {
            LandlockState::Off("disabled by the profile or --no-landlock".into())
        } else {
            match LandlockPolicy::new(ll.abi, ll.optional, host.landlock_abi, &tree)? {
                Some(p) => LandlockState::On(p),
                None => LandlockState::Off("the kernel has no Landlock (optional in this profile)".into()),
            }
        };
        let landlock = crate::landlock::with_ports(landlock, &o.net.allow_connect, &o.net.allow_bind, host.landlock_abi)?;
        Ok(Policy {
            seccomp,
            net,
            limits,
            cgroup,
            cgroup_unavailable,
            require_cgroup: o.require_cgroup,
            cache_dir: host.cache_dir.clone(),
            landlock,
            argv,
            exec_candidates,
            ids,
            tree,
            chdir,
            hostname,
            env,
            rlimits,
            new_session: !o.keep_session,
            stdin: o.stdin.clone(),
            stdout: o.stdout.clone(),
            stderr: o.stderr.clone(),
            stderr_to_stdout: o.stderr_to_stdout,
            workdir,
        })
    }
}

fn build_net(o: &NetOptions, host: &Host) -> Result<Option<crate::net::NetPolicy>> {
    use crate::net::{NetMode, NetPolicy, Publish};
    let (mode, helper) = match o.mode {
        NetMode::None => {
            if o.allow_host_loopback || !o.publish.is_empty() || !o.allow_connect.is_empty() || !o.allow_bind.is_empty() {
                return Err(Error::invalid(
                    "--allow-host-loopback, --publish, --allow-connect and --allow-bind need networking",
                    "add --net slirp4netns, --net pasta or --net auto",
                ));
            }
            return Ok(None);
        }
        NetMode::Slirp4netns => (NetMode::Slirp4netns, host.slirp4netns.clone()),
        NetMode::Pasta => (NetMode::Pasta, host.pasta.clone()),
        NetMode::Auto => match (&host.pasta, &host.slirp4netns) {
            (Some(p), _) => (NetMode::Pasta, Some(p.clone())),
            (None, Some(s)) => (NetMode::Slirp4netns, Some(s.clone())),
            (None, None) => (NetMode::Auto, None),
        },
    };
    let helper = helper.ok_or_else(|| {
        let (what, fix) = match mode {
            NetMode::Slirp4netns => ("slirp4netns is not installed", "as root: apt-get install slirp4netns"),
            NetMode::Pasta => ("pasta is not installed", "as root: apt-get install passt"),
            _ => ("neither pasta nor slirp4netns is installed", "as root: apt-get install passt (or slirp4netns)"),
        };
        Error::host(format!("--net: {what}"), fix)
    })?;
    let publish = o.publish.iter().map(|s| Publish::parse(s)).collect::<Result<Vec<_>>>()?;
    let (dns, gateway) = match mode {
        NetMode::Slirp4netns => (crate::net::SLIRP_DNS.parse().map_err(|_| Error::invalid("bad built-in DNS address", ""))?, None),
        _ => {
            let g = host.gateway.ok_or_else(|| {
                Error::host("--net pasta: the host has no IPv4 default route for pasta to copy", "use --net slirp4netns, or give the host a default route")
            })?;
            (g, Some(g))
        }
    };
    Ok(Some(NetPolicy { mode, helper, allow_host_loopback: o.allow_host_loopback, publish, allow_connect: o.allow_connect.clone(), allow_bind: o.allow_bind.clone(), dns, gateway }))
}

fn check_argv(argv: &[OsString]) -> Result<Vec<OsString>> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Error::invalid("no program given", "put the program and its arguments after --, e.g. ward run -- /bin/echo hi"));
    }
    let mut total = 0usize;
    for (i, a) in argv.iter().enumerate() {
        let b = a.as_bytes();
        if b.contains(&0) {
            return Err(Error::invalid(format!("argument {i} contains a NUL byte"), "remove it"));
        }
        if b.len() >= MAX_ARG_LEN {
            return Err(Error::invalid(
                format!("argument {i} is {} bytes; the kernel accepts at most {} bytes in one argument", b.len(), MAX_ARG_LEN - 1),
                "pass large data through --stdin or a bound file",
            ));
        }
        total += b.len() + 1;
    }
    if total > MAX_ARGS_TOTAL {
        return Err(Error::invalid(
            format!("the arguments take {total} bytes; ward accepts at most {MAX_ARGS_TOTAL}"),
            "pass large data through --stdin or a bound file",
        ));
    }
    Ok(argv.to_vec())
}

fn build_ids(o: &Options, host: &Host) -> Result<Ids> {
    let map = if o.map_ranges {
        let (uid_start, uid_count) = host.subuid.ok_or_else(|| {
            Error::host(
                format!("--map-ranges: user {} (uid {}) has no range in /etc/subuid", host.user_name, host.uid),
                format!("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}", host.user_name),
            )
        })?;
        let (gid_start, gid_count) = host.subgid.ok_or_else(|| {
            Error::host(
                format!("--map-ranges: user {} (uid {}) has no range in /etc/subgid", host.user_name, host.uid),
                format!("as root: usermod --add-subgids 100000-165535 {}", host.user_name),
            )
        })?;
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count }
    } else {
        IdMap::Single
    };
    let (inside_uid, inside_gid) = match &map {
        IdMap::Single => (o.uid.unwrap_or(host.uid), o.gid.unwrap_or(host.gid)),
        IdMap::Ranges { uid_count, gid_count, .. } => {
            let (u, g) = (o.uid.unwrap_or(0), o.gid.unwrap_or(0));
            if u > *uid_count {
                return Err(Error::invalid(format!("--uid {u}: outside the mapped range 0..={uid_count}"), "choose a smaller uid or ask for a larger subuid range"));
            }
            if g > *gid_count {
                return Err(Error::invalid(format!("--gid {g}: outside the mapped range 0..={gid_count}"), "choose a smaller gid or ask for a larger subgid range"));
            }
            (u, g)
        }
    };
    for (what, v) in [("--uid", inside_uid), ("--gid", inside_gid)] {
        if v == u32::MAX {
            return Err(Error::invalid(format!("{what} {v}: not a valid id"), "use a value below 4294967295"));
        }
    }
    Ok(Ids { outside_uid: host.uid, outside_gid: host.gid, inside_uid, inside_gid, map })
}

fn build_env(o: &Options, host: &Host) -> Result<Vec<(String, OsString)>> {
    let from_host = |k: &str| host.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut env: Vec<(String, OsString)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/tmp".into()),
    ];
    for k in ["TERM", "LANG"] {
        if let Some(v) = from_host(k) {
            env.push((k.into(), v));
        }
    }
    let mut set = |k: &str, v: OsString| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    };
    for k in &o.pass_env {
        if !is_valid_env_name(k) {
            return Err(Error::invalid(format!("--env {k:?}: not a variable name"), "use NAME or NAME=VALUE"));
        }
        if let Some(v) = from_host(k) {
            set(k, v);
        }
    }
    for (k, v) in &o.setenv {
        if !is_valid_env_name(k) {
            return Err(Error::invalid(format!("--setenv {k:?}: not a variable name"), "use a name without '=' or NUL"));
        }
        if v.as_bytes().contains(&0) {
            return Err(Error::invalid(format!("--setenv {k}: the value contains a NUL byte"), ""));
        }
        set(k, v.clone());
    }
    Ok(env)
}

/// Where execve will look for the program, decided now so the child only tries paths.
fn exec_candidates(prog: &OsString, env: &[(String, OsString)]) -> Vec<PathBuf> {
    let p = Path::new(prog);
    if prog.as_bytes().contains(&b'/') {
        return vec![p.to_path_buf()];
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|d| if d.is_empty() { Path::new(".") } else { Path::new(std::ffi::OsStr::from_bytes(d)) })
        .map(|d| d.join(p))
        .collect()
}

/// The tree every run gets, before the work dir and the caller's own operations.
fn base_tree(host: &Host, ids: &Ids, hostname: &str, tmp_size: u64, dev_pts: bool) -> Vec<MountOp> {
    let p = PathBuf::from;
    let mut t = vec![MountOp::Bind { src: p("/usr"), dst: p("/usr"), dir: true, access: Access::ReadOnly }];
    for (name, link) in &host.usr_links {
        let dst = Path::new("/").join(name);
        t.push(match link {
            Some(target) => MountOp::Symlink { target: target.clone(), dst },
            None => MountOp::Bind { src: dst.clone(), dst, dir: true, access: Access::ReadOnly },
        });
    }
    t.push(MountOp::Dir { dst: p("/etc") });
    t.push(MountOp::File { dst: p("/etc/passwd"), contents: passwd(host, ids).into_bytes() });
    t.push(MountOp::File { dst: p("/etc/group"), contents: group(host, ids).into_bytes() });
    t.push(MountOp::File {
        dst: p("/etc/hosts"),
        contents: format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n").into_bytes(),
    });
    t.push(MountOp::File { dst: p("/etc/hostname"), contents: format!("{hostname}\n").into_bytes() });
    t.push(MountOp::File {
        dst: p("/etc/nsswitch.conf"),
        contents: b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n".to_vec(),
    });
    if host.has_ld_so_cache {
        t.push(MountOp::Bind { src: p("/etc/ld.so.cache"), dst: p("/etc/ld.so.cache"), dir: false, access: Access::ReadOnly });
    }
    if host.has_alternatives {
        t.push(MountOp::Bind { src: p("/etc/alternatives"), dst: p("/etc/alternatives"), dir: true, access: Access::ReadOnly });
    }
    if let Some(lt) = &host.localtime {
        t.push(MountOp::Symlink { target: lt.clone(), dst: p("/etc/localtime") });
    }
    t.push(MountOp::Proc { dst: p("/proc") });
    t.push(MountOp::Tmpfs { dst: p("/dev"), size: 64 << 10, mode: 0o755, noexec: true });
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let d = Path::new("/dev").join(dev);
        t.push(MountOp::Bind { src: d.clone(), dst: d, dir: false, access: Access::Device });
    }
    for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore")] {
        if name == "core" {
            continue; // never: /proc/kcore is not for sandboxes
        }
        t.push(MountOp::Symlink { target: p(target), dst: Path::new("/dev").join(name) });
    }
    t.push(MountOp::Tmpfs { dst: p("/dev/shm"), size: tmp_size, mode: 0o1777, noexec: false });
    if dev_pts {
        t.push(MountOp::DevPts { dst: p("/dev/pts") });
        t.push(MountOp::Symlink { target: p("pts/ptmx"), dst: p("/dev/ptmx") });
    }
    t.push(MountOp::Tmpfs { dst: p("/tmp"), size: tmp_size, mode: 0o1777, noexec: false });
    t
}

fn passwd(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:0:root:/root:/bin/sh\n");
    if ids.inside_uid != 0 && ids.inside_uid != 65534 {
        let name = if ids.inside_uid == host.uid { host.user_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:{}:{name}:/tmp:/bin/sh\n", ids.inside_uid, ids.inside_gid));
    }
    s.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    s
}

fn group(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:\n");
    if ids.inside_gid != 0 && ids.inside_gid != 65534 {
        let name = if ids.inside_gid == host.gid { host.group_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:\n", ids.inside_gid));
    }
    s.push_str("nogroup:x:65534:\n");
    s
}

fn resolve_src(what: &str, src: &Path, fs: &dyn Resolve) -> Result<(PathBuf, bool)> {
    fs.resolve(src).map_err(|e| {
        Error::invalid(
            format!("{what} {}: the source cannot be used: {e}", src.display()),
            "check that the path exists and that you can read it",
        )
    })
}

fn user_op(m: &MountSpec, fs: &dyn Resolve, tmp_size: u64) -> Result<MountOp> {
    Ok(match m {
        MountSpec::RoBind { src, dst } | MountSpec::Bind { src, dst } | MountSpec::DevBind { src, dst } => {
            let (what, access) = match m {
                MountSpec::RoBind { .. } => ("--ro-bind", Access::ReadOnly),
                MountSpec::Bind { .. } => ("--bind", Access::ReadWrite),
                _ => ("--dev-bind", Access::Device),
            };
            let dst = normalize_dst(what, dst)?;
            let (src, dir) = resolve_src(what, src, fs)?;
            MountOp::Bind { src, dst, dir, access }
        }
        MountSpec::Tmpfs { dst, size } => {
            MountOp::Tmpfs { dst: normalize_dst("--tmpfs", dst)?, size: size.unwrap_or(tmp_size), mode: 0o755, noexec: false }
        }
        MountSpec::Overlay { src, dst } => {
            let dst = normalize_dst("--overlay", dst)?;
            let (src, dir) = resolve_src("--overlay", src, fs)?;
            if !dir {
                return Err(Error::invalid(format!("--overlay {}: the source is not a directory", src.display()), "overlay a directory"));
            }
            if src.as_os_str().as_bytes().iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
                return Err(Error::invalid(format!("--overlay {}: overlayfs cannot take a path with ',', ':' or '\\'", src.display()), "rename the directory or bind it first"));
            }
            MountOp::Overlay { src, dst, size: tmp_size }
        }
        MountSpec::Symlink { target, dst } => {
            if target.as_os_str().is_empty() || target.as_os_str().as_bytes().contains(&0) {
                return Err(Error::invalid("--symlink: the target is empty or contains NUL", "give a target path"));
            }
            MountOp::Symlink { target: target.clone(), dst: normalize_dst("--symlink", dst)? }
        }
        MountSpec::Dir { dst } => MountOp::Dir { dst: normalize_dst("--dir", dst)? },
        MountSpec::NoExec { dst } => MountOp::NoExec { dst: normalize_dst("noexec", dst)? },
    })
}

fn resolve_workdir(o: &Options, host: &Host, fs: &dyn Resolve) -> Result<Option<(PathBuf, WorkdirMode)>> {
    let dir = match &o.workdir {
        Workdir::None => return Ok(None),
        Workdir::Dir(d) => {
            let (c, is_dir) = resolve_src("--workdir", d, fs)?;
            if !is_dir {
                return Err(Error::invalid(format!("--workdir {}: not a directory", d.display()), "name a directory"));
            }
            c
        }
        Workdir::Auto => {
            let Ok((c, true)) = fs.resolve(&host.cwd) else { return Ok(None) };
            if auto_workdir_is_unsafe(&c, host.home.as_deref()) {
                return Ok(None);
            }
            c
        }
    };
    if dir == Path::new("/") {
        return Err(Error::invalid("--workdir /: cannot bind the whole host tree", "name a project directory"));
    }
    Ok(Some((dir, o.workdir_mode)))
}

/// The current directory is not bound automatically when binding it would expose far more
/// than a project: `/`, the home directory or an ancestor of it, or a system directory.
pub fn auto_workdir_is_unsafe(cwd: &Path, home: Option<&Path>) -> bool {
    if cwd == Path::new("/") {
        return true;
    }
    if let Some(h) = home {
        if h.starts_with(cwd) {
            return true;
        }
    }
    ["/usr", "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/var", "/run"]
        .iter()
        .any(|s| cwd.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeFs;
    impl Resolve for FakeFs {
        fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
            match p.to_str() {
                Some("/srv/data") | Some("/home/u/proj") | Some("/tmp/w") => Ok((p.to_path_buf(), true)),
                Some("/srv/link") => Ok((PathBuf::from("/srv/data"), true)),
                Some("/srv/file") => Ok((p.to_path_buf(), false)),
                _ => Err(std::io::Error::from_raw_os_error(2)),
            }
        }
    }

    /// The fuzzers' made-up host, with what these tests depend on spelled out.
    fn host() -> Host {
        Host {
            env: vec![("TERM".into(), "xterm".into()), ("SECRET".into(), "s3".into())],
            usr_links: vec![("bin".into(), Some("usr/bin".into())), ("lib64".into(), None)],
            landlock_abi: 7,
            cache_dir: Some("/home/u/proj/.cache/ward".into()),
            pasta: None,
            gateway: None,
            ..crate::fuzzing::fake_host()
        }
    }

    fn opts(argv: &[&str]) -> Options {
        Options { argv: argv.iter().map(OsString::from).collect(), ..Options::default() }
    }

    #[test]
    fn normalize_dst_rules() {
        assert_eq!(normalize_dst("x", Path::new("/a//b/./c")).unwrap(), PathBuf::from("/a/b/c"));
        assert!(normalize_dst("x", Path::new("a/b")).unwrap_err().to_string().contains("absolute"));
        assert!(normalize_dst("x", Path::new("/a/../etc")).unwrap_err().to_string().contains("'..'"));
        assert!(normalize_dst("x", Path::new("/")).is_err());
        assert!(normalize_dst("x", Path::new("/./")).is_err());
        assert!(normalize_dst("x", Path::new("")).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("s", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("s", "1k").unwrap(), 1024);
        assert_eq!(parse_size("s", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("s", "17").unwrap(), 17);
        assert!(parse_size("s", "x").is_err());
        assert!(parse_size("s", "-1").is_err());
        assert!(parse_size("s", "99999999999T").is_err());
        assert_eq!(parse_limit("l", "unlimited").unwrap(), None);
    }

    #[test]
    fn default_policy_is_strict() {
        let p = Policy::build(&opts(&["sh"]), &host(), &FakeFs).unwrap();
        assert_eq!(p.ids.inside_uid, 1000);
        assert_eq!(p.ids.map, IdMap::Single);
        // only PATH, HOME, TERM from the caller; not SECRET
        let names: Vec<_> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "TERM"]);
        // the work dir is the cwd, read-write; root and /dev end read-only
        assert_eq!(p.workdir, Some((PathBuf::from("/home/u/proj"), WorkdirMode::ReadWrite)));
        assert_eq!(p.chdir, PathBuf::from("/home/u/proj"));
        assert_eq!(p.tree.last(), Some(&MountOp::RemountRo { dst: "/".into() }));
        assert!(p.tree.contains(&MountOp::Symlink { target: "usr/bin".into(), dst: "/bin".into() }));
        assert!(p.tree.iter().any(|m| matches!(m, MountOp::Bind { dst, access: Access::ReadOnly, .. } if dst == Path::new("/lib64"))));
        assert_eq!(p.rlimits, vec![(Limit::Core, Some(0))]);
        assert!(p.exec_candidates.contains(&PathBuf::from("/usr/bin/sh")));
        assert!(p.new_session);
    }

    #[test]
    fn home_is_not_bound_automatically() {
        let mut h = host();
        h.cwd = "/home/u".into();
        let p = Policy::build(&opts(&["sh"]), &h, &FakeFs).unwrap();
        assert_eq!(p.workdir, None);
        assert_eq!(p.chdir, PathBuf::from("/"));
        assert!(auto_workdir_is_unsafe(Path::new("/home"), Some(Path::new("/home/u"))));
        assert!(auto_workdir_is_unsafe(Path::new("/"), None));
        assert!(auto_workdir_is_unsafe(Path::new("/etc/x"), None));
        assert!(!auto_workdir_is_unsafe(Path::new("/home/u/p"), Some(Path::new("/home/u"))));
    }

    #[test]
    fn bad_input_is_named() {
        let mut o = opts(&["sh"]);
        o.mounts.push(MountSpec::RoBind { src: "/nope".into(), dst: "/x".into() });
        let e = Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string();
        assert!(e.starts_with("--ro-bind /nope: the source cannot be used"), "{e}");

        let mut o = opts(&["sh"]);
        o.mounts.push(MountSpec::Bind { src: "/srv/data".into(), dst: "rel".into() });
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("must be an absolute path"));

        assert!(Policy::build(&opts(&[]), &host(), &FakeFs).unwrap_err().to_string().contains("no program given"));
        let big = "x".repeat(MAX_ARG_LEN);
        assert!(Policy::build(&opts(&["sh", &big]), &host(), &FakeFs).unwrap_err().to_string().contains("at most 131071 bytes"));

        let mut o = opts(&["sh"]);
        o.setenv.push(("A=B".into(), "x".into()));
        assert!(Policy::build(&o, &host(), &FakeFs).is_err());
    }

    #[test]
    fn the_filter_cache_stays_read_only_inside() {
        // the work dir /home/u/proj contains the (test) cache dir
        let p = Policy::build(&opts(&["sh"]), &host(), &FakeFs).unwrap();
        let cache = MountOp::Bind { src: "/home/u/proj/.cache/ward".into(), dst: "/home/u/proj/.cache/ward".into(), dir: true, access: Access::ReadOnly };
        let at = p.tree.iter().position(|m| *m == cache).expect("cache shadowed");
        let wd = p.tree.iter().position(|m| matches!(m, MountOp::Bind { dst, access: Access::ReadWrite, .. } if dst == Path::new("/home/u/proj"))).unwrap();
        assert!(at > wd);
    }

    #[test]
    fn binds_resolve_symlinks_on_the_host() {
        let mut o = opts(&["sh"]);
        o.mounts.push(MountSpec::RoBind { src: "/srv/link".into(), dst: "/data/".into() });
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert!(p.tree.contains(&MountOp::Bind { src: "/srv/data".into(), dst: "/data".into(), dir: true, access: Access::ReadOnly }));
    }

    #[test]
    fn ranges() {
        let mut o = opts(&["id"]);
        o.map_ranges = true;
        o.uid = Some(1000);
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert_eq!(p.ids.inside_uid, 1000);
        assert_eq!(p.ids.init_uid(), 0);
        assert!(matches!(p.ids.map, IdMap::Ranges { uid_start: 100000, uid_count: 65536, .. }));
        o.uid = Some(70000);
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("outside the mapped range"));
        let mut h = host();
        h.subuid = None;
        o.uid = None;
        assert!(Policy::build(&o, &h, &FakeFs).unwrap_err().to_string().contains("/etc/subuid"));
    }

    #[test]
    fn networking_choices() {
        let mut o = opts(&["sh"]);
        o.net.allow_host_loopback = true;
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("need networking"));
        o.net.mode = crate::net::NetMode::Auto;
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        let n = p.net.as_ref().unwrap();
        assert_eq!(n.mode, crate::net::NetMode::Slirp4netns); // pasta is not installed here
        assert_eq!(n.dns.to_string(), "10.0.2.3");
        assert!(p.seccomp.as_ref().unwrap().inet);
        assert!(p.tree.contains(&MountOp::File { dst: "/etc/resolv.conf".into(), contents: b"nameserver 10.0.2.3\n".to_vec() }));
        o.net.mode = crate::net::NetMode::Pasta;
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("apt-get install passt"));
    }

    #[test]
    fn env_pass_and_set() {
        let mut o = opts(&["sh"]);
        o.pass_env.push("SECRET".into());
        o.setenv.push(("PATH".into(), "/bin".into()));
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert!(p.env.contains(&("SECRET".into(), "s3".into())));
        assert!(p.env.contains(&("PATH".into(), "/bin".into())));
        assert_eq!(p.exec_candidates, vec![PathBuf::from("/bin/sh")]);
    }
}
