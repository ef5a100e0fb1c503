//! Capabilities: the program runs with none, even as uid 0 inside. The bounding and ambient
//! sets go first (dropping them needs CAP_SETPCAP), the effective, permitted and inheritable
//! sets and no_new_privs last, so no later exec can gain anything (setuid bits, file caps).

use crate::child::{Fail, fail};
use caps::CapSet;
use nix::errno::Errno;

pub fn drop_bounding() -> Result<(), Fail> {
    crate::sys::drop_bounding_and_ambient().map_err(|e| fail(e, format_args!("prctl(PR_CAPBSET_DROP / PR_CAP_AMBIENT_CLEAR_ALL)")))
}

pub fn drop_all() -> Result<(), Fail> {
    for set in [CapSet::Effective, CapSet::Inheritable, CapSet::Permitted] {
        caps::clear(None, set).map_err(|_| fail(Errno::last(), format_args!("capset({set:?} = {{}})")))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail(e, format_args!("prctl(PR_SET_NO_NEW_PRIVS, 1)")))
}
