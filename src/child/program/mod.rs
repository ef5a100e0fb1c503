//! What runs in the program's process, forked by init, between fork and execve (the list is
//! `child::program`): process hygiene, capabilities, Landlock, seccomp, exec.

pub mod caps;
pub mod exec;
pub mod landlock;
pub mod process;
pub mod seccomp;
