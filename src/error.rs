//! The library's error type. Every variant renders as one line that names the thing and,
//! where there is one, what the user can do; `main` maps all of them to exit code 125.

use crate::sync::Stage;
use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the caller: an option, a path, a profile value.
    #[error("{what}{}", fix_suffix(.fix))]
    Invalid { what: String, fix: String },

    /// The host cannot run the sandbox as asked (user namespaces disabled, helpers missing).
    #[error("{what}{}", fix_suffix(.fix))]
    Host { what: String, fix: String },

    /// A system call in the launcher failed.
    #[error("{call} => {}{}", errno_name(*.errno), fix_suffix(.fix))]
    Sys { call: String, errno: Errno, fix: String },

    /// A step in the sandboxed child failed before the program started.
    #[error("sandbox setup failed at step '{}': {what} => {}{}", .stage.name(), errno_name(*.errno), fix_suffix(.fix))]
    Child { stage: Stage, errno: Errno, what: String, fix: String },

    /// Writing the verdict or an output file failed.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

fn fix_suffix(fix: &str) -> String {
    if fix.is_empty() { String::new() } else { format!("; {fix}") }
}

/// `EPERM (Operation not permitted)`.
pub fn errno_name(e: Errno) -> String {
    format!("{e:?} ({})", e.desc())
}

impl Error {
    pub fn invalid(what: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::Invalid { what: what.into(), fix: fix.into() }
    }
    pub fn host(what: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::Host { what: what.into(), fix: fix.into() }
    }
    pub fn sys(call: impl Into<String>, errno: Errno) -> Error {
        Error::Sys { call: call.into(), errno, fix: String::new() }
    }
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
