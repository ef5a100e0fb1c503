//! What the caller asks for: one `Request` type, filled by a profile file (serde, this is the
//! schema of profiles/*.toml), by the command line (`frontend::cli`), by the isolate front end
//! and by the `Sandbox` builder. Layers combine with one function, `Request::overlay`:
//! `extends` puts a profile over its parent, the command line goes over the profile. Scalars
//! of the upper layer replace, lists append. Nothing here is validated beyond its type:
//! `Policy::build` checks the combined request against the host.
//!
//! Declarations only: imports nothing of ward but the error type.

pub mod profile;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// Everything one run asks for. The sections are the profile file's tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The profile this one builds on (profile files only; gone once loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(default)]
    pub tree: Tree,
    #[serde(default)]
    pub process: Process,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub landlock: Landlock,
    #[serde(default)]
    pub seccomp: Seccomp,
    /// The program and its stdio: given for each run, never by a profile.
    #[serde(skip)]
    pub run: Run,
}

/// The program and the files of its stdio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub argv: Vec<OsString>,
    /// Opened by the launcher with the caller's rights (unless `stdio_inside`).
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    /// The program's stderr goes where its stdout goes.
    pub stderr_to_stdout: bool,
    /// The three paths name files inside the sandbox (isolate's -i/-o/-r): opened by the
    /// program's process in the sandbox's view, with the program's rights, after chdir.
    pub stdio_inside: bool,
}

/// One tree operation, in bubblewrap's vocabulary. The command line keeps them in the order
/// given; a profile's lists come in the order ro_bind, bind, dev_bind, overlay, tmpfs,
/// symlink, dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A bind of `src` (a leading `~/` is the caller's home) at `dst`. `optional`: skipped
    /// when the source does not exist.
    Bind { src: PathBuf, dst: PathBuf, access: BindAccess, optional: bool },
    /// `src` shown writable at `dst`; changes are discarded at exit.
    Overlay { src: PathBuf, dst: PathBuf, optional: bool },
    Tmpfs { dst: PathBuf, size: Option<Size> },
    Symlink { target: PathBuf, dst: PathBuf },
    Dir { dst: PathBuf },
    /// Make what is mounted at `dst` (a bind made earlier) noexec, recursively.
    NoExec { dst: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAccess {
    ReadOnly,
    ReadWrite,
    /// A device node: read-write and without `nodev`.
    Device,
}

impl MountSpec {
    /// The destination inside the sandbox.
    pub fn dst(&self) -> &std::path::Path {
        match self {
            MountSpec::Bind { dst, .. }
            | MountSpec::Overlay { dst, .. }
            | MountSpec::Tmpfs { dst, .. }
            | MountSpec::Symlink { dst, .. }
            | MountSpec::Dir { dst }
            | MountSpec::NoExec { dst } => dst,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
pub enum WorkdirMode {
    /// Bound read-write: the program's changes stay.
    #[default]
    #[serde(rename = "rw")]
    #[value(name = "rw")]
    ReadWrite,
    /// Bound read-only.
    #[serde(rename = "ro")]
    #[value(name = "ro")]
    ReadOnly,
    /// Shown writable through an overlay; changes are discarded at exit.
    #[serde(rename = "overlay")]
    #[value(name = "overlay")]
    Overlay,
}

impl WorkdirMode {
    pub fn name(self) -> &'static str {
        match self {
            WorkdirMode::ReadWrite => "rw",
            WorkdirMode::ReadOnly => "ro",
            WorkdirMode::Overlay => "overlay",
        }
    }
}

/// Which host directory is the work dir. In a profile: "cwd", "none" or a path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Workdir {
    /// The caller's current directory, unless it is `/`, the home directory or one of its
    /// ancestors (binding those writable would expose dotfiles), or a system directory; then
    /// none.
    #[default]
    Auto,
    Dir(PathBuf),
    None,
}

impl From<String> for Workdir {
    fn from(s: String) -> Workdir {
        match s.as_str() {
            "cwd" => Workdir::Auto,
            "none" => Workdir::None,
            _ => Workdir::Dir(s.into()),
        }
    }
}

impl From<Workdir> for String {
    fn from(w: Workdir) -> String {
        match w {
            Workdir::Auto => "cwd".into(),
            Workdir::None => "none".into(),
            Workdir::Dir(d) => d.display().to_string(),
        }
    }
}

/// A size in bytes: `123`, `64k`, `64K`, `10M`, `2G`, `1T` (powers of 1024; a trailing `B` or
/// `iB` is accepted). Printed back in the largest unit that is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SizeText", into = "String")]
pub struct Size(pub u64);

/// A size as a profile writes it: a string with a unit, or a plain number of bytes.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Text(String),
    Bytes(u64),
}

impl TryFrom<SizeText> for Size {
    type Error = String;
    fn try_from(t: SizeText) -> std::result::Result<Size, String> {
        match t {
            SizeText::Bytes(b) => Ok(Size(b)),
            SizeText::Text(s) => parse_size("size", &s).map(Size).map_err(|_| format!("{s:?} is not a size: use a number with an optional K, M, G or T suffix, e.g. 64M")),
        }
    }
}

impl From<Size> for String {
    fn from(s: Size) -> String {
        for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
            if s.0 != 0 && s.0 % (1 << shift) == 0 {
                return format!("{}{unit}", s.0 >> shift);
            }
        }
        s.0.to_string()
    }
}

