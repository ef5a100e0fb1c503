//! Child half of the user namespace. A single mapping (the caller's ids seen as the chosen
//! ids inside) is written by the child itself, as `unshare -r` does: an unprivileged process
//! may map its own ids in the namespace it created, once setgroups is denied. Whole
//! subordinate ranges are written by the launcher through newuidmap/newgidmap (parent half:
//! `launcher::userns`), and the child waits for its `Go`. Either way the child first arranges to die
//! with the launcher, because every later step runs with the namespace's capabilities.

use crate::child::{Fail, Plan, fail};
use crate::policy::ids::MapWriter;
use nix::unistd::{Gid, Uid, setresgid, setresuid};
use crate::sync::Msg;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use std::ffi::CStr;

fn write_file(path: &CStr, contents: &CStr) -> Result<(), Fail> {
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| fail(e, format_args!("open({})", path.to_str().unwrap_or("?"))))?;
    nix::unistd::write(&fd, contents.to_bytes())
        .map_err(|e| fail(e, format_args!("write({}, {:?})", path.to_str().unwrap_or("?"), contents.to_str().unwrap_or("?").trim_end())))?;
    Ok(())
}

pub fn enter(plan: &Plan) -> Result<(), Fail> {
    // If the launcher dies, so does init, and with it (pid namespace) every process inside.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(e, format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)")))?;
    match plan.ids.writer {
        MapWriter::Child => {
            // The launcher may have died before the line above: then its end of the channel
            // is closed (POLLHUP) and no orphaned sandbox may go on.
            exit_if_launcher_gone(plan);
            write_own_maps(plan)?;
        }
        // EOF: the launcher died before writing the maps
        MapWriter::Helpers | MapWriter::Launcher => crate::child::wait_for(plan, |m| matches!(m, Msg::Go), "wait for the id maps")?,
    }
    Ok(())
}

/// The maps of the namespace this process created, written by itself: its own ids only, once
/// setgroups is denied (as `unshare -r` does).
fn write_own_maps(plan: &Plan) -> Result<(), Fail> {
    write_file(c"/proc/self/setgroups", c"deny")?;
    write_file(c"/proc/self/uid_map", &plan.uid_map)?;
    write_file(c"/proc/self/gid_map", &plan.gid_map)
}

/// A warm run: die with the launcher, which may have died before this was set (then its end
/// of the channel is closed). Its ids are the keeper's; in a user namespace of its own (a
/// batch's pipelined run) they map to themselves there, written by the joiner (this
/// process's /proc is the keeper's until its own is mounted): wait for the launcher's `Go`.
pub fn enter_warm(plan: &Plan) -> Result<(), Fail> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(e, format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)")))?;
    exit_if_launcher_gone(plan);
    if plan.own_userns {
        crate::child::wait_for(plan, |m| matches!(m, Msg::Go), "wait for the id maps")?;
    }
    Ok(())
}

/// A root caller only, after the bind sources are open (with root's rights to reach them):
/// drop root's groups and take the program's ids before the root is built.
pub fn take_ids(plan: &Plan) -> Result<(), Fail> {
    if plan.ids.writer == MapWriter::Launcher {
        // A root caller: this process is still host uid 0 (unmapped here) with root's
        // supplementary groups, and the tree cannot be built by an unmapped id. Take the
        // program's ids now; the capabilities in this namespace stay (the namespace's root
        // is not host 0, so the kernel's setuid rules do not clear them).
        let (u, g) = (plan.ids.inside_uid, plan.ids.inside_gid);
        nix::unistd::setgroups(&[]).map_err(|e| fail(e, format_args!("setgroups([])")))?;
        setresgid(Gid::from_raw(g), Gid::from_raw(g), Gid::from_raw(g)).map_err(|e| fail(e, format_args!("setresgid({g})")))?;
        setresuid(Uid::from_raw(u), Uid::from_raw(u), Uid::from_raw(u)).map_err(|e| fail(e, format_args!("setresuid({u})")))?;
        // changing ids cleared the parent-death signal: set it again, then check that the
        // launcher did not die in between
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(e, format_args!("prctl(PR_SET_PDEATHSIG, SIGKILL)")))?;
        exit_if_launcher_gone(plan);
    }
    Ok(())
}

fn exit_if_launcher_gone(plan: &Plan) {
    let mut fds = [PollFd::new(plan.chan(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::ZERO);
    if fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLHUP)) {
        crate::sys::exit_now(crate::child::EXIT_SETUP_FAILED);
    }
}
