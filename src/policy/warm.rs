//! Warm sandboxes, declared: which part of a policy a kept sandbox (the keeper) may hold for
//! many runs, which part every run makes fresh, and when warm mode is refused.
//!
//! The keeper holds what is stateless for the program: the user namespace with its maps, the
//! mount namespace with the tree built and read-only, the loopback-only network namespace.
//! Every run gets, in a copy of that mount namespace, a fresh mount for each place the
//! program can write that is not the caller's own bind (every tmpfs that stays writable,
//! /proc of its own pid namespace, /dev/pts), plus new pid, ipc, uts and cgroup namespaces,
//! its own session keyring, Landlock domain, seccomp filter and cgroup leaf.
//!
//! Refused, with the reason, where a property of a fresh run could not hold: user-mode
//! networking (its helper is tied to one network namespace per run), an overlay (its upper
//! layer is writable state below the tree), and a filter that allows the key
//! management calls (the user keyring belongs to the user namespace, so runs would share it).

use crate::policy::Policy;
use crate::policy::tree::MountOp;
use std::path::Path;

/// What a warm run does afresh, and what identifies the keeper that can serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmPlan {
    /// Indices into `Policy::tree` of the operations every run performs again, in order.
    pub fresh: Vec<usize>,
    /// Everything the keeper holds, hashed: a keeper serves a run only with the same key.
    pub key: u64,
}

/// The system calls that reach the user keyring, which a user namespace keeps across runs.
pub const KEYRING_CALLS: [&str; 3] = ["keyctl", "add_key", "request_key"];

fn dst(op: &MountOp) -> &Path {
    match op {
        MountOp::Bind { dst, .. }
        | MountOp::Tmpfs { dst, .. }
        | MountOp::Overlay { dst, .. }
        | MountOp::Symlink { dst, .. }
        | MountOp::Dir { dst }
        | MountOp::File { dst, .. }
        | MountOp::Proc { dst }
        | MountOp::DevPts { dst }
        | MountOp::RemountRo { dst }
        | MountOp::NoExec { dst } => dst,
    }
}

/// A mount the program could write or that shows per-run state: a tmpfs not made read-only
/// later, /proc, /dev/pts.
fn is_fresh_kind(tree: &[MountOp], i: usize) -> bool {
    match &tree[i] {
        MountOp::Tmpfs { dst, .. } => !tree[i + 1..].iter().any(|m| matches!(m, MountOp::RemountRo { dst: d } if d == dst)),
        MountOp::Proc { .. } | MountOp::DevPts { .. } => true,
        _ => false,
    }
}

/// A later mount at the same place or above it hides this one.
fn covered(tree: &[MountOp], i: usize, at: &Path) -> bool {
    tree[i + 1..].iter().any(|m| {
        matches!(m, MountOp::Bind { .. } | MountOp::Tmpfs { .. } | MountOp::Overlay { .. } | MountOp::Proc { .. } | MountOp::DevPts { .. })
            && at.starts_with(dst(m))
    })
}

