//! Child half of the network namespace: the new namespace has only `lo`, which starts down;
//! bring it up so programs can use 127.0.0.1 among themselves. Nothing else is reachable.

use super::{Fail, fail};

pub fn configure() -> Result<(), Fail> {
    crate::sys::loopback_up().map_err(|e| fail(e, format_args!("ioctl(lo, SIOCSIFFLAGS, IFF_UP)")))
}
