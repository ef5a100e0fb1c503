//! What this host and kernel can do, and the facts about the caller a policy needs. All
//! feature detection lives here: `ward check` prints it and the tests use it to decide skips.
//! Runs in the launcher (parent) only.

use crate::policy::Host;
use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};
use std::path::{Path, PathBuf};

impl Host {
    /// Gather the caller's ids, names, environment and the layout of the host's root.
    /// `want_subids`: read /etc/subuid and /etc/subgid (only --map-ranges needs them).
    /// (Only looks for a delegated cgroup; never asks systemd for one.)
    pub fn gather(want_subids: bool) -> std::io::Result<Host> {
        Host::gather_with(want_subids, false, false)
    }

    /// For a run: `want_net` also looks up the networking helpers and the host's gateway, and
    /// without a delegated cgroup ward asks the systemd user manager for one.
    pub fn gather_for(want_subids: bool, want_net: bool) -> std::io::Result<Host> {
        Host::gather_with(want_subids, want_net, true)
    }

    fn gather_with(want_subids: bool, want_net: bool, obtain_cgroup: bool) -> std::io::Result<Host> {
        let uid = Uid::current();
        let gid = Gid::current();
        // /etc/passwd and /etc/group first: one read each, no NSS daemons to ask; NSS for
        // users that live elsewhere (LDAP, systemd-homed).
        let pw = std::fs::read_to_string("/etc/passwd").ok().and_then(|s| passwd_entry(&s, uid.as_raw()));
        let (user_name, user_home) = match pw {
            Some((n, h)) => (n, Some(PathBuf::from(h))),
            None => match User::from_uid(uid).ok().flatten() {
                Some(u) => (u.name, Some(u.dir)),
                None => (format!("u{uid}"), None),
            },
        };
        let group_name = std::fs::read_to_string("/etc/group")
            .ok()
            .and_then(|s| group_entry(&s, gid.as_raw()))
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
        let localtime = std::fs::read_link("/etc/localtime").ok();
        let (subuid, subgid) = if want_subids {
            (
                std::fs::read_to_string("/etc/subuid").ok().and_then(|s| parse_subid(&s, &user_name, uid.as_raw())),
                std::fs::read_to_string("/etc/subgid").ok().and_then(|s| parse_subid(&s, &user_name, uid.as_raw())),
            )
        } else {
            (None, None)
        };
        let home_for_cache = home.clone();
        Ok(Host {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            user_name,
            group_name,
            home,
            cwd,
            env,
            usr_links,
            has_ld_so_cache: Path::new("/etc/ld.so.cache").is_file(),
            has_alternatives: Path::new("/etc/alternatives").is_dir(),
            localtime,
            subuid,
            subgid,
            landlock_abi: landlock_abi_capped(),
            slirp4netns: if want_net { find_program("slirp4netns") } else { None },
            pasta: if want_net { find_program("pasta") } else { None },
            gateway: if want_net { crate::net::host_gateway() } else { None },
            cgroup: if obtain_cgroup { crate::cgroup::find_or_obtain() } else { crate::cgroup::find() },
            cache_dir: {
                let d = crate::seccomp::cache_dir(home_for_cache.as_deref());
                d.map(|d| std::fs::canonicalize(&d).unwrap_or(d))
            },
        })
    }
}

/// (name, home) of `uid` in /etc/passwd text.
fn passwd_entry(content: &str, uid: u32) -> Option<(String, String)> {
    content.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok()? == uid).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// name of `gid` in /etc/group text.
fn group_entry(content: &str, gid: u32) -> Option<String> {
    content.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse::<u32>().ok()? == gid).then(|| f[0].to_string())
    })
}

