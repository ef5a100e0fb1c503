//! Parent half of the user namespace: write the child's uid and gid maps.
//!
//! A single mapping (the caller's ids seen as the chosen ids inside) is written directly,
//! with setgroups denied first, as the kernel requires of an unprivileged writer. A whole
//! subordinate range goes through the setuid helpers newuidmap/newgidmap from the uidmap
//! package, which check /etc/subuid and /etc/subgid; they are started with std::process.

use crate::error::{Error, Result};
use crate::policy::{IdMap, Ids};
use nix::unistd::Pid;
use std::process::Command;

fn write_proc(pid: Pid, file: &str, contents: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, contents).map_err(|e| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
        let mut err = Error::sys(format!("write({path}, {:?})", contents.trim_end()), errno);
        if let Error::Sys { fix, .. } = &mut err {
            *fix = "the host restricts user namespaces; run 'ward check' for the fix".into();
        }
        err
    })
}

fn helper(name: &str, pid: Pid, maps: &[u32]) -> Result<()> {
    let path = crate::probe::find_program(name).ok_or_else(|| {
        Error::host(format!("--map-ranges needs {name}, which is not installed"), "as root: apt-get install uidmap (dnf install shadow-utils on Fedora/RHEL)")
    })?;
    let out = Command::new(&path)
        .arg(pid.to_string())
        .args(maps.iter().map(u32::to_string))
        .env_clear()
        .output()
        .map_err(|e| Error::io(format!("start {}", path.display()), e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::host(
            format!("{name} {pid} {} failed: {}", maps.iter().map(u32::to_string).collect::<Vec<_>>().join(" "), err.trim()),
            "check the caller's lines in /etc/subuid and /etc/subgid ('ward check' shows them)",
        ));
    }
    Ok(())
}

/// Write the maps of the child `pid` (still waiting for `Go`).
pub fn write_maps(pid: Pid, ids: &Ids) -> Result<()> {
    match &ids.map {
        IdMap::Single => {
            write_proc(pid, "setgroups", "deny")?;
            write_proc(pid, "uid_map", &format!("{} {} 1\n", ids.inside_uid, ids.outside_uid))?;
            write_proc(pid, "gid_map", &format!("{} {} 1\n", ids.inside_gid, ids.outside_gid))
        }
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count } => {
            helper("newuidmap", pid, &[0, ids.outside_uid, 1, 1, *uid_start, *uid_count])?;
            helper("newgidmap", pid, &[0, ids.outside_gid, 1, 1, *gid_start, *gid_count])
        }
    }
}
