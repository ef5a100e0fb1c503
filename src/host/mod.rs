//! Facts about the caller and the host that a policy depends on: ids and names, the
//! environment, the layout of the host's root, subordinate id ranges, the Landlock ABI, the
//! networking helpers, the delegated cgroup v2 subtree.
//!
//! Gathering only reads: it never creates, moves or asks anything (asking systemd for a
//! delegated scope is the launcher's, after the request was validated). Feature probes are in
//! `probe`. Imports nothing of ward but `sys`.

pub(crate) mod probe;

use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What `Policy::build` learns about the caller and the host (gathered by `Host::gather`, or
/// made up in tests).
#[derive(Debug, Clone)]
pub struct Host {
    /// The effective ids: a set-user-ID or sudo-run launcher with euid 0 is a root caller.
    pub uid: u32,
    pub gid: u32,
    pub user_name: String,
    pub group_name: String,
    pub home: Option<PathBuf>,
    pub cwd: PathBuf,
    pub env: Vec<(String, OsString)>,
    /// Top-level directories next to /usr: (name, Some(symlink target)) or (name, None) for a
    /// real directory. Only those that exist.
    pub usr_links: Vec<(String, Option<PathBuf>)>,
    pub has_ld_so_cache: bool,
    pub has_alternatives: bool,
    pub localtime: Option<PathBuf>,
    /// The caller's /etc/subuid and /etc/subgid ranges (start, count), if any.
    pub subuid: Option<(u32, u32)>,
    pub subgid: Option<(u32, u32)>,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: u8,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
    /// Networking helpers found on PATH, and the host's IPv4 default gateway (only gathered
    /// when networking is asked for).
    pub slirp4netns: Option<PathBuf>,
    pub pasta: Option<PathBuf>,
    pub gateway: Option<std::net::IpAddr>,
    /// The delegated cgroup v2 subtree ward may use, or why there is none.
    pub cgroup: Result<Subtree, NoCgroup>,
    /// A session bus is there: the systemd user manager can be asked for a delegated scope.
    pub session_bus: bool,
}

/// A cgroup v2 subtree the caller may manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subtree {
    pub dir: PathBuf,
    /// The controllers available in it.
    pub controllers: Vec<String>,
    /// How ward got it: already delegated, or from the systemd user manager.
    pub how: &'static str,
}

/// Why the caller has no delegated cgroup v2 subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoCgroup {
    /// A hybrid or v1 host.
    NotMounted,
    NoEntry,
    /// cgroup v2, but the caller's cgroup is not writable by the caller.
    NotDelegated { cgroup: String },
    /// For tests and tools that pretend.
    #[cfg(any(test, fuzzing))]
    Other(String),
}

impl std::fmt::Display for NoCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoCgroup::NotMounted => write!(f, "cgroup v2 is not mounted at {CGROUP_ROOT} (hybrid or v1 host)"),
            NoCgroup::NoEntry => write!(f, "/proc/self/cgroup has no cgroup v2 entry"),
            NoCgroup::NotDelegated { cgroup } => write!(f, "cgroup v2, but {cgroup} is not delegated to you"),
            #[cfg(any(test, fuzzing))]
            NoCgroup::Other(why) => f.write_str(why),
        }
    }
}

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The caller's cgroup v2 path (relative to the root), from /proc/self/cgroup.
pub fn own_cgroup() -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup").ok()?.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string))
}

