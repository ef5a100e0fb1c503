//! Child half of the user namespace. The launcher (parent half: `idmap`) writes the uid and
//! gid maps; the child arranges to die with the launcher and waits until the maps are there,
//! because every later step needs the capabilities the mapping gives it.

use super::{Fail, Plan, fail};
use crate::sync::{Msg, recv_msg};
use nix::sys::signal::Signal;

pub fn enter(plan: &Plan) -> Result<(), Fail> {
    // If the launcher dies, so does init, and with it (pid namespace) every process inside.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(e, format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)")))?;
    // The launcher may have died before the line above: then its end of the channel is
    // closed and the read below returns EOF, so no orphaned sandbox can go on.
    match recv_msg(plan.chan(), false) {
        Ok(Some(Msg::Go)) => Ok(()),
        Ok(_) => crate::sys::exit_now(super::EXIT_SETUP_FAILED),
        Err(e) => Err(fail(e, format_args!("wait for the id maps"))),
    }?;
    // Init is never dumpable: the program (same uid, no capabilities) cannot ptrace it or
    // open its /proc files.
    nix::sys::prctl::set_dumpable(false).map_err(|e| fail(e, format_args!("prctl(PR_SET_DUMPABLE, 0)")))?;
    Ok(())
}
