//! Parent half of seccomp: turn the policy's allowlist into a BPF program with libseccomp (in
//! the launcher, before clone; the child only loads the bytes), cache the program, and answer
//! the kernel's notifications for denied calls so the verdict says what was blocked.
//!
//! The filter, for the native architecture only (any other architecture, i386 `int 0x80`
//! and x32 included, kills the process):
//! - allowed calls: ALLOW; `clone` only without namespace flags; `socket`/`socketpair` only
//!   for AF_UNIX (and AF_INET/AF_INET6 with networking); `ioctl` except TIOCSTI and
//!   TIOCLINUX; `personality` only for harmless values; arguments are compared on the low
//!   32 bits where the kernel reads an int, so high bits cannot smuggle a value past;
//! - `clone3`: ENOSYS, so libc falls back to `clone`, whose flags can be checked;
//! - everything else (the default action): USER_NOTIF, answered by the launcher
//!   (`Supervisor`): a call unknown to libseccomp's table (newer than it) gets ENOSYS so newer
//!   libcs fall back; any other call is denied with EPERM (EAFNOSUPPORT for a refused socket
//!   family) and recorded, or, on a kill-on-deny profile, ends the sandbox (verdict SYS).
//!   With the supervisor deciding the "else" branch, the filter needs no rule per denied call
//!   and no complement per argument check but ioctl's, which keeps it small: loading it is
//!   the main per-run cost of seccomp.
//!
//! libseccomp takes ~3 ms to build this filter, more than a whole sandbox start, so the BPF
//! is cached per filter specification under the user's cache directory (see `cache_dir`).

use crate::error::{Error, Result};
use crate::syscalls;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::libc;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

/// What happens to a denied call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDeny {
    /// The call fails (EPERM, or EAFNOSUPPORT for a socket family) and the program goes on.
    #[default]
    Errno,
    /// The sandbox is killed; the verdict is SYS.
    Kill,
}

/// The validated seccomp part of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompPolicy {
    /// Allowed system calls by name (groups expanded; `NEVER` removed).
    pub allow: BTreeSet<String>,
    pub on_deny: OnDeny,
    /// AF_INET and AF_INET6 sockets are allowed (only with networking).
    pub inet: bool,
    pub log_denied: bool,
}

const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];
/// Bump when `compile` changes what it builds for the same policy (part of the cache key).
const FILTER_LAYOUT: u32 = 2;
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;
/// personality(2) values that change nothing dangerous (Docker's set): PER_LINUX,
/// PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

impl SeccompPolicy {
    /// Expand `allow` (names and @groups), check every name, drop what is never allowed.
    pub fn new(allow: &[String], deny: &[String], allow_ptrace: bool, on_deny: OnDeny, inet: bool, log_denied: bool) -> Result<SeccompPolicy> {
        let mut set = BTreeSet::new();
        for item in allow {
            if item.starts_with('@') {
                let g = syscalls::group(item).ok_or_else(|| {
                    Error::invalid(format!("seccomp.allow: unknown group {item:?}"), format!("use one of {}", syscalls::GROUPS.join(", ")))
                })?;
                set.extend(g.iter().map(|s| s.to_string()));
            } else {
                if ScmpSyscall::from_name(item).is_err() {
                    return Err(Error::invalid(format!("seccomp.allow: unknown system call {item:?}"), "check the name (x86_64 names, e.g. openat)"));
                }
                set.insert(item.clone());
            }
        }
        if allow_ptrace {
            set.extend(syscalls::PTRACE.iter().map(|s| s.to_string()));
        } else {
            for s in syscalls::PTRACE {
                set.remove(*s);
            }
        }
        for s in syscalls::NEVER {
            set.remove(*s);
        }
        for d in deny {
            if ScmpSyscall::from_name(d).is_err() {
                return Err(Error::invalid(format!("seccomp.deny: unknown system call {d:?}"), "check the name (x86_64 names, e.g. openat)"));
            }
            set.remove(d);
        }
        Ok(SeccompPolicy { allow: set, on_deny, inet, log_denied })
    }

    fn families(&self) -> Vec<u32> {
        let mut f = vec![libc::AF_UNIX as u32];
        if self.inet {
            f.extend([libc::AF_INET as u32, libc::AF_INET6 as u32]);
        }
        f
    }

