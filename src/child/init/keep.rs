//! Child half of a warm sandbox's keeper: once the namespaces and the tree are built, hold
//! them. The keeper runs no program and serves no request: runs join its namespaces from
//! outside (`launcher::warm`). It is pid 1 of a pid namespace of its own, so no run sees or
//! signals it, and it ends by itself: an attached keeper (a batch, a `Sandbox`) when its
//! launcher's end of the channel closes; a detached one (an isolate box) when its state file
//! is removed or was not touched for the idle time.

use crate::child::{Fail, Plan, fail};
use crate::sync::{Msg, send_msg};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::{AsFd, OwnedFd};

/// Keep 0-2 on /dev/null and nothing else of the starter but the channel and the state
/// file: a keeper that outlives a command must not hold its pipes open.
pub fn detach(plan: &Plan, watch: Option<&OwnedFd>) -> Result<(), Fail> {
    let null = nix::fcntl::open(c"/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()).map_err(|e| fail(e, format_args!("open(/dev/null)")))?;
    for n in 0..3 {
        let r = match n {
            0 => nix::unistd::dup2_stdin(&null),
            1 => nix::unistd::dup2_stdout(&null),
            _ => nix::unistd::dup2_stderr(&null),
        };
        r.map_err(|e| fail(e, format_args!("dup2(/dev/null, {n})")))?;
    }
    drop(null);
    crate::sys::close_all_except([plan.chan(), watch.map_or(plan.chan(), |w| w.as_fd())]).map_err(|e| fail(e, format_args!("close_range")))?;
    let _ = nix::sys::prctl::set_name(c"ward-keeper");
    Ok(())
}

pub fn hold(plan: &Plan, watch: Option<&OwnedFd>, idle_s: u64) -> ! {
    if watch.is_some() {
        // detached: outlive the starter, which exits once it has recorded this keeper
        if let Err(e) = nix::sys::prctl::set_pdeathsig(None) {
            crate::child::report(plan, crate::sync::Stage::Init, &fail(e, format_args!("prctl(PR_SET_PDEATHSIG, 0)")));
            crate::sys::exit_now(crate::child::EXIT_SETUP_FAILED);
        }
    }
    let _ = send_msg(plan.chan(), &Msg::Started);
    match watch {
        None => loop {
            let mut fds = [PollFd::new(plan.chan(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) if fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)) => crate::sys::exit_now(0),
                Ok(_) => {
                    // nothing is ever sent to a keeper: drain and go on
                    let _ = crate::sync::recv_msg(plan.chan(), true);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => crate::sys::exit_now(0),
            }
        },
        Some(w) => loop {
            let _ = nix::unistd::sleep(idle_s.clamp(1, 5) as u32);
            let Ok(st) = nix::sys::stat::fstat(w) else { crate::sys::exit_now(0) };
            let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map(|t| t.tv_sec()).unwrap_or(0);
            // removed (the box was cleaned up) or abandoned
            if st.st_nlink == 0 || now.saturating_sub(st.st_mtime) > idle_s as i64 {
                crate::sys::exit_now(0);
            }
        },
    }
}
