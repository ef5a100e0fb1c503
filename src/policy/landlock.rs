//! Landlock, declared: which ABI to use and which rights each place of the tree gets, decided
//! before clone (pure, from the tree and the kernel's ABI); the program's process applies
//! them (`child::program::landlock`) after no_new_privs and before seccomp.
//!
//! Rules follow the tree: the whole root may be read and executed; writable binds, tmpfs and
//! overlays may also be written; device nodes may be read and written (terminals also take
//! ioctls); /proc may be read and written (its own permission checks apply). Nothing else.
//! Scopes (ABI 6+) keep abstract unix sockets and signals inside the sandbox.
//!
//! Fail closed: a profile asks for an ABI (ward is tested up to `TESTED_ABI`); when the kernel
//! has less, ward refuses to run, naming the missing feature and the kernel that has it,
//! unless the profile marks Landlock `optional`, in which case what the kernel lacks is
//! dropped and the verdict says so.

use crate::error::{Error, Result};
use super::tree::{Access, MountOp};
use std::path::PathBuf;

/// The newest Landlock ABI ward is tested with.
pub const TESTED_ABI: u8 = 7;

/// What each ABI adds, and the Linux release that has it.
pub const FEATURES: [(u8, &str, &str); 7] = [
    (1, "file system access rights", "5.13"),
    (2, "cross-directory rename and link (REFER)", "5.19"),
    (3, "truncate (TRUNCATE)", "6.2"),
    (4, "TCP bind and connect rules", "6.7"),
    (5, "device ioctls (IOCTL_DEV)", "6.10"),
    (6, "scopes: abstract unix sockets and signals", "6.12"),
    (7, "audit logging flags", "6.15"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rights {
    /// read files and directories, execute
    ReadExec,
    /// everything the ABI handles
    ReadWrite,
    /// read and write files (and truncate them), no ioctl
    Device,
    /// a terminal: read, write, truncate and device ioctls
    Terminal,
}

/// Whether Landlock is applied, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandlockState {
    On(LandlockPolicy),
    Off(String),
}

/// The Landlock part of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockPolicy {
    pub requested_abi: u8,
    pub kernel_abi: u8,
    /// min(requested, kernel): what the child enforces.
    pub abi: u8,
    pub optional: bool,
    pub rules: Vec<(PathBuf, Rights)>,
    /// TCP ports the program may connect to / bind; empty: not restricted (ABI 4+).
    pub connect_ports: Vec<u16>,
    pub bind_ports: Vec<u16>,
}

impl LandlockPolicy {
    /// Decide the ABI and the rules; `None` when Landlock is optional and the kernel has none.
    pub fn new(requested: u8, optional: bool, kernel_abi: u8, tree: &[MountOp]) -> Result<Option<LandlockPolicy>> {
        if requested == 0 || requested > TESTED_ABI {
            return Err(Error::invalid(
                format!("landlock.abi = {requested}: ward knows Landlock ABI 1 to {TESTED_ABI}"),
                format!("use a value from 1 to {TESTED_ABI}"),
            ));
        }
        if kernel_abi < requested && !optional {
            let missing: Vec<String> = FEATURES
                .iter()
                .filter(|(abi, _, _)| *abi > kernel_abi && *abi <= requested)
                .map(|(abi, what, linux)| format!("{what} (ABI {abi}, Linux {linux})"))
                .collect();
            return Err(Error::host(
                format!(
                    "the profile requires Landlock ABI {requested}, but this kernel has {}: missing {}",
                    if kernel_abi == 0 { "no Landlock".to_string() } else { format!("ABI {kernel_abi}") },
                    missing.join(", ")
                ),
                "run on a newer kernel, lower landlock.abi, or mark landlock optional = true in the profile",
            ));
        }
        if kernel_abi == 0 {
            return Ok(None);
        }
        Ok(Some(LandlockPolicy {
            requested_abi: requested,
            kernel_abi,
            abi: requested.min(kernel_abi),
            optional,
            rules: rules_for(tree),
            connect_ports: Vec::new(),
            bind_ports: Vec::new(),
        }))
    }
}

