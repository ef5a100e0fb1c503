//! Parent half of the user namespace: write the child's id maps when the child cannot. Whole
//! subordinate ranges go through the setuid helpers newuidmap/newgidmap from the uidmap
//! package, which check /etc/subuid and /etc/subgid (started with std::process); a root
//! caller's maps, in which nothing is host id 0, the launcher writes itself. (An ordinary
//! caller's single mapping needs neither: the child writes it, see `child::init::userns`.)

use crate::error::{IdMapError, Result};
use crate::policy::ids::{Ids, MapWriter, map_text};
use nix::unistd::Pid;
use std::process::Command;

fn helper(name: &'static str, pid: Pid, maps: &[u32]) -> Result<()> {
    let path = crate::host::probe::find_program(name).ok_or(IdMapError::HelperMissing { helper: name })?;
    let out = Command::new(&path)
        .arg(pid.to_string())
        .args(maps.iter().map(u32::to_string))
        .env_clear()
        .output()
        .map_err(|e| IdMapError::HelperStart { helper: path.display().to_string(), source: e })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let maps = maps.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        return Err(IdMapError::HelperFailed { helper: name, pid: pid.as_raw(), maps, message }.into());
    }
    Ok(())
}

/// Write the maps of the child `pid` (still waiting for `Go`) when the child does not write
/// them itself, and return true; false when it does (a single mapping, ordinary caller).
pub fn write_maps(pid: Pid, ids: &Ids) -> Result<bool> {
    let flat = |lines: &[[u32; 3]]| lines.iter().flatten().copied().collect::<Vec<u32>>();
    match ids.writer {
        MapWriter::Child => Ok(false),
        MapWriter::Helpers => {
            helper("newuidmap", pid, &flat(&ids.uid_lines))?;
            helper("newgidmap", pid, &flat(&ids.gid_lines))?;
            Ok(true)
        }
        MapWriter::Launcher => {
            // root may write any map; setgroups stays allowed so the child can drop root's
            // supplementary groups (the child does, before anything else)
            for (file, lines) in [("uid_map", &ids.uid_lines), ("gid_map", &ids.gid_lines)] {
                let path = format!("/proc/{pid}/{file}");
                std::fs::write(&path, map_text(lines)).map_err(|e| IdMapError::Write { map: map_text(lines).trim_end().to_string(), path: path.clone(), source: e })?;
            }
            Ok(true)
        }
    }
}
