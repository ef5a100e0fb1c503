//! Child half of Landlock: build the ruleset the policy decided (`policy::landlock`)
//! for exactly the ABI it chose, and restrict the program's process. Runs after
//! no_new_privs (Landlock requires it without CAP_SYS_ADMIN) and after the mounts (a
//! Landlock domain forbids mounting), before seccomp.

use crate::child::{Fail, Plan, fail};
use crate::policy::landlock::Rights;
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::errno::Errno;

fn access(r: Rights, abi: ABI) -> BitFlags<AccessFs> {
    let file_rw = AccessFs::ReadFile | AccessFs::WriteFile;
    let all = AccessFs::from_all(abi);
    let handled = |b: BitFlags<AccessFs>| b & all;
    match r {
        Rights::ReadExec => AccessFs::from_read(abi),
        Rights::ReadWrite => all,
        Rights::Device => handled(file_rw | AccessFs::Truncate | AccessFs::ReadDir),
        Rights::Terminal => handled(file_rw | AccessFs::Truncate | AccessFs::IoctlDev | AccessFs::ReadDir),
    }
}

/// The crate's errors carry no errno; EPERM is the closest for "not allowed".
fn err(what: &str, e: &dyn std::fmt::Display) -> Fail {
    fail(Errno::EPERM, format_args!("landlock {what}: {e}"))
}

/// The ruleset with the policy's path and port rules, not yet in force: built before a warm
/// run is due (its paths are the run's own mounts, already made), so only `restrict` is left
/// for when it goes.
pub fn ruleset(plan: &Plan) -> Result<Option<RulesetCreated>, Fail> {
    let Some(p) = &plan.landlock else { return Ok(None) };
    let abi = ABI::from(p.abi as i32);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| err("handle_access", &e))?;
    if p.abi >= 6 {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(|e| err("scope", &e))?;
    }
    if !p.connect_ports.is_empty() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(|e| err("handle_access(connect)", &e))?;
    }
    if !p.bind_ports.is_empty() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(|e| err("handle_access(bind)", &e))?;
    }
    let mut created = ruleset.create().map_err(|e| err("create_ruleset", &e))?;
    for (path, rights) in &p.rules {
        let fd = PathFd::new(path).map_err(|e| err(&format!("open {}", path.display()), &e))?;
        let mut a = access(*rights, abi);
        // A rule on a file (a device node, a bound file) may only carry file rights.
        if nix::sys::stat::fstat(&fd).is_ok_and(|st| st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFDIR) {
            a &= AccessFs::from_file(abi);
        }
        created = created.add_rule(PathBeneath::new(fd, a)).map_err(|e| err(&format!("rule for {}", path.display()), &e))?;
    }
    for port in &p.connect_ports {
        created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp)).map_err(|e| err(&format!("connect rule for port {port}"), &e))?;
    }
    for port in &p.bind_ports {
        created = created.add_rule(NetPort::new(*port, AccessNet::BindTcp)).map_err(|e| err(&format!("bind rule for port {port}"), &e))?;
    }
    Ok(Some(created))
}

/// Put the ruleset in force, with rules for the stdio files (now on 0, 1 and 2).
pub fn restrict(plan: &Plan, created: Option<RulesetCreated>) -> Result<(), Fail> {
    let (Some(p), Some(mut created)) = (&plan.landlock, created) else { return Ok(()) };
    let abi = ABI::from(p.abi as i32);
    // stdio files the launcher opened live outside the tree; reopening them through
    // /dev/stdout (/proc/self/fd/N) must still work.
    for (fd, b) in crate::sys::stdio_fds().into_iter().enumerate() {
        if let Ok(st) = nix::sys::stat::fstat(b) {
            // a file with no name (the memfd holding --stdin's private copy) is no path
            // Landlock governs
            if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG && st.st_nlink > 0 {
                let rights = if fd == 0 { AccessFs::ReadFile.into() } else { access(Rights::Device, abi) & AccessFs::from_file(abi) };
                if let Ok(dup) = nix::unistd::dup(b) {
                    created = created.add_rule(PathBeneath::new(dup, rights)).map_err(|e| err(&format!("rule for fd {fd}"), &e))?;
                }
            }
        }
    }
    let status = created.restrict_self().map_err(|e| err("restrict_self", &e))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(fail(Errno::ENOTSUP, format_args!("landlock: ruleset {:?} for ABI {}", status.ruleset, p.abi)));
    }
    Ok(())
}