/// The warm plan for `p`, or why this configuration cannot run warm.
pub fn plan(p: &Policy) -> Result<WarmPlan, String> {
    if p.net.is_some() {
        return Err("user-mode networking starts its helper for one network namespace per run".into());
    }
    match &p.seccomp {
        None => return Err("without a seccomp filter the program could keep keys in the user keyring, which outlives a run in a warm sandbox".into()),
        Some(sc) => {
            if let Some(k) = KEYRING_CALLS.iter().find(|k| sc.allow.contains(k)) {
                return Err(format!("the filter allows {k}: the user keyring belongs to the kept user namespace and would outlive a run"));
            }
        }
    }
    thread_local! {
        /// The last tree and ids planned, with their plan: a batch's lines share them.
        static LAST: std::cell::RefCell<Option<(Vec<MountOp>, crate::policy::ids::Ids, WarmPlan)>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(w) = LAST.with_borrow(|l| l.as_ref().filter(|(t, i, _)| *t == p.tree && *i == p.ids).map(|(_, _, w)| w.clone())) {
        return Ok(w);
    }
    let w = plan_tree(p)?;
    LAST.set(Some((p.tree.clone(), p.ids.clone(), w.clone())));
    Ok(w)
}

/// The fresh operations and the keeper's key of `p`'s tree and ids.
fn plan_tree(p: &Policy) -> Result<WarmPlan, String> {
    let tree = &p.tree;
    let mut fresh = Vec::new();
    for (i, op) in tree.iter().enumerate() {
        if let MountOp::Overlay { dst, .. } = op {
            return Err(format!("the overlay on {} keeps its writable upper layer in the tree", dst.display()));
        }
        if !is_fresh_kind(tree, i) {
            continue;
        }
        let at = dst(op);
        if covered(tree, i, at) {
            continue;
        }
        fresh.push(i);
        for (j, later) in tree.iter().enumerate().skip(i + 1) {
            let d = dst(later);
            let below = d.starts_with(at) && d != at;
            let noexec_above = matches!(later, MountOp::NoExec { .. }) && at.starts_with(d);
            if !(below || noexec_above) {
                continue;
            }
            // a bind below is bound again from the keeper's (`child::init::mount::refresh`)
            fresh.push(j);
        }
    }
    fresh.sort_unstable();
    fresh.dedup();
    // The keeper's part: every operation (fresh ones only as mount points: their contents
    // are the run's), the maps, the ids; hashed as written, with no text built.
    use std::fmt::Write;
    let mut h = Fnv::new();
    for (i, op) in tree.iter().enumerate() {
        let _ = if fresh.binary_search(&i).is_ok() { writeln!(h, "fresh {:?}", dst(op)) } else { writeln!(h, "{op:?}") };
    }
    let _ = writeln!(h, "{:?}", p.ids);
    Ok(WarmPlan { fresh, key: h.finish() })
}

/// FNV-1a, 64 bits, over what is written to it: stable across builds (the key is compared
/// between processes), and no text is built to hash.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 = s.bytes().fold(self.0, |h, x| (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;
    use crate::request::{BindAccess, MountSpec, Request};
    use std::path::PathBuf;

    struct Fs;
    impl crate::policy::tree::Resolve for Fs {
        fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
            Ok((p.to_path_buf(), true))
        }
        fn shared(&self, _: &Path) -> bool {
            false
        }
    }

    fn policy(f: impl FnOnce(&mut Request)) -> Policy {
        let mut r = Request::new(vec!["/bin/true".into()]);
        f(&mut r);
        let host = Host { usr_links: vec![("bin".into(), Some("usr/bin".into()))], landlock_abi: 7, kernel: (6, 18), ..crate::testing::fake_host() };
        Policy::build(&r, &host, &Fs).unwrap()
    }

    fn fresh_dsts(p: &Policy) -> Vec<String> {
        let w = plan(p).unwrap();
        w.fresh.iter().map(|i| format!("{:?}", p.tree[*i])).collect()
    }

    #[test]
    fn every_writable_place_and_proc_is_fresh_and_the_read_only_tree_is_kept() {
        let p = policy(|_| {});
        let f = fresh_dsts(&p);
        assert!(f.iter().any(|s| s.starts_with("Proc") && s.contains("\"/proc\"")), "{f:?}");
        assert!(f.iter().any(|s| s.starts_with("Tmpfs") && s.contains("\"/tmp\"")), "{f:?}");
        assert!(f.iter().any(|s| s.starts_with("Tmpfs") && s.contains("\"/dev/shm\"")), "{f:?}");
        // /dev itself is read-only at the end: kept, with its device binds
        assert!(!f.iter().any(|s| s.contains("\"/dev\"") || s.starts_with("Bind")), "{f:?}");
    }

    #[test]
    fn a_bind_over_a_tmpfs_is_kept_and_a_bind_below_one_is_bound_again() {
        let over = policy(|r| r.tree.mounts.push(MountSpec::Bind { src: "/srv/box".into(), dst: "/tmp".into(), access: BindAccess::ReadWrite, optional: false }));
        assert!(!fresh_dsts(&over).iter().any(|s| s.contains("\"/tmp\"")));
        let below = policy(|r| r.tree.mounts.push(MountSpec::Bind { src: "/srv/box".into(), dst: "/tmp/box".into(), access: BindAccess::ReadWrite, optional: false }));
        let f = fresh_dsts(&below);
        let (tmp, bind) = (f.iter().position(|s| s.starts_with("Tmpfs") && s.contains("\"/tmp\"")), f.iter().position(|s| s.contains("\"/tmp/box\"")));
        assert!(tmp.is_some() && bind > tmp, "{f:?}");
    }

    #[test]
    fn refusals_name_the_reason() {
        assert!(plan(&policy(|r| r.seccomp.enabled = Some(false))).unwrap_err().contains("seccomp"));
        // the key calls are never allowed by name: the filter always keeps them out
        let asked = policy(|r| r.seccomp.allow = vec!["@basic".into(), "keyctl".into()]);
        assert!(!asked.seccomp.as_ref().unwrap().allow.contains("keyctl"));
        assert!(plan(&policy(|r| r.tree.mounts.push(MountSpec::Overlay { src: "/srv".into(), dst: "/srv".into(), optional: false }))).unwrap_err().contains("overlay"));
    }

    #[test]
    fn the_key_changes_with_the_kept_tree_not_with_a_fresh_size() {
        let a = plan(&policy(|_| {})).unwrap().key;
        let b = plan(&policy(|r| r.tree.tmp_size = Some(crate::request::Size(1 << 20)))).unwrap().key;
        let c = plan(&policy(|r| r.tree.mounts.push(MountSpec::Bind { src: "/srv".into(), dst: "/srv".into(), access: BindAccess::ReadOnly, optional: false }))).unwrap().key;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
