//! What this host and kernel can do: all feature detection lives here (`ward check` prints
//! it, the tests use it to decide skips). Reads only, apart from the short-lived child that
//! tries a user namespace.

use nix::errno::Errno;
use std::path::PathBuf;

/// (name, home) of `uid` in /etc/passwd text.
pub(crate) fn passwd_entry(content: &str, uid: u32) -> Option<(String, String)> {
    content.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok()? == uid).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// name of `gid` in /etc/group text.
pub(crate) fn group_entry(content: &str, gid: u32) -> Option<String> {
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

/// The running kernel's (major, minor), from uname (0.0 if unreadable).
pub fn kernel_version() -> (u32, u32) {
    let Ok(u) = nix::sys::utsname::uname() else { return (0, 0) };
    let rel = u.release().to_string_lossy().into_owned();
    let mut it = rel.split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
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
