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

/// When creating a user namespace failed and no sysctl explains it: the container engine's
/// profile is the likely cause, with the engine's fix.
pub fn container_blocker() -> Option<(String, String)> {
    let engine = container_engine()?;
    Some((format!("this is a {} container, whose runtime profile may refuse namespaces to an unprivileged process", engine.name()), engine.userns_fix().into()))
}

/// The container engine this process runs under, if it can tell: the fixes are phrased for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
    Kubernetes,
    /// A container of another engine (systemd-nspawn, LXC, ...).
    Other,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "Docker",
            Engine::Podman => "Podman",
            Engine::Kubernetes => "Kubernetes",
            Engine::Other => "container engine's",
        }
    }

    /// What lets ward create its namespaces and build its tree there: the runtime's seccomp
    /// profile (Docker's and containerd's default allow clone/unshare with namespace flags,
    /// mount and sethostname only to CAP_SYS_ADMIN; Podman's default refuses sethostname).
    pub fn userns_fix(self) -> &'static str {
        match self {
            Engine::Docker => "run the container with --security-opt seccomp=ward.json, the profile ward ships in deploy/seccomp/ (Docker's default plus the namespace and mount calls ward makes, which the default allows only with CAP_SYS_ADMIN); never --privileged",
            Engine::Podman => "run the container with --security-opt seccomp=ward.json, the profile ward ships in deploy/seccomp/ (Podman's default refuses sethostname without CAP_SYS_ADMIN); never --privileged",
            Engine::Kubernetes => "set the container's securityContext.seccompProfile to {type: Localhost, localhostProfile: ward.json}, the profile ward ships in deploy/seccomp/, placed in the kubelet's seccomp directory; see deploy/kubernetes/",
            Engine::Other => "allow clone and clone3 with namespace flags, setns, mount, umount2, pivot_root, open_tree, move_mount, mount_setattr and sethostname in the container's seccomp profile (deploy/seccomp/ward.json lists them)",
        }
    }

    /// What lifts an AppArmor profile that confines mounts (docker-default does).
    pub fn apparmor_fix(self) -> &'static str {
        match self {
            Engine::Docker | Engine::Podman => "run the container with --security-opt apparmor=unconfined, or a profile of yours that allows mount, umount, pivot_root and userns",
            Engine::Kubernetes => "set the container's securityContext.appArmorProfile to {type: Unconfined}, or {type: Localhost} with a profile that allows mount, umount, pivot_root and userns",
            Engine::Other => "run the container without an AppArmor profile that denies mount and pivot_root",
        }
    }

    /// What lets the kernel mount a fresh /proc in a nested user namespace: no masked paths
    /// (the kernel refuses a procfs that would reveal what an overmount hides).
    pub fn masked_proc_fix(self) -> &'static str {
        match self {
            Engine::Docker => "run the container with --security-opt systempaths=unconfined",
            Engine::Podman => "run the container with --security-opt unmask=ALL",
            Engine::Kubernetes => "set securityContext.procMount: Unmasked (needs hostUsers: false)",
            Engine::Other => "start the container without masked paths under /proc",
        }
    }
}

/// Which engine, from what a container shows: /.dockerenv, /run/.containerenv (Podman),
/// the service variables Kubernetes sets, PID 1's cgroup, the `container` variable systemd
/// and others set.
pub fn engine_from(dockerenv: bool, containerenv: bool, kubernetes: bool, pid1_cgroup: &str, container_var: Option<&str>) -> Option<Engine> {
    if kubernetes || pid1_cgroup.contains("kubepods") {
        Some(Engine::Kubernetes)
    } else if containerenv || container_var == Some("podman") {
        Some(Engine::Podman)
    } else if dockerenv || pid1_cgroup.contains("/docker") || container_var == Some("docker") {
        Some(Engine::Docker)
    } else if container_var.is_some_and(|v| !v.is_empty()) {
        Some(Engine::Other)
    } else {
        None
    }
}

