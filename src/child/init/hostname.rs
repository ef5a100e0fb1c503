//! Child half of the uts namespace and the keyring, in init: the sandbox's host name, and a
//! fresh session keyring.

use crate::child::{Fail, Plan, fail};

pub fn set_hostname(plan: &Plan) -> Result<(), Fail> {
    nix::unistd::sethostname(std::ffi::OsStr::new(plan.hostname.to_str().unwrap_or("ward")))
        .map_err(|e| fail(e, format_args!("sethostname({})", plan.hostname.to_str().unwrap_or("?"))))
}

/// A fresh, empty session keyring: the caller's keys are never visible (and seccomp denies
/// the keyring calls anyway).
pub fn keyring() -> Result<(), Fail> {
    match crate::sys::join_new_session_keyring() {
        // A kernel without keys has no keys to leak.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        // A seccomp filter already on this process (a container runtime's default, e.g.
        // Docker's) denies the keyring calls: it stays on every process of the sandbox, so no
        // keyring is reachable from it. Only when it denies keyctl as a whole, not one operation.
        Err(nix::errno::Errno::EPERM) if crate::sys::keyctl_filtered() => Ok(()),
        Err(e) => Err(fail(e, format_args!("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"))),
    }
}

