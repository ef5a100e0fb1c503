//! Parent half of seccomp: build the policy's filter as BPF (before clone; the child only
//! loads the bytes), cache the program, and answer the kernel's notifications for denied
//! calls so the verdict says what was blocked.
//!
//! The filter is written by `launcher::bpf` (~0.2 ms: naming every call number through
//! libseccomp's table is most of it); libseccomp, which builds it where that cannot, takes
//! ~3 ms. Either way the BPF is cached per filter specification in the caller's user keyring
//! (see `filter`), and the last one in the process.

use crate::error::{Error, Result};
use crate::policy::seccomp::{OnDeny, SeccompPolicy, NS_FLAGS, PERSONALITY_OK, PR_SET_SECCOMP, TIOCLINUX, TIOCSTI, complement, denial_errno};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::libc;
use std::io::Read;
use crate::verdict::Blocked;

fn masked(arg: u32, mask: u32, value: u32) -> ScmpArgCompare {
    ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(mask as u64), value as u64)
}

fn sc_err(what: &str, e: libseccomp::error::SeccompError) -> Error {
    crate::error::SeccompError { what: what.to_string(), message: e.to_string() }.into()
}

/// The filter of one run, ready to load (its bytes shared with the run's plan and with the
/// next runs of the same filter).
#[derive(Debug, Clone)]
pub struct Filter {
    pub bpf: std::rc::Rc<[u8]>,
    /// Number of calls allowed (some with argument checks) and denied by name.
    pub allowed: usize,
    pub denied: usize,
    pub from_cache: bool,
}

/// What the filter does with one call number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Allow,
    /// The default: the launcher answers (EPERM or ENOSYS) and records it.
    Notify,
    Enosys,
    /// clone: allowed without namespace flags.
    Clone,
    /// socket, socketpair: allowed for the policy's families.
    Socket,
    /// ioctl: allowed but for TIOCSTI and TIOCLINUX.
    Ioctl,
    Personality,
    /// prctl: allowed but for PR_SET_SECCOMP.
    Prctl,
}

/// The decision for every number libseccomp names on this architecture (others are
/// `Notify`), with the counts of calls allowed and denied by name: what both builds of the
/// filter (`launcher::bpf` and `compile_libseccomp`) write.
pub(crate) fn decisions(p: &SeccompPolicy) -> (Vec<(u32, Act)>, usize, usize) {
    let (mut allowed, mut denied) = (0, 0);
    let mut out = Vec::new();
    for nr in 0..1024 {
        let Ok(name) = libseccomp::ScmpSyscall::from(nr).get_name() else { continue };
        let ok = p.allow.contains(&name);
        let act = match name.as_str() {
            "clone3" => {
                out.push((nr as u32, Act::Enosys));
                continue;
            }
            "clone" if ok => Act::Clone,
            "socket" | "socketpair" if ok => Act::Socket,
            "ioctl" if ok => Act::Ioctl,
            "personality" if ok => Act::Personality,
            "prctl" if ok && !p.allow.contains("seccomp") => Act::Prctl,
            _ if ok => Act::Allow,
            _ => Act::Notify,
        };
        if ok { allowed += 1 } else { denied += 1 }
        out.push((nr as u32, act));
    }
    (out, allowed, denied)
}

/// Build the BPF: written directly (`launcher::bpf`, a fraction of the length), or by
/// libseccomp where that cannot be.
pub fn compile(p: &SeccompPolicy) -> Result<(Vec<u8>, usize, usize)> {
    match crate::launcher::bpf::build(p) {
        Some(f) => Ok(f),
        None => compile_libseccomp(p),
    }
}