/// Add TCP port allowlists (`--allow-connect`, `--allow-bind`). They are an explicit
/// requirement: without Landlock ABI 4 (Linux 6.7) ward refuses to run, whatever the
/// profile's `optional` says.
pub fn with_ports(state: LandlockState, connect: &[u16], bind: &[u16], kernel_abi: u8) -> Result<LandlockState> {
    if connect.is_empty() && bind.is_empty() {
        return Ok(state);
    }
    let need = |why: String| {
        Error::host(
            format!("--allow-connect/--allow-bind need Landlock TCP rules (ABI 4, Linux 6.7): {why}"),
            "run on Linux 6.7 or newer, or drop the port allowlist",
        )
    };
    match state {
        LandlockState::Off(why) => Err(need(why)),
        LandlockState::On(mut p) => {
            if p.abi < 4 {
                return Err(need(format!("Landlock runs with ABI {} here (kernel ABI {kernel_abi})", p.abi)));
            }
            p.connect_ports = connect.to_vec();
            p.bind_ports = bind.to_vec();
            Ok(LandlockState::On(p))
        }
    }
}

/// The rule for each place of the tree (later entries for the same path win in the kernel by
/// union, so only the rights that differ from "/" are listed).
pub fn rules_for(tree: &[MountOp]) -> Vec<(PathBuf, Rights)> {
    let mut rules = vec![(PathBuf::from("/"), Rights::ReadExec)];
    for op in tree {
        let r = match op {
            MountOp::Bind { dst, access: Access::ReadWrite, .. } => Some((dst.clone(), Rights::ReadWrite)),
            MountOp::Bind { dst, access: Access::Device, .. } => {
                let tty = dst.to_str().is_some_and(|d| d == "/dev/tty" || d.starts_with("/dev/pts"));
                Some((dst.clone(), if tty { Rights::Terminal } else { Rights::Device }))
            }
            MountOp::Tmpfs { dst, .. } if dst.as_os_str() != "/dev" => Some((dst.clone(), Rights::ReadWrite)),
            MountOp::Overlay { dst, .. } => Some((dst.clone(), Rights::ReadWrite)),
            MountOp::DevPts { dst } => Some((dst.clone(), Rights::Terminal)),
            MountOp::Proc { dst } => Some((dst.clone(), Rights::Device)),
            _ => None,
        };
        rules.extend(r);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_unless_optional() {
        let e = LandlockPolicy::new(7, false, 2, &[]).unwrap_err().to_string();
        assert!(e.contains("requires Landlock ABI 7, but this kernel has ABI 2"), "{e}");
        assert!(e.contains("truncate (TRUNCATE) (ABI 3, Linux 6.2)"), "{e}");
        assert!(e.contains("scopes: abstract unix sockets and signals (ABI 6, Linux 6.12)"), "{e}");
        let p = LandlockPolicy::new(7, true, 2, &[]).unwrap().unwrap();
        assert_eq!((p.abi, p.kernel_abi, p.requested_abi), (2, 2, 7));
        assert_eq!(LandlockPolicy::new(3, true, 0, &[]).unwrap(), None);
        assert!(LandlockPolicy::new(3, false, 0, &[]).unwrap_err().to_string().contains("this kernel has no Landlock"));
        assert!(LandlockPolicy::new(9, true, 7, &[]).is_err());
        assert_eq!(LandlockPolicy::new(2, false, 7, &[]).unwrap().unwrap().abi, 2);
    }

    #[test]
    fn rules_follow_the_tree() {
        let tree = vec![
            MountOp::Bind { src: "/usr".into(), dst: "/usr".into(), dir: true, access: Access::ReadOnly },
            MountOp::Tmpfs { dst: "/dev".into(), size: 1, mode: 0o755, noexec: true },
            MountOp::Bind { src: "/dev/null".into(), dst: "/dev/null".into(), dir: false, access: Access::Device },
            MountOp::Bind { src: "/dev/tty".into(), dst: "/dev/tty".into(), dir: false, access: Access::Device },
            MountOp::Tmpfs { dst: "/tmp".into(), size: 1, mode: 0o1777, noexec: false },
            MountOp::Bind { src: "/w".into(), dst: "/w".into(), dir: true, access: Access::ReadWrite },
        ];
        assert_eq!(
            rules_for(&tree),
            vec![
                ("/".into(), Rights::ReadExec),
                ("/dev/null".into(), Rights::Device),
                ("/dev/tty".into(), Rights::Terminal),
                ("/tmp".into(), Rights::ReadWrite),
                ("/w".into(), Rights::ReadWrite),
            ]
        );
    }
}
