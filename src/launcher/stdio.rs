//! The program's stdio files, opened by the launcher with the caller's rights before clone
//! (`--stdin`, `--stdout`, `--stderr`); the program's process puts them on 0, 1 and 2.

use crate::error::{Error, Result};
use crate::policy::Stdio;
use nix::libc;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn open(p: &Stdio) -> Result<[Option<OwnedFd>; 3]> {
    let open_in = |path: &Path| {
        File::open(path).map_err(|e| Error::invalid(format!("--stdin {}: {e}", path.display()), "check that the file exists and that you can read it"))
    };
    let open_out = |what: &str, path: &Path| {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| Error::invalid(format!("{what} {}: {e}", path.display()), "check that the directory exists and that you can write there"))
    };
    let stdout = p.stdout.as_deref().map(|x| open_out("--stdout", x)).transpose()?;
    let stderr = if p.stderr_to_stdout {
        // the same open file as stdout (one offset), or the launcher's own stdout
        let dup = match &stdout {
            Some(f) => f.try_clone(),
            None => std::io::stdout().as_fd().try_clone_to_owned().map(File::from),
        };
        Some(dup.map_err(|e| Error::io("duplicate stdout for stderr", e))?)
    } else {
        p.stderr.as_deref().map(|x| open_out("--stderr", x)).transpose()?
    };
    let stdin = p.stdin.as_deref().map(open_in).transpose()?;
    Ok([stdin.map(OwnedFd::from), stdout.map(OwnedFd::from), stderr.map(OwnedFd::from)])
}