fn writable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Is `name` one of the cgroups ward makes (`ward-PID-run`, `ward-PID-launcher`,
/// `ward-caller`)? Nothing else named `ward-...` is ward's.
pub fn is_ward_leaf(name: &str) -> bool {
    if name == "ward-caller" {
        return true;
    }
    let Some(rest) = name.strip_prefix("ward-") else { return false };
    match rest.split_once('-') {
        // `run`, `runN` or `launcher` after the launcher's pid
        Some((pid, what)) if what == "launcher" || what.strip_prefix("run").is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) => {
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// The delegated subtree the caller sits in, or why there is none (reads only).
pub fn find_cgroup() -> Result<Subtree, NoCgroup> {
    if !Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
        return Err(NoCgroup::NotMounted);
    }
    let own = own_cgroup().ok_or(NoCgroup::NoEntry)?;
    let mut dir = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
    // A leaf ward made (an earlier run of this process, or the leaf the caller's processes
    // were moved to): the subtree is the one above it.
    if dir.file_name().is_some_and(|n| is_ward_leaf(&n.to_string_lossy())) {
        if let Some(parent) = dir.parent() {
            dir = parent.to_path_buf();
        }
    }
    if !(writable(&dir) && writable(&dir.join("cgroup.procs")) && writable(&dir.join("cgroup.subtree_control"))) {
        return Err(NoCgroup::NotDelegated { cgroup: own });
    }
    let controllers: Vec<String> = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default().split_whitespace().map(str::to_string).collect();
    Ok(Subtree { dir, controllers, how: "already delegated to the caller" })
}

/// The host's IPv4 default gateway (first default route in /proc/net/route).
pub fn host_gateway() -> Option<std::net::IpAddr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 2 && f[1] == "00000000" && f[2] != "00000000" {
            let g = u32::from_str_radix(f[2], 16).ok()?;
            Some(std::net::IpAddr::from(g.to_le_bytes()))
        } else {
            None
        }
    })
}

impl Host {
    /// Gather the caller's ids, names, environment and the layout of the host's root.
    /// `want_subids`: read /etc/subuid and /etc/subgid (only --map-ranges needs them);
    /// `want_net`: look up the networking helpers and the host's gateway.
    pub fn gather(want_subids: bool, want_net: bool) -> std::io::Result<Host> {
        let uid = Uid::effective();
        let gid = Gid::effective();
        // /etc/passwd and /etc/group first: one read each, no NSS daemons to ask; NSS for
        // users that live elsewhere (LDAP, systemd-homed).
        let pw = std::fs::read_to_string("/etc/passwd").ok().and_then(|s| probe::passwd_entry(&s, uid.as_raw()));
        let (user_name, user_home) = match pw {
            Some((n, h)) => (n, Some(PathBuf::from(h))),
            None => match User::from_uid(uid).ok().flatten() {
                Some(u) => (u.name, Some(u.dir)),
                None => (format!("u{uid}"), None),
            },
        };
        let group_name = std::fs::read_to_string("/etc/group")
            .ok()
            .and_then(|s| probe::group_entry(&s, gid.as_raw()))
            .or_else(|| Group::from_gid(gid).ok().flatten().map(|g| g.name))
            .unwrap_or_else(|| format!("g{gid}"));
        let home = std::env::var_os("HOME").map(PathBuf::from).or(user_home);
        let cwd = std::env::current_dir()?;
        let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))).collect();
        let mut usr_links = Vec::new();
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let p = Path::new("/").join(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(t) = std::fs::read_link(&p) {
                        usr_links.push((name.to_string(), Some(t)));
                    }
                }
                Ok(m) if m.is_dir() => usr_links.push((name.to_string(), None)),
                _ => {}
            }
        }
        let (subuid, subgid) = if want_subids {
            (
                std::fs::read_to_string("/etc/subuid").ok().and_then(|s| probe::parse_subid(&s, &user_name, uid.as_raw())),
                std::fs::read_to_string("/etc/subgid").ok().and_then(|s| probe::parse_subid(&s, &user_name, uid.as_raw())),
            )
        } else {
            (None, None)
        };
        Ok(Host {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            user_name,
            group_name,
            cwd,
            env,
            usr_links,
            has_ld_so_cache: Path::new("/etc/ld.so.cache").is_file(),
            has_alternatives: Path::new("/etc/alternatives").is_dir(),
            localtime: std::fs::read_link("/etc/localtime").ok(),
            subuid,
            subgid,
            landlock_abi: probe::landlock_abi_capped(),
            kernel: probe::kernel_version(),
            slirp4netns: if want_net { probe::find_program("slirp4netns") } else { None },
            pasta: if want_net { probe::find_program("pasta") } else { None },
            gateway: if want_net { host_gateway() } else { None },
            cgroup: find_cgroup(),
            session_bus: std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wards_own_leaves_are_wards() {
        for ours in ["ward-12-run", "ward-12-run3", "ward-7-launcher", "ward-caller"] {
            assert!(is_ward_leaf(ours), "{ours}");
        }
        for theirs in ["ward-123.scope", "ward-x-run", "ward--run", "ward-12-other", "ward-12-runx", "app.slice", "ward-"] {
            assert!(!is_ward_leaf(theirs), "{theirs}");
        }
    }
}