/// Parse a size (see `Size`). `what` names the option in the error.
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

/// A resource limit's value: a size/number, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeText", into = "String")]
pub struct Rlim(pub Option<u64>);

impl TryFrom<SizeText> for Rlim {
    type Error = String;
    fn try_from(t: SizeText) -> std::result::Result<Rlim, String> {
        match t {
            SizeText::Text(s) if s == "unlimited" || s == "infinity" => Ok(Rlim(None)),
            t => Size::try_from(t).map(|s| Rlim(Some(s.0))),
        }
    }
}

impl From<Rlim> for String {
    fn from(r: Rlim) -> String {
        match r.0 {
            None => "unlimited".into(),
            Some(v) => v.to_string(),
        }
    }
}

/// Parse an rlimit value: a size/number or `unlimited`.
pub fn parse_limit(what: &str, s: &str) -> Result<Option<u64>> {
    if s == "unlimited" || s == "infinity" { Ok(None) } else { parse_size(what, s).map(Some) }
}

/// The resource limits ward sets, each once: its profile key (under `[process.rlimits]`) and
/// command-line option (`--rlimit-KEY`) are its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    As,
    Fsize,
    Nofile,
    Nproc,
    Cpu,
    Stack,
    Core,
}

/// Every rlimit: the limit, the kernel's resource, the value's name and the help text.
pub const RLIMITS: [(Limit, nix::sys::resource::Resource, &str, &str); 7] = {
    use nix::sys::resource::Resource as R;
    [
        (Limit::As, R::RLIMIT_AS, "SIZE", "RLIMIT_AS for the program (bytes, K/M/G suffixes, or unlimited)."),
        (Limit::Fsize, R::RLIMIT_FSIZE, "SIZE", "RLIMIT_FSIZE: largest file the program may write."),
        (Limit::Nofile, R::RLIMIT_NOFILE, "N", "RLIMIT_NOFILE: most open files."),
        (Limit::Nproc, R::RLIMIT_NPROC, "N", "RLIMIT_NPROC: set in the sandbox's own user namespace, it counts the sandbox's processes and threads of the program's uid (Linux 5.14+; init is one of them). --procs is the simpler form."),
        (Limit::Cpu, R::RLIMIT_CPU, "SECONDS", "RLIMIT_CPU in seconds, per process."),
        (Limit::Stack, R::RLIMIT_STACK, "SIZE", "RLIMIT_STACK."),
        (Limit::Core, R::RLIMIT_CORE, "SIZE", "RLIMIT_CORE [default: 0]."),
    ]
};

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
    pub fn resource(self) -> nix::sys::resource::Resource {
        RLIMITS.iter().find(|r| r.0 == self).map(|r| r.1).unwrap_or(nix::sys::resource::Resource::RLIMIT_CORE)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "TreeFile", into = "TreeFile")]
