//! Child half of process hygiene, in the program's process: session, stdio, rlimits, ids,
//! working directory, fds.

use crate::child::{Fail, Plan, fail};
use crate::policy::ids::MapWriter;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};
use nix::sys::resource::setrlimit;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, dup2_stderr, dup2_stdin, dup2_stdout, setresgid, setresuid, setsid};

pub fn session(plan: &Plan) -> Result<(), Fail> {
    if plan.new_session {
        setsid().map_err(|e| fail(e, format_args!("setsid()")))?;
    }
    umask(Mode::from_bits_truncate(0o022));
    Ok(())
}

/// A warm run's program, its steps that do not depend on the run taken: wait until the
/// launcher says the run is due. It first passes the stdio files it opened then
/// (`Msg::Stdio`, one fd each), then `Go`; anything else, or the launcher's end closing, ends
/// the process. `None` for a fresh run (its files are the plan's).
pub fn until_due(plan: &Plan) -> Result<Option<[Option<OwnedFd>; 3]>, Fail> {
    if !plan.due_by_message {
        return Ok(None);
    }
    let mut files: [Option<OwnedFd>; 3] = [None, None, None];
    loop {
        match crate::sync::recv_msg_fd(plan.chan(), false) {
            Ok(Some((crate::sync::Msg::Go, None))) => return Ok(Some(files)),
            Ok(Some((crate::sync::Msg::Stdio(n @ 0..=2), Some(fd)))) => files[n as usize] = Some(fd),
            Ok(_) => crate::sys::exit_now(crate::child::EXIT_SETUP_FAILED),
            Err(e) => return Err(fail(e, format_args!("wait for the launcher"))),
        }
    }
}

pub fn stdio(files: &[Option<OwnedFd>; 3]) -> Result<(), Fail> {
    for (i, fd) in files.iter().enumerate() {
        let Some(fd) = fd else { continue };
        let r = match i {
            0 => dup2_stdin(fd),
            1 => dup2_stdout(fd),
            _ => dup2_stderr(fd),
        };
        r.map_err(|e| fail(e, format_args!("dup2({}, {i})", fd.as_raw_fd())))?;
    }
    Ok(())
}

/// isolate's -i/-o/-r: open the paths in the sandbox's view, with the program's rights and
/// relative to its directory, as isolate does; only a regular file or a character device
/// (a FIFO would block the run before any limit applies).
pub fn stdio_inside(plan: &Plan) -> Result<(), Fail> {
    let [i, o, e] = &plan.stdio_inside;
    let wr = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
    if let Some(p) = i {
        put(open_inside(p, OFlag::O_RDONLY)?, 0)?;
    }
    if let Some(p) = o {
        let fd = open_inside(p, wr)?;
        if plan.stderr_to_stdout {
            dup2_stderr(&fd).map_err(|e| fail(e, format_args!("dup2(stderr)")))?;
        }
        put(fd, 1)?;
    }
    if let (Some(p), false) = (e, plan.stderr_to_stdout) {
        put(open_inside(p, wr)?, 2)?;
    }
    Ok(())
}

/// Make `fd` the program's fd `n` (kept as is when the open already gave `n`).
fn put(fd: std::os::fd::OwnedFd, n: i32) -> Result<(), Fail> {
    if fd.as_raw_fd() == n {
        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
        return crate::sys::clear_cloexec(n).map_err(|e| fail(e, format_args!("fcntl({n}, F_SETFD)")));
    }
    let r = match n {
        0 => dup2_stdin(&fd),
        1 => dup2_stdout(&fd),
        _ => dup2_stderr(&fd),
    };
    r.map_err(|e| fail(e, format_args!("dup2(-> {n})")))
}

fn open_inside(path: &std::ffi::CStr, flags: OFlag) -> Result<std::os::fd::OwnedFd, Fail> {
    let shown = path.to_str().unwrap_or("?");
    let fd = nix::fcntl::open(path, flags | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
        .map_err(|e| fail(e, format_args!("open({shown}) in the sandbox")))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| fail(e, format_args!("fstat({shown})")))?;
    let kind = st.st_mode & nix::libc::S_IFMT;
    if kind != nix::libc::S_IFREG && kind != nix::libc::S_IFCHR {
        return Err(fail(Errno::EINVAL, format_args!("{shown} is not a regular file or a device")));
    }
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags & OFlag::O_APPEND)).map_err(|e| fail(e, format_args!("fcntl({shown}, F_SETFL)")))?;
    Ok(fd)
}

pub fn rlimits(plan: &Plan) -> Result<(), Fail> {
    // never inherited: no real-time scheduling, no raised priority
    for (r, name) in [(nix::sys::resource::Resource::RLIMIT_RTPRIO, "RTPRIO"), (nix::sys::resource::Resource::RLIMIT_NICE, "NICE")] {
        setrlimit(r, 0, 0).map_err(|e| fail(e, format_args!("setrlimit(RLIMIT_{name}, 0)")))?;
    }
    for (l, v) in &plan.rlimits {
        let v = v.unwrap_or(nix::libc::RLIM_INFINITY);
        setrlimit(l.resource(), v, v).map_err(|e| fail(e, format_args!("setrlimit(RLIMIT_{}, {v})", l.name().to_uppercase())))?;
    }
    Ok(())
}

/// With maps written by the helpers the caller's ids are 0 inside; switch to the requested
/// ids (and drop supplementary groups, which newgidmap allows). With a single mapping the
/// ids already are the requested ones and setgroups is denied; a root caller's init took
/// them already (again here: harmless, and the program's process is sure of them).
pub fn switch_ids(plan: &Plan) -> Result<(), Fail> {
    if plan.ids.writer != MapWriter::Child {
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
                let _ = crate::sys::set_cloexec(fd);
            }
            Ok(())
        }
        Err(e) => Err(fail(e, format_args!("close_range(3, ~0, CLOSE_RANGE_CLOEXEC)"))),
    }
}

