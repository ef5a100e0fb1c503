//! ward's integration tests: the real binary, run as an unprivileged user, one suite per
//! mechanism. Each assertion names the exact output, errno or verdict expected.

mod bad_input;
mod check;
mod common;
mod isolation;
mod lifecycle;
mod process;
mod run;
mod tree;