pub struct Tree {
    pub workdir: Option<Workdir>,
    pub workdir_mode: Option<WorkdirMode>,
    pub chdir: Option<PathBuf>,
    /// Size of /tmp and /dev/shm.
    pub tmp_size: Option<Size>,
    pub dev_pts: Option<bool>,
    /// No /proc in the sandbox (an empty directory): for containers whose runtime masks
    /// /proc, where the kernel refuses a fresh one. Only when asked; the verdict says so.
    pub no_proc: Option<bool>,
    /// Tree operations, in order.
    pub mounts: Vec<MountSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_ranges: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_session: Option<bool>,
    /// Many runs (a batch, an isolate box, a `WarmSandbox`) may share a warm sandbox
    /// (default true); a single `ward run` is always fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm: Option<bool>,
    /// Variables set for the program, in order (later wins). A table in a profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "env_table")]
    pub env: Vec<(String, String)>,
    /// Variables copied from the caller's environment when set there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rlimits: BTreeMap<Limit, Rlim>,
    /// When the caller is root: the host uid and gid the program's ids map to (default
    /// nobody/nogroup; `ward isolate` gives each box its own). Never host 0.
    #[serde(skip)]
    pub host_ids: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Resident memory of the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<Size>,
    /// Processes and threads of the whole run (cgroup pids.max; RLIMIT_NPROC in the sandbox's
    /// user namespace as well, and alone without a leaf, from Linux 5.14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procs: Option<u64>,
    /// CPU bandwidth in CPUs (cgroup cpu.max).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_time: Option<f64>,
    /// Largest file the program may write (RLIMIT_FSIZE); ended by it: OLE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Size>,
    /// Refuse to run without a cgroup leaf (exact, kernel-enforced limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_cgroup: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Loopback only.
    #[default]
    None,
    Slirp4netns,
    Pasta,
    /// pasta if installed, else slirp4netns.
    Auto,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<NetMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_host_loopback: Option<bool>,
    /// `[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]` specs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// TCP ports the program may connect to / bind (empty: any); Landlock ABI 4+.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_connect: Vec<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_bind: Vec<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Landlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The ABI asked for (1..=7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abi: Option<u8>,
    /// What the kernel lacks of `abi` is dropped (and reported) instead of failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// What happens to a denied call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnDeny {
    /// The call fails (EPERM, or EAFNOSUPPORT for a socket family) and the program goes on.
    #[default]
    Errno,
    /// The sandbox is killed; the verdict is SYS.
    Kill,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Groups (`@basic`, `@ptrace`) and system call names; empty: `@basic`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Names removed from what `allow` gives (within a layer, deny wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_ptrace: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_deny: Option<OnDeny>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_denied: Option<bool>,
}

fn replace<T: Clone>(base: &mut Option<T>, top: &Option<T>) {
    if top.is_some() {
        *base = top.clone();
    }
}

impl Request {
    /// A request to run `argv` with every default.
    pub fn new(argv: Vec<OsString>) -> Request {
        Request { run: Run { argv, ..Run::default() }, ..Request::default() }
    }

