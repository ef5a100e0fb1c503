//! Ids, declared: which uid and gid the program runs as inside, how the caller's ids are
//! mapped (a single mapping, or whole subordinate ranges), and the /etc/passwd and /etc/group
//! the sandbox shows. The maps are written by the child (single) or by the launcher through
//! newuidmap/newgidmap (ranges).

use crate::error::{Error, Result};
use crate::host::Host;
use crate::request::Process;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMap {
    /// The caller's uid/gid appear as `inside_uid`/`inside_gid`; setgroups is denied.
    Single,
    /// Through newuidmap/newgidmap: the caller is 0 inside, and ids 1..=count are the
    /// subordinate range starting at `start`.
    Ranges { uid_start: u32, uid_count: u32, gid_start: u32, gid_count: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub outside_uid: u32,
    pub outside_gid: u32,
    /// The ids the program runs as.
    pub inside_uid: u32,
    pub inside_gid: u32,
    pub map: IdMap,
}

pub fn build(p: &Process, host: &Host) -> Result<Ids> {
    let map = if p.map_ranges.unwrap_or(false) {
        let (uid_start, uid_count) = host.subuid.ok_or_else(|| {
            Error::host(
                format!("--map-ranges: user {} (uid {}) has no range in /etc/subuid", host.user_name, host.uid),
                format!("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}", host.user_name),
            )
        })?;
        let (gid_start, gid_count) = host.subgid.ok_or_else(|| {
            Error::host(
                format!("--map-ranges: user {} (uid {}) has no range in /etc/subgid", host.user_name, host.uid),
                format!("as root: usermod --add-subgids 100000-165535 {}", host.user_name),
            )
        })?;
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count }
    } else {
        IdMap::Single
    };
    let (inside_uid, inside_gid) = match &map {
        IdMap::Single => (p.uid.unwrap_or(host.uid), p.gid.unwrap_or(host.gid)),
        IdMap::Ranges { uid_count, gid_count, .. } => {
            let (u, g) = (p.uid.unwrap_or(0), p.gid.unwrap_or(0));
            if u > *uid_count {
                return Err(Error::invalid(format!("--uid {u}: outside the mapped range 0..={uid_count}"), "choose a smaller uid or ask for a larger subuid range"));
            }
            if g > *gid_count {
                return Err(Error::invalid(format!("--gid {g}: outside the mapped range 0..={gid_count}"), "choose a smaller gid or ask for a larger subgid range"));
            }
            (u, g)
        }
    };
    for (what, v) in [("--uid", inside_uid), ("--gid", inside_gid)] {
        if v == u32::MAX {
            return Err(Error::invalid(format!("{what} {v}: not a valid id"), "use a value below 4294967295"));
        }
    }
    Ok(Ids { outside_uid: host.uid, outside_gid: host.gid, inside_uid, inside_gid, map })
}

/// The sandbox's /etc/passwd: root, the program's user, nobody.
pub fn passwd(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:0:root:/root:/bin/sh\n");
    if ids.inside_uid != 0 && ids.inside_uid != 65534 {
        let name = if ids.inside_uid == host.uid { host.user_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:{}:{name}:/tmp:/bin/sh\n", ids.inside_uid, ids.inside_gid));
    }
    s.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    s
}

/// The sandbox's /etc/group: root, the program's group, nogroup.
pub fn group(host: &Host, ids: &Ids) -> String {
    let mut s = String::from("root:x:0:\n");
    if ids.inside_gid != 0 && ids.inside_gid != 65534 {
        let name = if ids.inside_gid == host.gid { host.group_name.as_str() } else { "ward" };
        s.push_str(&format!("{name}:x:{}:\n", ids.inside_gid));
    }
    s.push_str("nogroup:x:65534:\n");
    s
}
