//! The library's error type. Every variant renders as one line that names the thing and,
//! where there is one, what the user can do; `main` maps all of them to exit code 125.
//!
//! Two layers: the kinds (`Invalid` input, a `Host` that cannot, a failed `Sys`call, a
//! `Child` step, `Io`), and a typed error per mechanism that can fail on a host (`Cgroup`,
//! `IdMap`, `Net`, `Seccomp`, `Stdio`), whose variants say what failed with its data, so a
//! caller (the front ends, a library user) decides by variant, never by message text.

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

    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    IdMap(#[from] IdMapError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
}

/// The run's cgroup leaf could not be had or set up.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup is required (`option`) and none can be used.
    #[error("{option}: no cgroup can be used: {why}; run where a delegated cgroup v2 subtree exists (systemd-run --user --scope -p Delegate=yes ward ...); 'ward check' shows what is missing")]
    Unavailable { option: &'static str, why: String },
    /// The subtree does not delegate a controller an option needs.
    #[error("{option} needs the {controller} controller, which {} does not delegate; delegate it (Delegate=yes, or a drop-in with Delegate=cpu memory pids)", .subtree.display())]
    ControllerMissing { option: &'static str, controller: &'static str, subtree: std::path::PathBuf },
    /// The controllers could not be enabled in the subtree.
    #[error("cannot enable {controllers} in {}: {why}; run ward alone in a delegated scope: systemd-run --user --scope -p Delegate=yes ward run ...", .subtree.display())]
    Enable { controllers: String, subtree: std::path::PathBuf, why: String },
    /// Creating or writing a cgroup file failed.
    #[error("{what}: {source}")]
    File { what: String, source: std::io::Error },
    /// The kernel has no clone3, so the sandbox cannot be born in its leaf.
    #[error("{option}: the kernel has no clone3 (Linux 5.7+) to start the sandbox in its cgroup; use a newer kernel")]
    NoClone3 { option: &'static str },
}

/// The user namespace's id maps could not be written.
#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("--map-ranges: user {user} (uid {uid}) has no range in {file}; {fix}")]
    NoRange { user: String, uid: u32, file: &'static str, fix: String },
    #[error("--map-ranges needs {helper}, which is not installed; as root: apt-get install uidmap (dnf install shadow-utils on Fedora/RHEL)")]
    HelperMissing { helper: &'static str },
    #[error("{helper} {pid} {maps} failed: {message}; check the caller's lines in /etc/subuid and /etc/subgid ('ward check' shows them)")]
    HelperFailed { helper: &'static str, pid: i32, maps: String, message: String },
    #[error("start {helper}: {source}")]
    HelperStart { helper: String, source: std::io::Error },
    /// A root caller's launcher writing the maps itself.
    #[error("write {path} ({map}): {source}")]
    Write { path: String, map: String, source: std::io::Error },
}

/// User-mode networking could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("--net {helper}: {why}; as root: chmod 0666 /dev/net/tun (Debian's default; 'ward check' shows it)")]
    Tun { helper: &'static str, why: String },
    #[error("--publish {host_ip}:{host_port}:{port}: {why}; choose a free host port")]
    Port { host_ip: std::net::IpAddr, host_port: u16, port: u16, why: String },
    #[error("--net {helper}: cannot start {}: {why}; {fix}", .path.display())]
    Start { helper: &'static str, path: std::path::PathBuf, why: String, fix: &'static str },
    #[error("--net {helper}: the helper did not get ready within 10 s; run it by hand to see why; 'ward check' lists what the host allows")]
    NotReady { helper: &'static str },
    #[error("--net {helper}: the helper failed: {message}; see the helper's message above")]
    Failed { helper: &'static str, message: String },
    #[error("{what}: {source}")]
    Api { what: String, source: std::io::Error },
}

/// libseccomp could not build the filter.
#[derive(Debug, thiserror::Error)]
#[error("seccomp: {what}: {message}; check that libseccomp (libseccomp2) is installed and recent")]
pub struct SeccompError {
    pub what: String,
    pub message: String,
}

/// A host-side stdio file was refused or could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// `option` (`--stdin`, `--stdout`, `--stderr`) names `path`, which cannot be used.
    #[error("{option} {}: {why}; {fix}", .path.display())]
    Refused { option: &'static str, path: std::path::PathBuf, why: String, fix: &'static str },
    #[error("--stdin {}: copy into a private memfd => {}", .path.display(), errno_name(*.errno))]
    Copy { path: std::path::PathBuf, errno: Errno },
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
