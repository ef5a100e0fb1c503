//! The program's stdio files named on the host (`ward run --stdin/--stdout/--stderr`),
//! opened by the launcher with the caller's rights before clone; the program's process puts
//! them on 0, 1 and 2. (isolate's `-i/-o/-r` name files inside the sandbox: the program's
//! process opens those itself, see `child::program::process::stdio_inside`.)
//!
//! What a previous run could have planted is never followed: a path that enters a directory
//! the sandbox can write (a read-write bind, the work dir) is opened beneath that directory
//! with no symbolic link allowed (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), without
//! blocking on a FIFO, and only as a regular file. A regular stdin file the caller could
//! write is fed through a sealed private copy (a memfd), so the program cannot reopen
//! /proc/self/fd/0 for writing and change the caller's file.

use crate::error::{Error, Result, StdioError};
use crate::policy::Stdio;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, OpenHow, ResolveFlag, SealFlag, fcntl, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub fn open(p: &Stdio) -> Result<[Option<OwnedFd>; 3]> {
    if p.inside {
        // opened in the sandbox's view by the program's process; only 2>&1 without a
        // stdout file is the launcher's to arrange
        let err = if p.stderr_to_stdout && p.stdout.is_none() { Some(dup_own_stdout()?) } else { None };
        return Ok([None, None, err]);
    }
    let out = |what: &'static str, path: &Path| -> Result<OwnedFd> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOCTTY;
        Ok(open_host(path, flags, &p.writable).map_err(refused(what, path.to_path_buf()))?)
    };
    let stdout = p.stdout.as_deref().map(|x| out("--stdout", x)).transpose()?;
    let stderr = if p.stderr_to_stdout {
        // the same open file as stdout (one offset), or the launcher's own stdout
        Some(match &stdout {
            Some(f) => f.try_clone().map_err(|e| Error::io("duplicate stdout for stderr", e))?,
            None => dup_own_stdout()?,
        })
    } else {
        p.stderr.as_deref().map(|x| out("--stderr", x)).transpose()?
    };
    let stdin = match p.stdin.as_deref() {
        None => None,
        Some(path) => {
            let f = open_host(path, OFlag::O_RDONLY | OFlag::O_NOCTTY, &p.writable).map_err(refused("--stdin", path.to_path_buf()))?;
            Some(private_copy(f).map_err(|errno| StdioError::Copy { path: path.to_path_buf(), errno })?)
        }
    };
    Ok([stdin, stdout, stderr])
}

fn dup_own_stdout() -> Result<OwnedFd> {
    std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| Error::io("duplicate stdout for stderr", e))
}

/// (what went wrong, what to do)
type Refusal = (String, &'static str);

fn refused(option: &'static str, path: PathBuf) -> impl FnOnce(Refusal) -> StdioError {
    move |(why, fix)| StdioError::Refused { option, path, why, fix }
}

/// Open `path` for the caller as described in the module comment.
fn open_host(path: &Path, flags: OFlag, writable: &[PathBuf]) -> std::result::Result<OwnedFd, Refusal> {
    let io = |e: std::io::Error| (e.to_string(), "check that the path exists and that you may open it");
    let abs = std::path::absolute(path).map_err(io)?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Err(("not a file name".into(), "name a file"));
    };
    // Did the kernel's resolution of the path pass through a directory the sandbox can
    // write? Then the rest must be real directories and a real file.
    let mut entered = None;
    // (nothing to check where the sandbox can write no host directory)
    let prefixes: Vec<&Path> = if writable.is_empty() { Vec::new() } else { parent.ancestors().collect() };
    for prefix in prefixes.into_iter().rev() {
        if let Ok(c) = std::fs::canonicalize(prefix) {
            if let Some(r) = writable.iter().find(|r| c.starts_with(r)) {
                entered = Some(r);
                break;
            }
        }
    }
    let Some(root) = entered else {
        let fd = nix::fcntl::open(&abs, flags | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644)).map_err(|e| io(e.into()))?;
        return Ok(fd);
    };
    let planted = |why: &str| (format!("{why} inside {}, which the sandbox can write", root.display()), "name a file outside the sandbox's writable directories, or remove what a previous run left there");
    let real_parent = std::fs::canonicalize(parent).map_err(io)?;
    let Ok(rel) = real_parent.strip_prefix(root) else {
        return Err(planted("the path leads out through a symbolic link"));
    };
    let dir = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| io(e.into()))?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK)
        .mode(if flags.contains(OFlag::O_CREAT) { Mode::from_bits_truncate(0o644) } else { Mode::empty() })
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(&dir, &rel.join(name), how) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(planted("a symbolic link")),
        Err(Errno::ENXIO) => return Err(planted("a FIFO or socket")),
        Err(e) => return Err(io(e.into())),
    };
    let st = fstat(&fd).map_err(|e| io(e.into()))?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err(planted("not a regular file (a FIFO, device or socket)"));
    }
    let fl = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).map_err(|e| io(e.into()))?);
    fcntl(&fd, FcntlArg::F_SETFL(fl - OFlag::O_NONBLOCK)).map_err(|e| io(e.into()))?;
    Ok(fd)
}

/// A regular file the caller could write becomes a sealed memfd with the same contents
/// (read-only for good: writes, growth and shrinking are sealed); anything else is passed on.
fn private_copy(f: OwnedFd) -> nix::Result<OwnedFd> {
    let st = fstat(&f)?;
    let regular = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG;
    if !regular || nix::unistd::access(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f)).as_str(), nix::unistd::AccessFlags::W_OK).is_err() {
        return Ok(f);
    }
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let m = memfd_create(c"ward-stdin", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let (mut src, mut dst) = (File::from(f), File::from(m));
    std::io::copy(&mut src, &mut dst).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))?;
    let m = OwnedFd::from(dst);
    nix::unistd::lseek(&m, 0, nix::unistd::Whence::SeekSet)?;
    fcntl(&m, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL))?;
    Ok(m)
}
