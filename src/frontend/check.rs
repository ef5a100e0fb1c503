//! `ward check`: the host doctor. Each requirement is probed (see `probe`) and printed with
//! OK or FAIL and, on FAIL, the exact fix. Only the requirements of the default sandbox
//! decide the exit status; the others (ranges, Landlock, cgroup delegation, networking
//! helpers) are for the options and later layers that need them.

use crate::host::{NoCgroup, probe};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: &'static str,
    pub ok: bool,
    /// Needed by `ward run` with the default settings.
    pub required: bool,
    pub detail: String,
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `ward run` works with the default settings.
    pub ok: bool,
    pub kernel: String,
    pub items: Vec<Item>,
}

fn item(name: &'static str, required: bool, r: Result<String, (String, String)>) -> Item {
    match r {
        Ok(detail) => Item { name, ok: true, required, detail, fix: String::new() },
        Err((detail, fix)) => Item { name, ok: false, required, detail, fix },
    }
}

pub fn run() -> Report {
    let mut items = Vec::new();
    // Delegation first: the sandbox below may get a scope from systemd, and this line must
    // say what the caller had, not what that run made (the same test the runs use).
    let delegation = item(
        "cgroup v2 delegation",
        false,
        match crate::host::find_cgroup() {
            Ok(sub) => Ok(format!("{} is delegated to you (controllers: {})", sub.dir.display(), sub.controllers.join(" "))),
            Err(why @ NoCgroup::NotDelegated { .. }) if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() => {
                Ok(format!("{why}; ward run asks the systemd user manager for a delegated scope over the session bus"))
            }
            Err(why @ NoCgroup::NotDelegated { .. }) => {
                Err((why.to_string(), "run inside a delegated scope: systemd-run --user --scope -p Delegate=yes ward ...".into()))
            }
            Err(why) => Err((
                why.to_string(),
                "boot with systemd.unified_cgroup_hierarchy=1 (pure cgroup v2); without it, whole-run limits are sampled by the launcher (approximate) and rlimits apply per process".into(),
            )),
        },
    );
    let userns = probe::userns_works();
    let mut blockers = probe::userns_blockers();
    if userns.is_err() && blockers.is_empty() {
        blockers.extend(probe::container_blocker());
    }
    items.push(item(
        "user namespaces",
        true,
        match (&userns, blockers.first()) {
            (Ok(()), None) => Ok("an unprivileged process can create a user namespace".into()),
            (Ok(()), Some((what, fix))) => Err((format!("created, but {what}: the namespace gets no capabilities"), fix.clone())),
            (Err(e), Some((what, fix))) => Err((format!("clone(CLONE_NEWUSER) => {e:?}: {what}"), fix.clone())),
            (Err(e), None) => Err((format!("clone(CLONE_NEWUSER) => {e:?}"), "check the kernel's CONFIG_USER_NS and any container or LSM policy".into())),
        },
    ));
    if userns.is_ok() {
        let t = std::time::Instant::now();
        let sb = crate::Sandbox::new(["/bin/true"]).workdir(crate::Workdir::None, crate::WorkdirMode::ReadWrite);
        let r = match sb.run() {
            Ok(v) if v.status == crate::Status::OK => Ok(format!("ran /bin/true in a full sandbox ({:.1} ms)", t.elapsed().as_secs_f64() * 1000.0)),
            Ok(v) => Err((format!("ran /bin/true: {:?} {}", v.status, v.message), "see the message; report it if it is not clear".into())),
            Err(e) => Err((e.to_string(), "see the message".into())),
        };
        items.push(item("sandbox", true, r));
    }

    let host = crate::host::Host::gather(true, false).ok();
    let name = host.as_ref().map(|h| h.user_name.clone()).unwrap_or_default();
    let helpers = ["newuidmap", "newgidmap"].map(|h| (h, probe::find_program(h)));
    items.push(item(
        "newuidmap/newgidmap",
        false,
        if helpers.iter().all(|(_, p)| p.is_some()) {
            Ok(helpers.iter().filter_map(|(_, p)| p.as_ref().map(|p| p.display().to_string())).collect::<Vec<_>>().join(", "))
        } else {
            Err(("not installed (needed by --map-ranges)".into(), "as root: apt-get install uidmap".into()))
        },
    ));
    let (su, sg) = host.as_ref().map(|h| (h.subuid, h.subgid)).unwrap_or((None, None));
    items.push(item(
        "subordinate ids",
        false,
        match (su, sg) {
            (Some((us, uc)), Some((gs, gc))) => Ok(format!("{name}: uids {us}+{uc}, gids {gs}+{gc}")),
            _ => Err((
                format!("{name} has no range in /etc/subuid and /etc/subgid (needed by --map-ranges)"),
                format!("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}"),
            )),
        },
    ));
    items.push(item(
        "landlock",
        false,
        probe::landlock().map(|abi| format!("ABI {abi}")).map_err(|e| (e, "boot a kernel with Landlock enabled (Linux 5.13+, lsm=...,landlock)".into())),
    ));
    items.push(item("seccomp", false, probe::seccomp().map(|()| "seccomp filters available".into()).map_err(|e| (e, "use a kernel with CONFIG_SECCOMP_FILTER".into()))));
    let delegated = delegation.ok;
    items.push(delegation);
    let (maj, min) = probe::kernel_version();
    items.push(item(
        "process limit",
        false,
        match ((maj, min) >= (5, 14), delegated) {
            (true, true) => Ok("--procs and isolate -p: pids.max in the run's leaf, and RLIMIT_NPROC in the sandbox's own user namespace".into()),
            (true, false) => Ok("--procs and isolate -p: RLIMIT_NPROC in the sandbox's own user namespace (counts only the sandbox's processes and threads)".into()),
            (false, true) => Ok("--procs and isolate -p: pids.max in the run's leaf".into()),
            (false, false) => Err((
                format!("--procs and isolate -p cannot be enforced: no delegated cgroup, and RLIMIT_NPROC counts per user namespace only from Linux 5.14 (this is {maj}.{min})"),
                "use a delegated cgroup v2 subtree or a newer kernel".into(),
            )),
        },
    ));
    // in a container: which engine, and whether its masked /proc stops a fresh one
    let masked = probe::masked_proc();
    items.push(item(
        "container",
        false,
        match (probe::container_engine(), masked.is_empty()) {
            (None, true) => Ok("not in a container".into()),
            (None, false) => Ok(format!("not in a container; /proc has mounts over {}", masked.join(" "))),
            (Some(e), true) => match probe::apparmor_profile() {
                Some(aa) => Err((format!("a {} container under the AppArmor profile {aa}, which may refuse mounts", e.name()), e.apparmor_fix().into())),
                None => Ok(format!("a {} container, /proc not masked", e.name())),
            },
            (Some(e), false) => Err((
                format!("a {} container that masks {}: the kernel refuses a fresh /proc in the sandbox's user namespace", e.name(), masked.join(" ")),
                format!("{}; {}", e.masked_proc_fix(), crate::launcher::supervise::NO_PROC),
            )),
        },
    ));
    if nix::unistd::Uid::effective().is_root() {
        items.push(item(
            "root caller",
            false,
            Ok("you are root: programs run as host nobody/nogroup (65534), isolate boxes as 60000+box, never as host root".into()),
        ));
    }
    for helper in ["slirp4netns", "pasta"] {
        items.push(item(
            helper,
            false,
            probe::find_program(helper)
                .map(|p| p.display().to_string())
                .ok_or_else(|| ("not installed (needed by --net)".into(), format!("as root: apt-get install {}", if helper == "pasta" { "passt" } else { helper }))),
        ));
    }
    items.push(item(
        "/dev/net/tun",
        false,
        probe::tun_usable()
            .map(|()| "usable by you".into())
            .map_err(|e| (e, "as root: chmod 0666 /dev/net/tun (Debian's udev default)".into())),
    ));
    let ok = items.iter().all(|i| i.ok || !i.required);
    let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    Report { ok, kernel, items }
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut s = format!("kernel {}\n", self.kernel);
        for i in &self.items {
            let mark = if !i.ok && i.required { " (required)" } else { "" };
            s.push_str(&format!("{:<5} {}{mark}: {}\n", if i.ok { "OK" } else { "FAIL" }, i.name, i.detail));
            if !i.ok {
                s.push_str(&format!("      fix: {}\n", i.fix));
            }
        }
        s.push_str(if self.ok { "ward run can work on this host\n" } else { "ward run cannot work on this host: fix the FAIL lines marked required above\n" });
        s
    }
}
