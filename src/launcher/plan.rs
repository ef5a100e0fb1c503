//! Parent half of the child's setup: turn the policy into the `child::Plan` (C strings, the
//! tree as prepared mount operations, the stdio files, the filter's bytes), so the child
//! between clone and exec only performs effects and allocates next to nothing.

use crate::child::Plan;
use crate::child::init::mount::{NEW, Op};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::policy::landlock::LandlockState;
use crate::policy::tree::MountOp;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| Error::invalid("a string contains a NUL byte", "remove it"))
}

/// The plan for `p`: `ops` the tree's operations (`ops`, or a warm run's `fresh_ops`),
/// `stdio` the program's files (see `stdio::open`), `chan` the child's end of the channel.
pub fn prepare(p: &Policy, ops: Vec<Op>, stdio: [Option<OwnedFd>; 3], chan: OwnedFd, seccomp_bpf: Option<std::rc::Rc<[u8]>>) -> Result<Plan> {
    Ok(Plan {
        ops,
        hostname: c(p.hostname.as_bytes())?,
        chdir: c(p.chdir.as_os_str().as_bytes())?,
        candidates: p.exec_candidates.iter().map(|x| c(x.as_os_str().as_bytes())).collect::<Result<_>>()?,
        argv: p.argv.iter().map(|a| c(a.as_bytes())).collect::<Result<_>>()?,
        envp: p
            .env
            .iter()
            .map(|(k, v)| {
                let mut b = k.as_bytes().to_vec();
                b.push(b'=');
                b.extend_from_slice(v.as_bytes());
                c(&b)
            })
            .collect::<Result<_>>()?,
        rlimits: p.rlimits.clone(),
        ids: p.ids.clone(),
        uid_map: c(crate::policy::ids::map_text(&p.ids.uid_lines).as_bytes())?,
        gid_map: c(crate::policy::ids::map_text(&p.ids.gid_lines).as_bytes())?,
        new_session: p.new_session,
        stdio,
        stdio_inside: if p.stdio.inside {
            let inside = |x: &Option<std::path::PathBuf>| x.as_ref().map(|x| c(x.as_os_str().as_bytes())).transpose();
            [inside(&p.stdio.stdin)?, inside(&p.stdio.stdout)?, inside(&p.stdio.stderr)?]
        } else {
            [None, None, None]
        },
        stderr_to_stdout: p.stdio.stderr_to_stdout,
        chan,
        seccomp_bpf,
        wait_for_net: p.net.is_some(),
        due_by_message: false,
        own_userns: false,
        landlock: match &p.landlock {
            LandlockState::On(l) => Some(l.clone()),
            LandlockState::Off(_) => None,
        },
    })
}

fn cstr(prefix: &str, p: &Path) -> Result<CString> {
    let mut v = prefix.as_bytes().to_vec();
    if p != Path::new("/") || prefix.is_empty() {
        v.extend_from_slice(p.as_os_str().as_bytes());
    }
    CString::new(v).map_err(|_| Error::invalid(format!("{}: the path contains a NUL byte", p.display()), ""))
}

/// The policy's tree as prepared operations, for building a new root under /newroot.
pub fn ops(policy: &Policy) -> Result<Vec<Op>> {
    ops_at(policy, NEW, None)
}

/// A keeper's tree: the policy's, but its /proc has no masks. No program ever sees it (every
/// warm run mounts its own masked /proc over it), and a run in a user namespace of its own
/// may mount a /proc only where the kernel sees one that nothing covers.
pub fn keeper_ops(policy: &Policy) -> Result<Vec<Op>> {
    let mut ops = ops(policy)?;
    for op in ops.iter_mut() {
        if let Op::Proc { masked, .. } = op {
            *masked = false;
        }
    }
    Ok(ops)
}

/// The operations a warm run performs afresh (`only`: indices into the tree), in a copy of
/// the keeper's mount namespace whose root is the sandbox's already.
pub fn fresh_ops(policy: &Policy, only: &[usize]) -> Result<Vec<Op>> {
    ops_at(policy, "", Some(only))
}

/// Every path below `prefix`; /proc's masks bind the host's /dev/null (under /oldroot while
/// a root is built) or the sandbox's own.
fn ops_at(policy: &Policy, prefix: &str, only: Option<&[usize]>) -> Result<Vec<Op>> {
        let null = if prefix.is_empty() { c"/dev/null" } else { c"/oldroot/dev/null" };
        let mut ovl = 0;
                policy
            .tree
            .iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o.contains(i)))
            .map(|(_, m)| {
                Ok(match m {
                    MountOp::Bind { src, dst, dir, access } => {
                        Op::Bind { src: cstr("", src)?, dst: cstr(prefix, dst)?, dir: *dir, access: *access }
                    }
                    MountOp::Tmpfs { dst, size, mode, noexec } => Op::Tmpfs {
                        dst: cstr(prefix, dst)?,
                        data: cstr("", Path::new(&format!("mode={mode:o},size={size}")))?,
                        noexec: *noexec,
                    },
                    MountOp::Overlay { src, dst, size } => {
                        ovl += 1;
                        let base = format!("/overlay{ovl}");
                        Op::Overlay {
                            src: cstr("", src)?,
                            base: CString::new(base.clone()).unwrap_or_default(),
                            lower: CString::new(format!("{base}/lower")).unwrap_or_default(),
                            upper: CString::new(format!("{base}/upper")).unwrap_or_default(),
                            work: CString::new(format!("{base}/work")).unwrap_or_default(),
                            base_data: CString::new(format!("mode=755,size={size}")).unwrap_or_default(),
                            dst: cstr(prefix, dst)?,
                            data: CString::new(format!("lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work,userxattr"))
                                .unwrap_or_default(),
                        }
                    }
                    MountOp::Symlink { target, dst } => Op::Symlink { target: cstr("", target)?, dst: cstr(prefix, dst)? },
                    MountOp::Dir { dst } => Op::Dir { dst: cstr(prefix, dst)? },
                    MountOp::File { dst, contents } => Op::File { dst: cstr(prefix, dst)?, contents: contents.clone() },
                    MountOp::Proc { dst } => Op::Proc { dst: cstr(prefix, dst)?, masked: true, null: null.to_owned() },
                    MountOp::DevPts { dst } => Op::DevPts { dst: cstr(prefix, dst)? },
                    MountOp::RemountRo { dst } => Op::RemountRo { dst: cstr(prefix, dst)? },
                    MountOp::NoExec { dst } => Op::NoExec { dst: cstr(prefix, dst)? },
                })
            })
            .collect()
    }