pub fn container_engine() -> Option<Engine> {
    let container_var = std::env::var("container").ok().or_else(|| {
        // PID 1's environment, when readable (it is in most containers)
        let env = std::fs::read("/proc/1/environ").ok()?;
        env.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"container=")).map(|v| String::from_utf8_lossy(v).into_owned())
    });
    engine_from(
        std::path::Path::new("/.dockerenv").exists(),
        std::path::Path::new("/run/.containerenv").exists(),
        std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        &std::fs::read_to_string("/proc/1/cgroup").unwrap_or_default(),
        container_var.as_deref(),
    )
}

/// The AppArmor profile confining this process, if one is enforced (not "unconfined"), from
/// the text of /proc/self/attr/apparmor/current (or the older /proc/self/attr/current).
pub fn apparmor_from(attr: &str) -> Option<String> {
    let label = attr.trim_end_matches(['\n', '\0']).trim();
    let name = label.strip_suffix(" (enforce)")?;
    (name != "unconfined").then(|| name.to_string())
}

pub fn apparmor_profile() -> Option<String> {
    ["/proc/self/attr/apparmor/current", "/proc/self/attr/current"].iter().find_map(|p| std::fs::read_to_string(p).ok()).as_deref().and_then(apparmor_from)
}

/// Paths below /proc that something is mounted over (a runtime's masked and read-only paths),
/// from /proc/self/mountinfo text. With any of them the kernel refuses a fresh procfs in a
/// nested user namespace (it would reveal what they hide).
/// (binfmt_misc's automount on an empty procfs directory does not count: the kernel allows it.)
pub fn proc_overmounts(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let mp = l.split(' ').nth(4)?;
            let fstype = l.split_once(" - ").and_then(|(_, r)| r.split(' ').next()).unwrap_or("");
            (mp.starts_with("/proc/") && !matches!(fstype, "autofs" | "binfmt_misc")).then(|| mp.to_string())
        })
        .collect()
}

/// `proc_overmounts` of this process's mount namespace.
pub fn masked_proc() -> Vec<String> {
    proc_overmounts(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_engines_and_masked_proc() {
        assert_eq!(engine_from(true, false, false, "0::/\n", None), Some(Engine::Docker));
        assert_eq!(engine_from(false, false, false, "0::/system.slice/docker-4f1c.scope\n", None), Some(Engine::Docker));
        assert_eq!(engine_from(false, true, false, "", Some("podman")), Some(Engine::Podman));
        assert_eq!(engine_from(true, false, true, "0::/kubepods/burstable/pod1/abc\n", None), Some(Engine::Kubernetes));
        assert_eq!(engine_from(false, false, false, "", Some("lxc")), Some(Engine::Other));
        assert_eq!(engine_from(false, false, false, "0::/user.slice/user-1000.slice\n", None), None);
        assert!(Engine::Docker.userns_fix().contains("--security-opt seccomp=") && !Engine::Docker.userns_fix().contains("use --privileged"));
        assert_eq!(Engine::Kubernetes.masked_proc_fix(), "set securityContext.procMount: Unmasked (needs hostUsers: false)");
        assert!(Engine::Podman.userns_fix().contains("--security-opt seccomp=ward.json"));
        assert_eq!(apparmor_from("docker-default (enforce)\n"), Some("docker-default".into()));
        assert_eq!(apparmor_from("unconfined\n"), None);
        assert_eq!(apparmor_from("unconfined (enforce)"), None);
        assert_eq!(apparmor_from("ward (complain)\n"), None);
        // Docker's masked paths as /proc/self/mountinfo shows them
        let mi = "1023 1022 0:52 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
                  1024 1023 0:56 / /proc/kcore rw,nosuid - tmpfs tmpfs ro\n\
                  1025 1023 0:52 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw\n\
                  1030 1022 0:60 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n";
        assert_eq!(proc_overmounts(mi), ["/proc/kcore", "/proc/sys"]);
        assert!(proc_overmounts("22 1 0:21 / /proc rw - proc proc rw\n40 22 0:35 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw\n").is_empty());
    }

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