    /// `top` over `self`: the one way layers combine (a profile over the one it extends, the
    /// command line over the profile). Scalars given in `top` replace, lists append, maps
    /// merge by key; a call `top` allows is no longer denied by `self`, and one it denies is
    /// no longer allowed.
    pub fn overlay(mut self, top: &Request) -> Request {
        replace(&mut self.description, &top.description);
        self.extends = None;
        let (t, tt) = (&mut self.tree, &top.tree);
        replace(&mut t.workdir, &tt.workdir);
        replace(&mut t.workdir_mode, &tt.workdir_mode);
        replace(&mut t.chdir, &tt.chdir);
        replace(&mut t.tmp_size, &tt.tmp_size);
        replace(&mut t.dev_pts, &tt.dev_pts);
        replace(&mut t.no_proc, &tt.no_proc);
        t.mounts.extend(tt.mounts.iter().cloned());
        let (p, tp) = (&mut self.process, &top.process);
        replace(&mut p.uid, &tp.uid);
        replace(&mut p.gid, &tp.gid);
        replace(&mut p.map_ranges, &tp.map_ranges);
        replace(&mut p.hostname, &tp.hostname);
        replace(&mut p.keep_session, &tp.keep_session);
        replace(&mut p.warm, &tp.warm);
        replace(&mut p.host_ids, &tp.host_ids);
        p.env.extend(tp.env.iter().cloned());
        p.pass_env.extend(tp.pass_env.iter().cloned());
        p.rlimits.extend(tp.rlimits.iter().map(|(k, v)| (*k, *v)));
        let (l, tl) = (&mut self.limits, &top.limits);
        replace(&mut l.mem, &tl.mem);
        replace(&mut l.procs, &tl.procs);
        replace(&mut l.cpus, &tl.cpus);
        replace(&mut l.time, &tl.time);
        replace(&mut l.wall_time, &tl.wall_time);
        replace(&mut l.extra_time, &tl.extra_time);
        replace(&mut l.output, &tl.output);
        replace(&mut l.require_cgroup, &tl.require_cgroup);
        let (n, tn) = (&mut self.network, &top.network);
        replace(&mut n.mode, &tn.mode);
        replace(&mut n.allow_host_loopback, &tn.allow_host_loopback);
        n.publish.extend(tn.publish.iter().cloned());
        n.allow_connect.extend(&tn.allow_connect);
        n.allow_bind.extend(&tn.allow_bind);
        let (ll, tll) = (&mut self.landlock, &top.landlock);
        replace(&mut ll.enabled, &tll.enabled);
        replace(&mut ll.abi, &tll.abi);
        replace(&mut ll.optional, &tll.optional);
        let (s, ts) = (&mut self.seccomp, &top.seccomp);
        replace(&mut s.enabled, &ts.enabled);
        s.allow.retain(|a| !ts.deny.contains(a));
        s.deny.retain(|d| !ts.allow.contains(d));
        s.allow.extend(ts.allow.iter().cloned());
        s.deny.extend(ts.deny.iter().cloned());
        replace(&mut s.allow_ptrace, &ts.allow_ptrace);
        replace(&mut s.on_deny, &ts.on_deny);
        replace(&mut s.log_denied, &ts.log_denied);
        let (r, tr) = (&mut self.run, &top.run);
        if !tr.argv.is_empty() {
            r.argv = tr.argv.clone();
        }
        replace(&mut r.stdin, &tr.stdin);
        replace(&mut r.stdout, &tr.stdout);
        replace(&mut r.stderr, &tr.stderr);
        r.stderr_to_stdout |= tr.stderr_to_stdout;
        self
    }
}

/// `[tree]` as a profile writes it: one list per kind of operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    workdir: Option<Workdir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workdir_mode: Option<WorkdirMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chdir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmp_size: Option<Size>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev_pts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_proc: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ro_bind: Vec<BindFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bind: Vec<BindFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dev_bind: Vec<BindFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    overlay: Vec<BindFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tmpfs: Vec<TmpfsFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    symlink: Vec<SymlinkFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dir: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindFile {
    src: PathBuf,
    dst: PathBuf,
    /// Skip the bind when the source does not exist (caches that may not be there yet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TmpfsFile {
    dst: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<Size>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SymlinkFile {
    target: PathBuf,
    dst: PathBuf,
}

impl From<TreeFile> for Tree {
    fn from(f: TreeFile) -> Tree {
        let bind = |access| move |b: BindFile| MountSpec::Bind { src: b.src, dst: b.dst, access, optional: b.optional };
        let mut mounts: Vec<MountSpec> = Vec::new();
        mounts.extend(f.ro_bind.into_iter().map(bind(BindAccess::ReadOnly)));
        mounts.extend(f.bind.into_iter().map(bind(BindAccess::ReadWrite)));
        mounts.extend(f.dev_bind.into_iter().map(bind(BindAccess::Device)));
        mounts.extend(f.overlay.into_iter().map(|b| MountSpec::Overlay { src: b.src, dst: b.dst, optional: b.optional }));
        mounts.extend(f.tmpfs.into_iter().map(|t| MountSpec::Tmpfs { dst: t.dst, size: t.size }));
        mounts.extend(f.symlink.into_iter().map(|s| MountSpec::Symlink { target: s.target, dst: s.dst }));
        mounts.extend(f.dir.into_iter().map(|dst| MountSpec::Dir { dst }));
        Tree { workdir: f.workdir, workdir_mode: f.workdir_mode, chdir: f.chdir, tmp_size: f.tmp_size, dev_pts: f.dev_pts, no_proc: f.no_proc, mounts }
    }
}

/// A profile shows its operations by kind (what only isolate's `noexec` rule makes has no
/// profile key and is left out).
impl From<Tree> for TreeFile {
    fn from(t: Tree) -> TreeFile {
        let mut f = TreeFile { workdir: t.workdir, workdir_mode: t.workdir_mode, chdir: t.chdir, tmp_size: t.tmp_size, dev_pts: t.dev_pts, no_proc: t.no_proc, ..TreeFile::default() };
        for m in t.mounts {
            match m {
                MountSpec::Bind { src, dst, access, optional } => {
                    let b = BindFile { src, dst, optional };
                    match access {
                        BindAccess::ReadOnly => f.ro_bind.push(b),
                        BindAccess::ReadWrite => f.bind.push(b),
                        BindAccess::Device => f.dev_bind.push(b),
                    }
                }
                MountSpec::Overlay { src, dst, optional } => f.overlay.push(BindFile { src, dst, optional }),
                MountSpec::Tmpfs { dst, size } => f.tmpfs.push(TmpfsFile { dst, size }),
                MountSpec::Symlink { target, dst } => f.symlink.push(SymlinkFile { target, dst }),
                MountSpec::Dir { dst } => f.dir.push(dst),
                MountSpec::NoExec { .. } => {}
            }
        }
        f
    }
}

/// `[process.env]`: a table in a profile, an ordered list in the request.
mod env_table {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(v: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, &str> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(String::from(Size(1 << 30)), "1G");
        assert_eq!(String::from(Size(1000)), "1000");
    }

