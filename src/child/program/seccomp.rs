//! Child half of seccomp: load the BPF the launcher compiled, as the very last step before
//! exec (nothing after it may need a denied call), and hand the notification listener to the
//! launcher, which answers denied calls from outside the sandbox.

use crate::child::{Fail, Plan, fail};
use crate::sync::{Msg, send_msg_fd};
use std::os::fd::AsFd;

pub fn load(plan: &Plan) -> Result<(), Fail> {
    let Some(bpf) = &plan.seccomp_bpf else { return Ok(()) };
    let listener = crate::sys::seccomp_load_listener(bpf)
        .map_err(|e| fail(e, format_args!("seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER, {} instructions)", bpf.len() / 8)))?;
    send_msg_fd(plan.chan(), &Msg::Listener, listener.as_fd()).map_err(|e| fail(e, format_args!("send the seccomp listener to the launcher")))
}