    /// A stable key for the cache: everything the BPF depends on.
    pub fn cache_key(&self) -> u64 {
        let v = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
        let text = format!(
            "ward {} layout {FILTER_LAYOUT} libseccomp {v} {:?} allow={:?} inet={} never={:?} personality={:?}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            self.allow,
            self.inet,
            syscalls::NEVER,
            PERSONALITY_OK
        );
        fnv1a(text.as_bytes())
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ *x as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Masked-equal tests `(x & mask) == value` on the low 32 bits whose union is exactly every
/// 32-bit value except those in `excluded` (libseccomp cannot say "not equal" under a mask,
/// nor compare one argument twice in a rule). At most 32 tests per excluded value.
pub fn complement(excluded: &[u32]) -> Vec<(u32, u32)> {
    fn go(bits: u32, prefix: u32, ex: &[u32], out: &mut Vec<(u32, u32)>) {
        if ex.is_empty() {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            out.push((mask, prefix));
            return;
        }
        if bits == 32 {
            return; // exactly an excluded value
        }
        let bit = 1u32 << (31 - bits);
        let (ones, zeros): (Vec<u32>, Vec<u32>) = ex.iter().partition(|v| *v & bit != 0);
        go(bits + 1, prefix, &zeros, out);
        go(bits + 1, prefix | bit, &ones, out);
    }
    let mut ex: Vec<u32> = excluded.to_vec();
    ex.sort_unstable();
    ex.dedup();
    let mut out = Vec::new();
    go(0, 0, &ex, &mut out);
    out
}

fn masked(arg: u32, mask: u32, value: u32) -> ScmpArgCompare {
    ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(mask as u64), value as u64)
}

fn sc_err(what: &str, e: libseccomp::error::SeccompError) -> Error {
    Error::host(format!("seccomp: {what}: {e}"), "check that libseccomp (libseccomp2) is installed and recent")
}

/// The filter of one run, ready to load.
#[derive(Debug, Clone)]
pub struct Filter {
    pub bpf: Vec<u8>,
    /// Number of calls allowed (some with argument checks) and denied by name.
    pub allowed: usize,
    pub denied: usize,
    pub from_cache: bool,
}

/// Build the BPF with libseccomp.
pub fn compile(p: &SeccompPolicy) -> Result<(Vec<u8>, usize, usize)> {
    let mut f = ScmpFilterContext::new(ScmpAction::Notify).map_err(|e| sc_err("create the filter", e))?;
    f.add_arch(ScmpArch::native()).map_err(|e| sc_err("add the native architecture", e))?;
    f.set_act_badarch(ScmpAction::KillProcess).map_err(|e| sc_err("set the bad-architecture action", e))?;
    f.set_ctl_nnp(false).map_err(|e| sc_err("leave no_new_privs to ward", e))?;
    f.set_ctl_optimize(2).map_err(|e| sc_err("enable the binary tree", e))?;
    let sys = |n: &str| ScmpSyscall::from_name(n).map_err(|e| sc_err(&format!("resolve {n}"), e));
    let (mut allowed, mut denied) = (0, 0);
    let special = ["clone", "clone3", "socket", "socketpair", "ioctl", "personality"];
    // Every call libseccomp knows for this architecture: allowed ones get a rule; denied
    // ones fall to the default action.
    for nr in 0..1024 {
        let s = ScmpSyscall::from(nr);
        let Ok(name) = s.get_name() else { continue };
        if special.contains(&name.as_str()) {
            continue;
        }
        if p.allow.contains(&name) {
            f.add_rule(ScmpAction::Allow, s).map_err(|e| sc_err(&format!("allow {name}"), e))?;
            allowed += 1;
        } else {
            denied += 1;
        }
    }
    let allow_if = |f: &mut ScmpFilterContext, name: &str, cmp: ScmpArgCompare| -> Result<()> {
        f.add_rule_conditional(ScmpAction::Allow, sys(name)?, &[cmp]).map_err(|e| sc_err(&format!("rule for {name}"), e)).map(drop)
    };
    let mut count = |ok: bool| if ok { allowed += 1 } else { denied += 1 };
    // clone: only without namespace flags.
    if p.allow.contains("clone") {
        let mask = NS_FLAGS.iter().fold(0, |a, b| a | b);
        allow_if(&mut f, "clone", ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(mask), 0))?;
    }
    count(p.allow.contains("clone"));
    // clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes libc use clone.
    f.add_rule(ScmpAction::Errno(libc::ENOSYS), sys("clone3")?).map_err(|e| sc_err("clone3", e))?;
    // socket families (the kernel reads an int).
    for name in ["socket", "socketpair"] {
        if p.allow.contains(name) {
            for fam in p.families() {
                allow_if(&mut f, name, masked(0, u32::MAX, fam))?;
            }
        }
        count(p.allow.contains(name));
    }
    // ioctl: everything but pushing input into a terminal (TIOCSTI) and TIOCLINUX. Allowing
    // "all but two values" under a mask needs the complement spelled out.
    if p.allow.contains("ioctl") {
        for (m, v) in complement(&[TIOCSTI, TIOCLINUX]) {
            allow_if(&mut f, "ioctl", masked(1, m, v))?;
        }
    }
    count(p.allow.contains("ioctl"));
    if p.allow.contains("personality") {
        for v in PERSONALITY_OK {
            allow_if(&mut f, "personality", masked(0, u32::MAX, v))?;
        }
    }
    count(p.allow.contains("personality"));
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    // The filter is a few KiB, well under a pipe's buffer: export, close, read.
    f.export_bpf(&wr).map_err(|e| sc_err("export the BPF", e))?;
    drop(wr);
    let mut bpf = Vec::new();
    std::fs::File::from(rd).read_to_end(&mut bpf).map_err(|e| Error::io("read the exported BPF", e))?;
    Ok((bpf, allowed, denied))
}

