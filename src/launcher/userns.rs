//! Parent half of the user namespace: map whole subordinate ranges into the child's user
//! namespace through the setuid helpers newuidmap/newgidmap from the uidmap package, which
//! check /etc/subuid and /etc/subgid; they are started with std::process. (A single mapping
//! needs no helper: the child writes it itself, see `child::init::userns`.)

use crate::error::{Error, Result};
use crate::policy::ids::{IdMap, Ids};
use nix::unistd::Pid;
use std::process::Command;

fn helper(name: &str, pid: Pid, maps: &[u32]) -> Result<()> {
    let path = crate::host::probe::find_program(name).ok_or_else(|| {
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

/// With --map-ranges, write the maps of the child `pid` (still waiting for `Go`) and return
/// true; with a single mapping there is nothing to do here (false).
pub fn write_maps(pid: Pid, ids: &Ids) -> Result<bool> {
    match &ids.map {
        IdMap::Single => Ok(false),
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count } => {
            helper("newuidmap", pid, &[0, ids.outside_uid, 1, 1, *uid_start, *uid_count])?;
            helper("newgidmap", pid, &[0, ids.outside_gid, 1, 1, *gid_start, *gid_count])?;
            Ok(true)
        }
    }
}