/// Build the BPF with libseccomp.
pub fn compile_libseccomp(p: &SeccompPolicy) -> Result<(Vec<u8>, usize, usize)> {
    let mut f = ScmpFilterContext::new(ScmpAction::Notify).map_err(|e| sc_err("create the filter", e))?;
    f.add_arch(ScmpArch::native()).map_err(|e| sc_err("add the native architecture", e))?;
    f.set_act_badarch(ScmpAction::KillProcess).map_err(|e| sc_err("set the bad-architecture action", e))?;
    f.set_ctl_nnp(false).map_err(|e| sc_err("leave no_new_privs to ward", e))?;
    f.set_ctl_optimize(2).map_err(|e| sc_err("enable the binary tree", e))?;
    let (decided, allowed, denied) = decisions(p);
    let rule = |f: &mut ScmpFilterContext, action: ScmpAction, s: ScmpSyscall, cmp: Option<ScmpArgCompare>| -> Result<()> {
        match cmp {
            Some(c) => f.add_rule_conditional(action, s, &[c]),
            None => f.add_rule(action, s),
        }
        .map_err(|e| sc_err(&format!("rule for {}", s.get_name().unwrap_or_default()), e))
        .map(drop)
    };
    // Every call libseccomp knows for this architecture: allowed ones get a rule (with their
    // argument checks); denied ones fall to the default action.
    for (nr, act) in decided {
        let s = ScmpSyscall::from(nr as i32);
        match act {
            Act::Notify => {}
            Act::Allow => rule(&mut f, ScmpAction::Allow, s, None)?,
            // clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes
            // libc use clone
            Act::Enosys => rule(&mut f, ScmpAction::Errno(libc::ENOSYS), s, None)?,
            // clone: only without namespace flags
            Act::Clone => rule(&mut f, ScmpAction::Allow, s, Some(ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(NS_FLAGS.iter().fold(0, |a, b| a | b)), 0)))?,
            // socket families (the kernel reads an int)
            Act::Socket => {
                for fam in p.families() {
                    rule(&mut f, ScmpAction::Allow, s, Some(masked(0, u32::MAX, fam)))?;
                }
            }
            // ioctl: everything but pushing input into a terminal (TIOCSTI) and TIOCLINUX.
            // Allowing "all but two values" under a mask needs the complement spelled out.
            Act::Ioctl => {
                for (m, v) in complement(&[TIOCSTI, TIOCLINUX]) {
                    rule(&mut f, ScmpAction::Allow, s, Some(masked(1, m, v)))?;
                }
            }
            Act::Personality => {
                for v in PERSONALITY_OK {
                    rule(&mut f, ScmpAction::Allow, s, Some(masked(0, u32::MAX, v)))?;
                }
            }
            // prctl: PR_SET_SECCOMP only where seccomp(2) is allowed (a program's own filter
            // would outrank these notifications and hide its denials); the option is an int,
            // so "not PR_SET_SECCOMP" is the complement on the low 32 bits
            Act::Prctl => {
                for (m, v) in complement(&[PR_SET_SECCOMP]) {
                    rule(&mut f, ScmpAction::Allow, s, Some(masked(0, m, v)))?;
                }
            }
        }
    }
    let (rd, wr) = nix::unistd::pipe().map_err(|e| Error::sys("pipe", e))?;
    // The filter is a few KiB, well under a pipe's buffer: export, close, read.
    f.export_bpf(&wr).map_err(|e| sc_err("export the BPF", e))?;
    drop(wr);
    let mut bpf = Vec::new();
    std::fs::File::from(rd).read_to_end(&mut bpf).map_err(|e| Error::io("read the exported BPF", e))?;
    Ok((bpf, allowed, denied))
}

const MAGIC: &[u8; 8] = b"WARDBPF2";

/// The cache entry's name in the caller's user keyring.
fn key_name(key: u64) -> std::ffi::CString {
    std::ffi::CString::new(format!("ward:seccomp:{key:016x}")).unwrap_or_default()
}

fn read_cached(key: u64) -> Option<(Vec<u8>, usize, usize)> {
    let serial = crate::sys::user_key_find(&key_name(key)).ok()?;
    // the payload's length first (a 32 KiB buffer zeroed every run was most of the cost)
    let n = crate::sys::user_key_read(serial, &mut []).ok()?;
    if n > 32 + 8 * 4096 {
        return None;
    }
    let mut data = vec![0u8; n];
    let n = crate::sys::user_key_read(serial, &mut data).ok()?;
    if n > data.len() || n < 32 || &data[..8] != MAGIC || u64::from_le_bytes(data[8..16].try_into().ok()?) != key {
        return None;
    }
    let allowed = u64::from_le_bytes(data[16..24].try_into().ok()?) as usize;
    let denied = u64::from_le_bytes(data[24..32].try_into().ok()?) as usize;
    let bpf = data[32..n].to_vec();
    (!bpf.is_empty() && bpf.len() % 8 == 0).then_some((bpf, allowed, denied))
}