const MAGIC: &[u8; 8] = b"WARDBPF1";

/// Where compiled filters are kept, the first that applies: $XDG_CACHE_HOME/ward,
/// HOME/.cache/ward (`home`: $HOME, else the passwd entry's), $XDG_RUNTIME_DIR/ward, else
/// /tmp/ward-cache-UID (used only if it is ours and mode 0700).
pub fn cache_dir(home: Option<&std::path::Path>) -> Option<PathBuf> {
    let abs_dir = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(x) = abs_dir(std::env::var_os("XDG_CACHE_HOME")) {
        return Some(x.join("ward"));
    }
    let uid = nix::unistd::Uid::current();
    if let Some(h) = home.filter(|h| h.is_absolute() && h.is_dir()) {
        return Some(h.join(".cache/ward"));
    }
    if let Some(x) = abs_dir(std::env::var_os("XDG_RUNTIME_DIR")).filter(|p| p.is_dir()) {
        return Some(x.join("ward"));
    }
    let tmp = PathBuf::from(format!("/tmp/ward-cache-{uid}"));
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&tmp);
    match std::fs::symlink_metadata(&tmp) {
        Ok(m) if m.is_dir() && m.uid() == uid.as_raw() && m.mode() & 0o777 == 0o700 => Some(tmp),
        _ => None,
    }
}

fn read_cached(path: &std::path::Path, key: u64) -> Option<(Vec<u8>, usize, usize)> {
    let data = std::fs::read(path).ok()?;
    if data.len() < 32 || &data[..8] != MAGIC || u64::from_le_bytes(data[8..16].try_into().ok()?) != key {
        return None;
    }
    let allowed = u64::from_le_bytes(data[16..24].try_into().ok()?) as usize;
    let denied = u64::from_le_bytes(data[24..32].try_into().ok()?) as usize;
    let bpf = data[32..].to_vec();
    (!bpf.is_empty() && bpf.len() % 8 == 0 && bpf.len() / 8 <= 4096).then_some((bpf, allowed, denied))
}

fn write_cached(dir: &std::path::Path, path: &std::path::Path, key: u64, bpf: &[u8], allowed: usize, denied: usize) {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else { return };
    let mut data = MAGIC.to_vec();
    for v in [key, allowed as u64, denied as u64] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data.extend_from_slice(bpf);
    if tmp.write_all(&data).is_ok() {
        let _ = tmp.persist(path);
    }
}

/// The filter for `p`: from the cache in `dir` when it is there, else compiled (and cached).
pub fn filter(p: &SeccompPolicy, dir: Option<&std::path::Path>) -> Result<Filter> {
    let key = p.cache_key();
    let dir = dir.map(std::path::Path::to_path_buf);
    let path = dir.as_ref().map(|d| d.join(format!("seccomp-{key:016x}.bpf")));
    if let Some((bpf, allowed, denied)) = path.as_deref().and_then(|p| read_cached(p, key)) {
        return Ok(Filter { bpf, allowed, denied, from_cache: true });
    }
    let (bpf, allowed, denied) = compile(p)?;
    if let (Some(d), Some(pth)) = (&dir, &path) {
        write_cached(d, pth, key, &bpf, allowed, denied);
    }
    Ok(Filter { bpf, allowed, denied, from_cache: false })
}

/// One denied call as the verdict reports it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Blocked {
    pub syscall: String,
    pub count: u64,
    /// The first three arguments of the first occurrence.
    pub args: [u64; 3],
    pub errno: String,
}

/// The errno a denied call gets: EAFNOSUPPORT when `socket`/`socketpair` is allowed and only
/// the family was refused (so programs fall back as they would on a kernel without it),
/// EPERM otherwise.
pub fn denial_errno(name: &str, p: &SeccompPolicy) -> i32 {
    match name {
        "socket" | "socketpair" if p.allow.contains(name) => libc::EAFNOSUPPORT,
        _ => libc::EPERM,
    }
}

