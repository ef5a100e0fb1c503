//! ward's integration tests: the real binary, run as an unprivileged user, one suite per
//! mechanism. Each assertion names the exact output, errno or verdict expected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod check;
mod common;
mod escapes;
mod isolation;
mod isolate;
mod landlock;
mod lifecycle;
mod limits;
mod net;
mod process;
mod profiles;
mod run;
mod seccomp;
mod tree;
mod warm;
