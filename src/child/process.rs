//! Child half of process hygiene, in the program's process: hostname (in init), session,
//! stdio, rlimits, ids, working directory, fds, and finally execve along the PATH candidates
//! the launcher computed.

use super::{Fail, Plan, fail};
use crate::policy::{IdMap, Limit};
use nix::errno::Errno;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, dup2_stderr, dup2_stdin, dup2_stdout, setresgid, setresuid, setsid};

pub fn set_hostname(plan: &Plan) -> Result<(), Fail> {
    nix::unistd::sethostname(std::ffi::OsStr::new(plan.hostname.to_str().unwrap_or("ward")))
        .map_err(|e| fail(e, format_args!("sethostname({})", plan.hostname.to_str().unwrap_or("?"))))
}

/// A fresh, empty session keyring: the caller's keys are never visible (and seccomp denies
/// the keyring calls anyway).
pub fn keyring() -> Result<(), Fail> {
    match crate::sys::join_new_session_keyring() {
        // A kernel without keys has no keys to leak.
        Ok(()) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(fail(e, format_args!("keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)"))),
    }
}

pub fn session(plan: &Plan) -> Result<(), Fail> {
    if plan.new_session {
        setsid().map_err(|e| fail(e, format_args!("setsid()")))?;
    }
    umask(Mode::from_bits_truncate(0o022));
    Ok(())
}

pub fn stdio(plan: &Plan) -> Result<(), Fail> {
    for (i, fd) in plan.stdio.iter().enumerate() {
        let Some(fd) = fd else { continue };
        let b = crate::sys::borrow_fd(*fd);
        let r = match i {
            0 => dup2_stdin(b),
            1 => dup2_stdout(b),
            _ => dup2_stderr(b),
        };
        r.map_err(|e| fail(e, format_args!("dup2({fd}, {i})")))?;
    }
    Ok(())
}

fn resource(l: Limit) -> Resource {
    match l {
        Limit::As => Resource::RLIMIT_AS,
        Limit::Fsize => Resource::RLIMIT_FSIZE,
        Limit::Nofile => Resource::RLIMIT_NOFILE,
        Limit::Nproc => Resource::RLIMIT_NPROC,
        Limit::Cpu => Resource::RLIMIT_CPU,
        Limit::Stack => Resource::RLIMIT_STACK,
        Limit::Core => Resource::RLIMIT_CORE,
    }
}

pub fn rlimits(plan: &Plan) -> Result<(), Fail> {
    for (l, v) in &plan.rlimits {
        let v = v.unwrap_or(nix::libc::RLIM_INFINITY);
        setrlimit(resource(*l), v, v).map_err(|e| fail(e, format_args!("setrlimit(RLIMIT_{}, {v})", l.name().to_uppercase())))?;
    }
    Ok(())
}

/// With --map-ranges the launcher's ids are 0 inside; switch to the requested ids (and drop
/// supplementary groups, which newgidmap allows). With a single mapping the ids already are
/// the requested ones and setgroups is denied.
pub fn switch_ids(plan: &Plan) -> Result<(), Fail> {
    if let IdMap::Ranges { .. } = plan.ids.map {
        let (u, g) = (plan.ids.inside_uid, plan.ids.inside_gid);
        nix::unistd::setgroups(&[]).map_err(|e| fail(e, format_args!("setgroups([])")))?;
        setresgid(Gid::from_raw(g), Gid::from_raw(g), Gid::from_raw(g)).map_err(|e| fail(e, format_args!("setresgid({g})")))?;
        setresuid(Uid::from_raw(u), Uid::from_raw(u), Uid::from_raw(u)).map_err(|e| fail(e, format_args!("setresuid({u})")))?;
    }
    Ok(())
}

pub fn chdir(plan: &Plan) -> Result<(), Fail> {
    nix::unistd::chdir(plan.chdir.as_c_str()).map_err(|e| fail(e, format_args!("chdir({})", plan.chdir.to_str().unwrap_or("?"))))
}

pub fn close_fds() -> Result<(), Fail> {
    match crate::sys::close_range_cloexec(3) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            // Before Linux 5.11: mark each open fd close-on-exec by hand.
            let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
                .map_err(|e| fail(Errno::from_raw(e.raw_os_error().unwrap_or(0)), format_args!("read /proc/self/fd")))?
                .filter_map(|d| d.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect();
            for fd in fds {
                let b = crate::sys::borrow_fd(fd);
                let _ = nix::fcntl::fcntl(b, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
            }
            Ok(())
        }
        Err(e) => Err(fail(e, format_args!("close_range(3, ~0, CLOSE_RANGE_CLOEXEC)"))),
    }
}

/// execve each candidate in turn, like execvp: ENOENT/ENOTDIR go on to the next; the first
/// other error (EACCES, ENOEXEC...) is remembered. Returns only on failure.
pub fn exec(plan: &Plan) -> Fail {
    let mut first_other: Option<Errno> = None;
    for cand in &plan.candidates {
        let e = match nix::unistd::execve(cand, &plan.argv, &plan.envp) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        match e {
            Errno::ENOENT | Errno::ENOTDIR => {}
            other => {
                if first_other.is_none() {
                    first_other = Some(other);
                }
            }
        }
    }
    let prog = plan.argv.first().and_then(|a| a.to_str().ok()).unwrap_or("?");
    fail(first_other.unwrap_or(Errno::ENOENT), format_args!("execve({prog})"))
}