    #[test]
    fn overlay_replaces_scalars_appends_lists_and_cancels_denials() {
        let mut base = Request::default();
        base.tree.tmp_size = Some(Size(1 << 20));
        base.tree.workdir = Some(Workdir::None);
        base.seccomp.deny = vec!["socket".into()];
        base.process.rlimits.insert(Limit::Core, Rlim(Some(0)));
        let mut top = Request::new(vec!["sh".into()]);
        top.tree.tmp_size = Some(Size(2 << 20));
        top.tree.mounts.push(MountSpec::Dir { dst: "/x".into() });
        top.seccomp.allow = vec!["socket".into()];
        top.process.rlimits.insert(Limit::Core, Rlim(None));
        let m = base.overlay(&top);
        assert_eq!(m.tree.tmp_size, Some(Size(2 << 20)));
        assert_eq!(m.tree.workdir, Some(Workdir::None));
        assert_eq!(m.tree.mounts.len(), 1);
        assert!(m.seccomp.deny.is_empty() && m.seccomp.allow == ["socket"]);
        assert_eq!(m.process.rlimits[&Limit::Core], Rlim(None));
        assert_eq!(m.run.argv, [OsString::from("sh")]);
    }

    #[test]
    fn every_rlimit_is_in_the_table_once() {
        let names: Vec<&str> = RLIMITS.iter().map(|r| r.0.name()).collect();
        assert_eq!(names, ["as", "fsize", "nofile", "nproc", "cpu", "stack", "core"]);
        for (l, res, _, _) in RLIMITS {
            assert_eq!(l.resource(), res);
        }
    }
}
