//! seccomp, declared: which system calls the program may make, with which arguments, and
//! what a denied call gets. The launcher writes this as BPF (`launcher::bpf`; libseccomp where
//! that cannot be) and answers
//! the kernel's notifications for denied calls (`launcher::seccomp`); the program's process
//! loads it last, right before execve (`child::program::seccomp`).
//!
//! The filter, for the native architecture only (any other architecture, i386 `int 0x80`
//! and x32 included, kills the process):
//! - allowed calls: ALLOW; `clone` only without namespace flags; `socket`/`socketpair` only
//!   for AF_UNIX (and AF_INET/AF_INET6 with networking); `ioctl` except TIOCSTI and
//!   TIOCLINUX; `personality` only for harmless values; `prctl` except PR_SET_SECCOMP
//!   unless `seccomp` is allowed; arguments are compared on the low
//!   32 bits where the kernel reads an int, so high bits cannot smuggle a value past;
//! - `clone3`: ENOSYS, so libc falls back to `clone`, whose flags can be checked;
//! - everything else (the default action): USER_NOTIF, answered by the launcher: a call
//!   unknown to libseccomp's table (newer than it) gets ENOSYS so newer libcs fall back; any
//!   other call is denied with EPERM (EAFNOSUPPORT for a refused socket family) and
//!   recorded, or, on a kill-on-deny profile, ends the sandbox (verdict SYS).

pub mod groups;

use crate::error::{Error, Result};
pub use crate::request::OnDeny;
use libseccomp::ScmpSyscall;
use nix::libc;
use std::borrow::Cow;

/// A set of system call names, sorted: the groups' names are borrowed, so a policy built
/// for every line of a batch allocates one vector, not a string per call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls(Vec<Cow<'static, str>>);

impl Calls {
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|c| c.as_ref().cmp(name)).is_ok()
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|c| c.as_ref().cmp(name)) {
            self.0.remove(i);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|c| c.as_ref())
    }

    fn from_unsorted(mut v: Vec<Cow<'static, str>>) -> Calls {
        v.sort_unstable();
        v.dedup();
        Calls(v)
    }
}

/// The validated seccomp part of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompPolicy {
    /// Allowed system calls by name (groups expanded; `NEVER` removed).
    pub allow: Calls,
    pub on_deny: OnDeny,
    /// AF_INET and AF_INET6 sockets are allowed (only with networking).
    pub inet: bool,
    pub log_denied: bool,
}

pub const NS_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];
/// Bump when `compile` changes what it builds for the same policy (part of the cache key).
pub const FILTER_LAYOUT: u32 = 3;
/// prctl's option that installs a filter (refused unless `seccomp` is allowed by name).
pub const PR_SET_SECCOMP: u32 = 22;
pub const TIOCSTI: u32 = 0x5412;
pub const TIOCLINUX: u32 = 0x541C;
/// personality(2) values that change nothing dangerous (Docker's set): PER_LINUX,
/// PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
pub const PERSONALITY_OK: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

impl SeccompPolicy {
    /// Expand `allow` (names and @groups), check every name, drop what is never allowed.
    pub fn new(allow: &[String], deny: &[String], allow_ptrace: bool, on_deny: OnDeny, inet: bool, log_denied: bool) -> Result<SeccompPolicy> {
        let mut set: Vec<Cow<'static, str>> = Vec::with_capacity(groups::BASIC.len() + allow.len());
        for item in allow {
            if item.starts_with('@') {
                let g = groups::group(item).ok_or_else(|| {
                    Error::invalid(format!("seccomp.allow: unknown group {item:?}"), format!("use one of {}", groups::GROUPS.join(", ")))
                })?;
                set.extend(g.iter().map(|s| Cow::Borrowed(*s)));
            } else {
                if ScmpSyscall::from_name(item).is_err() {
                    return Err(Error::invalid(format!("seccomp.allow: unknown system call {item:?}"), "check the name (x86_64 names, e.g. openat)"));
                }
                set.push(Cow::Owned(item.clone()));
            }
        }
        if allow_ptrace {
            set.extend(groups::PTRACE.iter().map(|s| Cow::Borrowed(*s)));
        }
        for d in deny {
            if ScmpSyscall::from_name(d).is_err() {
                return Err(Error::invalid(format!("seccomp.deny: unknown system call {d:?}"), "check the name (x86_64 names, e.g. openat)"));
            }
        }
        let mut set = Calls::from_unsorted(set);
        let ptrace: &[&str] = if allow_ptrace { &[] } else { groups::PTRACE };
        for s in groups::NEVER.iter().chain(ptrace).copied().chain(deny.iter().map(String::as_str)) {
            set.remove(s);
        }
        Ok(SeccompPolicy { allow: set, on_deny, inet, log_denied })
    }

    pub fn families(&self) -> Vec<u32> {
        let mut f = vec![libc::AF_UNIX as u32];
        if self.inet {
            f.extend([libc::AF_INET as u32, libc::AF_INET6 as u32]);
        }
        f
    }

    /// A stable key for the cache: everything the BPF depends on.
    pub fn cache_key(&self) -> u64 {
        use std::fmt::Write;
        let v = libseccomp::ScmpVersion::current().map(|v| (v.major, v.minor, v.micro)).unwrap_or_default();
        let mut h = crate::policy::warm::Fnv::new();
        let _ = write!(
            h,
            "ward {} layout {FILTER_LAYOUT} libseccomp {v:?} {:?} inet={} never={:?} personality={:?} allow=",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            self.inet,
            groups::NEVER,
            PERSONALITY_OK
        );
        for c in self.allow.iter() {
            let _ = write!(h, "{c},");
        }
        h.finish()
    }
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

/// The errno a denied call gets: EAFNOSUPPORT when `socket`/`socketpair` is allowed and only
/// the family was refused (so programs fall back as they would on a kernel without it),
/// EPERM otherwise.
pub fn denial_errno(name: &str, p: &SeccompPolicy) -> i32 {
    match name {
        "socket" | "socketpair" if p.allow.contains(name) => libc::EAFNOSUPPORT,
        _ => libc::EPERM,
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

}