/// How long a cached filter lives: entries of other ward versions and profiles go on their
/// own.
const CACHE_TTL_S: u32 = 7 * 24 * 3600;

/// Keep the filter in the caller's user keyring (best effort: a runtime that forbids keyctl
/// means compiling every time). The keyring's quota is small (20000 bytes for a user by
/// default, a few filters): when it is full, ward's other entries make room for this one.
fn write_cached(key: u64, bpf: &[u8], allowed: usize, denied: usize) {
    let mut data = MAGIC.to_vec();
    for v in [key, allowed as u64, denied as u64] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data.extend_from_slice(bpf);
    let name = key_name(key);
    let mut added = crate::sys::user_key_add(&name, &data);
    if added == Err(nix::errno::Errno::EDQUOT) {
        evict_others(&name);
        added = crate::sys::user_key_add(&name, &data);
    }
    if let Ok(serial) = added {
        let _ = crate::sys::key_set_timeout(serial, CACHE_TTL_S);
    }
}

/// Invalidate every cached filter of ward's in the user keyring but `keep`.
fn evict_others(keep: &std::ffi::CStr) {
    let keep = keep.to_string_lossy();
    for serial in crate::sys::user_keyring_list().unwrap_or_default() {
        let Ok(desc) = crate::sys::key_describe(serial) else { continue };
        let name = desc.splitn(5, ';').nth(4).unwrap_or("");
        if desc.starts_with("user;") && name.starts_with("ward:seccomp:") && name != keep {
            let _ = crate::sys::key_invalidate(serial);
        }
    }
}

/// Step "filter": the run's compiled filter, if the policy has seccomp.
/// `WARD_NO_FILTER_CACHE=1` compiles it every run (what benches/compare.sh measures).
pub fn prepare(p: &crate::policy::Policy) -> Result<Option<Filter>> {
    let cache = std::env::var_os("WARD_NO_FILTER_CACHE").is_none_or(|v| v != "1");
    p.seccomp.as_ref().map(|s| filter(s, cache)).transpose()
}

/// The filter for `p`: from the cache when it is there (and `cache`), else compiled (and
/// cached). The cache is the caller's user keyring, not a file: no bind, however wide, can
/// reach it, since a sandbox has its own user namespace (and with it its own user keyring)
/// and does not possess the caller's keyrings.
pub fn filter(p: &SeccompPolicy, cache: bool) -> Result<Filter> {
    thread_local! {
        /// The last filter this process prepared, with its policy: a batch's runs mostly
        /// share one (compared as a policy: no key hashed per run).
        static LAST: std::cell::RefCell<Option<(SeccompPolicy, Filter)>> = const { std::cell::RefCell::new(None) };
    }
    if cache {
        if let Some(f) = LAST.with_borrow(|l| l.as_ref().filter(|(q, _)| q == p).map(|(_, f)| f.clone())) {
            return Ok(f);
        }
    }
    let key = p.cache_key();
    let f = match read_cached(key).filter(|_| cache) {
        Some((bpf, allowed, denied)) => Filter { bpf: bpf.into(), allowed, denied, from_cache: true },
        None => {
            let (bpf, allowed, denied) = compile(p)?;
            if cache {
                write_cached(key, &bpf, allowed, denied);
            }
            Filter { bpf: bpf.into(), allowed, denied, from_cache: false }
        }
    };
    if cache {
        LAST.set(Some((p.clone(), Filter { from_cache: true, ..f.clone() })));
    }
    Ok(f)
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
        // A number newer than libseccomp's table is denied like any other call (answered
        // ENOSYS, so libc falls back), reported by number, and killed for under kill-on-deny.
        let (name, errno) = match req.data.syscall.get_name() {
            Ok(name) => {
                let e = denial_errno(&name, p);
                (name, e)
            }
            Err(_) => (format!("syscall_{}", i32::from(req.data.syscall)), libc::ENOSYS),
        };
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