/// Answers notifications for denied calls and keeps the list for the verdict.
#[derive(Debug, Default)]
pub struct Supervisor {
    pub blocked: Vec<Blocked>,
    pub killed: bool,
}

impl Supervisor {
    /// Handle one pending notification on `fd`. Returns true when the sandbox must be killed
    /// (kill-on-deny), false when the call was answered with its errno.
    pub fn handle(&mut self, fd: std::os::fd::RawFd, p: &SeccompPolicy) -> bool {
        let Ok(req) = libseccomp::ScmpNotifReq::receive(fd) else { return false };
        let respond = |errno: i32| {
            let resp = libseccomp::ScmpNotifResp::new_error(req.id, -errno, libseccomp::ScmpNotifRespFlags::empty());
            let _ = resp.respond(fd);
        };
        let Ok(name) = req.data.syscall.get_name() else {
            // Newer than libseccomp's table: "not implemented", so libc falls back. Not a
            // denial of anything this version knows, so neither reported nor killed for.
            respond(libc::ENOSYS);
            return false;
        };
        let errno = denial_errno(&name, p);
        let args = [req.data.args[0], req.data.args[1], req.data.args[2]];
        let ename = format!("{:?}", nix::errno::Errno::from_raw(errno));
        if p.log_denied {
            eprintln!("ward: denied {name}({:#x}, {:#x}, {:#x}) => {ename}", args[0], args[1], args[2]);
        }
        match self.blocked.iter_mut().find(|b| b.syscall == name) {
            Some(b) => b.count += 1,
            None => self.blocked.push(Blocked { syscall: name, count: 1, args, errno: ename }),
        }
        if p.on_deny == OnDeny::Kill {
            self.killed = true;
            return true;
        }
        respond(errno);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(rules: &[(u32, u32)], x: u32) -> usize {
        rules.iter().filter(|(m, v)| x & m == *v).count()
    }

    #[test]
    fn complement_is_exact_and_disjoint() {
        let ex = [TIOCSTI, TIOCLINUX];
        let rules = complement(&ex);
        assert!(rules.len() <= 64, "{}", rules.len());
        for x in [0u32, 1, 0x5411, 0x5413, 0x541B, 0x541D, 0x5400, u32::MAX, 0x8000_5412, 0x0001_5412] {
            assert_eq!(covers(&rules, x), 1, "{x:#x}");
        }
        for x in ex {
            assert_eq!(covers(&rules, x), 0, "{x:#x}");
        }
        assert_eq!(complement(&[]), vec![(0, 0)]);
        let p = complement(&PERSONALITY_OK);
        for x in PERSONALITY_OK {
            assert_eq!(covers(&p, x), 0);
        }
        for x in [1u32, 0x0040000, 0x8, 0x9, 0xffff_fffe] {
            assert_eq!(covers(&p, x), usize::from(!PERSONALITY_OK.contains(&x)), "{x:#x}");
        }
    }

    #[test]
    fn policy_expands_groups_and_never_wins() {
        let p = SeccompPolicy::new(&["@basic".into(), "mount".into(), "ptrace".into()], &["socket".into()], false, OnDeny::Errno, false, false).unwrap();
        assert!(p.allow.contains("openat"));
        assert!(!p.allow.contains("mount"));
        assert!(!p.allow.contains("ptrace"));
        assert!(!p.allow.contains("socket"));
        let p = SeccompPolicy::new(&["@basic".into()], &[], true, OnDeny::Errno, false, false).unwrap();
        assert!(p.allow.contains("process_vm_readv"));
        assert!(SeccompPolicy::new(&["@nope".into()], &[], false, OnDeny::Errno, false, false).unwrap_err().to_string().contains("unknown group"));
        assert!(SeccompPolicy::new(&["frobnicate".into()], &[], false, OnDeny::Errno, false, false).unwrap_err().to_string().contains("unknown system call"));
    }

    #[test]
    fn filter_compiles_and_keys_differ() {
        let a = SeccompPolicy::new(&["@basic".into()], &[], false, OnDeny::Errno, false, false).unwrap();
        let b = SeccompPolicy::new(&["@basic".into()], &[], false, OnDeny::Errno, true, false).unwrap();
        assert_ne!(a.cache_key(), b.cache_key());
        let (bpf, allowed, denied) = compile(&a).unwrap();
        assert_eq!(bpf.len() % 8, 0);
        assert!(allowed > 250 && denied > 50, "{allowed} {denied}");
        assert!(bpf.len() / 8 < 600, "the filter grew to {} instructions", bpf.len() / 8);
    }
}