/// The first `name:start:count` (or `uid:start:count`) line of /etc/subuid or /etc/subgid
/// for this user.
pub fn parse_subid(content: &str, name: &str, uid: u32) -> Option<(u32, u32)> {
    content.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let who = f.next()?;
        let start = f.next()?.trim().parse::<u32>().ok()?;
        let count = f.next()?.trim().parse::<u32>().ok()?;
        let uid_s = uid.to_string();
        (count > 0 && (who == name || who == uid_s)).then_some((start, count))
    })
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Can this process create a user namespace? Tries it in a short-lived child.
pub fn userns_works() -> Result<(), Errno> {
    match crate::sys::clone_fork(nix::libc::CLONE_NEWUSER)? {
        None => crate::sys::exit_now(0),
        Some(pid) => {
            let st = crate::sys::wait4(pid, false)?;
            match st {
                Some((0, _)) => Ok(()),
                _ => Err(Errno::ECHILD),
            }
        }
    }
}

/// Why user namespaces are refused, with the fix, from the sysctls that control them.
pub fn userns_blockers() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if read_trim("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        out.push((
            "kernel.unprivileged_userns_clone = 0".into(),
            "as root: sysctl -w kernel.unprivileged_userns_clone=1 (persist in /etc/sysctl.d/)".into(),
        ));
    }
    if read_trim("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        out.push((
            "user.max_user_namespaces = 0".into(),
            "as root: sysctl -w user.max_user_namespaces=15000 (persist in /etc/sysctl.d/)".into(),
        ));
    }
    if read_trim("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        out.push((
            "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+)".into(),
            "as root: install an AppArmor profile for ward with 'userns,' (see README), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into(),
        ));
    }
    out
}

/// The kernel's Landlock ABI (0: none), lowered to $WARD_LANDLOCK_ABI_MAX when that is set:
/// a way to see on a new kernel what an older one gives (it can only remove protections
/// from consideration, never add any, and the verdict reports the ABI actually used).
pub fn landlock_abi_capped() -> u8 {
    let real = landlock().map(|v| v.clamp(0, 255) as u8).unwrap_or(0);
    match std::env::var("WARD_LANDLOCK_ABI_MAX").ok().and_then(|v| v.parse::<u8>().ok()) {
        Some(cap) => real.min(cap),
        None => real,
    }
}

/// Landlock ABI version, or why there is none.
pub fn landlock() -> Result<i32, String> {
    match crate::sys::landlock_abi() {
        Ok(v) => Ok(v),
        Err(Errno::EOPNOTSUPP) => Err("Landlock is built in but disabled (add landlock to the lsm= boot parameter)".into()),
        Err(Errno::ENOSYS) => Err("the kernel has no Landlock (needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)".into()),
        Err(e) => Err(format!("landlock_create_ruleset => {e:?}")),
    }
}

/// Seccomp filter mode available (from /proc/self/status and the config).
pub fn seccomp() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Ok(())
    } else {
        Err("the kernel was built without CONFIG_SECCOMP".into())
    }
}

/// First directory of PATH (or the usual system dirs) holding an executable `name`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
}

/// Can the caller open /dev/net/tun read-write (what slirp4netns and pasta need)?
pub fn tun_usable() -> Result<(), String> {
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun") {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("/dev/net/tun does not exist".into()),
        Err(e) => {
            let mode = std::fs::metadata("/dev/net/tun").map(|m| {
                use std::os::unix::fs::PermissionsExt;
                format!("{:o}", m.permissions().mode() & 0o7777)
            });
            Err(format!("/dev/net/tun cannot be opened ({e}); mode {}", mode.unwrap_or_else(|_| "?".into())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines() {
        let s = "alice:100000:65536\n# x\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(parse_subid(s, "alice", 1000), Some((100000, 65536)));
        assert_eq!(parse_subid(s, "carol", 1001), Some((200000, 1000)));
        assert_eq!(parse_subid(s, "bob", 5), None);
        assert_eq!(parse_subid("", "x", 1), None);
    }

    #[test]
    fn passwd_and_group_lines() {
        let p = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbad\n";
        assert_eq!(passwd_entry(p, 1000), Some(("alice".into(), "/home/alice".into())));
        assert_eq!(passwd_entry(p, 5), None);
        assert_eq!(group_entry("root:x:0:\nstaff:x:50:a,b\n", 50), Some("staff".into()));
    }
}
