//! Ids, declared: which uid and gid the program runs as inside, how the caller's ids are
//! mapped (a single mapping, or whole subordinate ranges), and the /etc/passwd and /etc/group
//! the sandbox shows. The maps are written by the child (single) or by the launcher through
//! newuidmap/newgidmap (ranges).

use crate::error::{Error, IdMapError, Result};
use crate::host::Host;
use crate::request::Process;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMap {
    /// The caller's uid/gid appear as `inside_uid`/`inside_gid`; setgroups is denied.
    Single,
    /// Whole subordinate ranges: for an ordinary caller through newuidmap/newgidmap, the
    /// caller is 0 inside and ids 1..=count are the range starting at `start`; for root,
    /// ids 0..count are the range and the caller is not mapped at all.
    Ranges { uid_start: u32, uid_count: u32, gid_start: u32, gid_count: u32 },
}

/// Who writes the maps into the child's /proc/PID/{uid,gid}_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapWriter {
    /// The child itself (an unprivileged process may map its own ids once setgroups is
    /// denied).
    Child,
    /// The setuid helpers newuidmap/newgidmap, which check /etc/subuid and /etc/subgid.
    Helpers,
    /// The launcher, because the caller is root: it may write any map, and it writes one in
    /// which nothing is host uid or gid 0. The child then drops root's groups and takes a
    /// mapped id before it builds the root.
    Launcher,
}

/// One line of a map: `inside outside count`.
pub type MapLine = [u32; 3];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// The caller's ids on the host.
    pub caller_uid: u32,
    pub caller_gid: u32,
    /// The host ids the program's ids are (what files it creates are owned by).
    pub outside_uid: u32,
    pub outside_gid: u32,
    /// The ids the program runs as.
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub map: IdMap,
    pub writer: MapWriter,
    pub uid_lines: Vec<MapLine>,
    pub gid_lines: Vec<MapLine>,
}

impl Ids {
    /// ward's own processes in the sandbox's user namespace (init, a warm sandbox's keeper)
    /// run as the program's uid, so RLIMIT_NPROC there counts them: true unless the helpers
    /// wrote whole ranges and the program's uid is not 0 (ward's processes are 0 then).
    pub fn ward_runs_as_program_uid(&self) -> bool {
        self.writer != MapWriter::Helpers || self.inside_uid == 0
    }
}

/// The host id a root caller's program runs as when nothing else is asked: nobody/nogroup.
pub const ROOT_CALLER_ID: u32 = 65534;

pub fn build(p: &Process, host: &Host) -> Result<Ids> {
    let root = host.uid == 0;
    let map = if p.map_ranges.unwrap_or(false) {
        let no_range = |file: &'static str, fix: String| IdMapError::NoRange { user: host.user_name.clone(), uid: host.uid, file, fix };
        let (uid_start, uid_count) =
            host.subuid.ok_or_else(|| no_range("/etc/subuid", format!("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}", host.user_name)))?;
        let (gid_start, gid_count) = host.subgid.ok_or_else(|| no_range("/etc/subgid", format!("as root: usermod --add-subgids 100000-165535 {}", host.user_name)))?;
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count }
    } else {
        IdMap::Single
    };
    let (inside_uid, inside_gid) = match &map {
        IdMap::Single => (p.uid.unwrap_or(if root { 0 } else { host.uid }), p.gid.unwrap_or(if root { 0 } else { host.gid })),
        IdMap::Ranges { uid_count, gid_count, .. } => {
            let (u, g) = (p.uid.unwrap_or(0), p.gid.unwrap_or(0));
            // an ordinary caller's range is 1..=count (0 is the caller); root's is 0..count
            let (umax, gmax) = if root { (uid_count.saturating_sub(1), gid_count.saturating_sub(1)) } else { (*uid_count, *gid_count) };
            if u > umax {
                return Err(Error::invalid(format!("--uid {u}: outside the mapped range 0..={umax}"), "choose a smaller uid or ask for a larger subuid range"));
            }
            if g > gmax {
                return Err(Error::invalid(format!("--gid {g}: outside the mapped range 0..={gmax}"), "choose a smaller gid or ask for a larger subgid range"));
            }
            (u, g)
        }
    };
    for (what, v) in [("--uid", inside_uid), ("--gid", inside_gid)] {
        if v == u32::MAX {
            return Err(Error::invalid(format!("{what} {v}: not a valid id"), "use a value below 4294967295"));
        }
    }
    let (writer, uid_lines, gid_lines) = match (&map, root) {
        (IdMap::Single, false) => (MapWriter::Child, vec![[inside_uid, host.uid, 1]], vec![[inside_gid, host.gid, 1]]),
        (IdMap::Single, true) => {
            let (hu, hg) = p.host_ids.unwrap_or((ROOT_CALLER_ID, ROOT_CALLER_ID));
            (MapWriter::Launcher, vec![[inside_uid, hu, 1]], vec![[inside_gid, hg, 1]])
        }
        (IdMap::Ranges { uid_start, uid_count, gid_start, gid_count }, false) => {
            (MapWriter::Helpers, vec![[0, host.uid, 1], [1, *uid_start, *uid_count]], vec![[0, host.gid, 1], [1, *gid_start, *gid_count]])
        }
        (IdMap::Ranges { uid_start, uid_count, gid_start, gid_count }, true) => (MapWriter::Launcher, vec![[0, *uid_start, *uid_count]], vec![[0, *gid_start, *gid_count]]),
    };
    let outside = |lines: &[MapLine], id: u32| lines.iter().find(|[i, _, n]| id >= *i && id - i < *n).map(|[i, o, _]| o + (id - i));
    let (outside_uid, outside_gid) = (outside(&uid_lines, inside_uid).unwrap_or(u32::MAX), outside(&gid_lines, inside_gid).unwrap_or(u32::MAX));
    if root {
        // The class this closes: a root caller's program must never be host root, which
        // passes owner checks on /proc/sys and the like even without capabilities.
        for [_, o, n] in uid_lines.iter().chain(&gid_lines) {
            if *o == 0 || (*n > 0 && o.checked_add(n - 1).is_none()) {
                return Err(Error::invalid(
                    format!("running as root, the sandbox's ids would include host id 0 (map {o} {n})"),
                    "give root a subordinate range that does not start at 0 in /etc/subuid and /etc/subgid",
                ));
            }
        }
    }
    Ok(Ids { caller_uid: host.uid, caller_gid: host.gid, outside_uid, outside_gid, inside_uid, inside_gid, map, writer, uid_lines, gid_lines })
}

/// The map as written to /proc/PID/uid_map or gid_map.
pub fn map_text(lines: &[MapLine]) -> String {
    lines.iter().map(|[i, o, n]| format!("{i} {o} {n}\n")).collect()
}

/// The sandbox's /etc/passwd: root, the program's user, nobody.
pub fn passwd(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:0:root:/root:/bin/sh\n");
    if ids.inside_uid != 0 && ids.inside_uid != 65534 {
        let name = if ids.writer != MapWriter::Launcher && ids.inside_uid == host.uid { host.user_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:{}:{name}:/tmp:/bin/sh\n", ids.inside_uid, ids.inside_gid));
    }
    s.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    s
}

/// The sandbox's /etc/group: root, the program's group, nogroup.
pub fn group(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:\n");
    if ids.inside_gid != 0 && ids.inside_gid != 65534 {
        let name = if ids.writer != MapWriter::Launcher && ids.inside_gid == host.gid { host.group_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:\n", ids.inside_gid));
    }
    s.push_str("nogroup:x:65534:\n");
    s
}
