//! Child half of the network namespace: the new namespace has only `lo`, which starts down;
//! bring it up so programs can use 127.0.0.1 among themselves. With user-mode networking the
//! launcher's helper (`net`) adds an interface from outside; init waits until the launcher
//! says it is ready, so the program never starts without its network.

use crate::child::{Fail, Plan, fail};
use crate::sync::Msg;

pub fn configure(plan: &Plan) -> Result<(), Fail> {
    crate::sys::loopback_up().map_err(|e| fail(e, format_args!("ioctl(lo, SIOCSIFFLAGS, IFF_UP)")))?;
    if plan.wait_for_net {
        crate::child::wait_for(plan, |m| matches!(m, Msg::NetReady), "wait for the network helper")?;
    }
    Ok(())
}
