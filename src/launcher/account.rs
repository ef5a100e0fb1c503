//! The last step of the parent pipeline, pure and unit tested: from what supervision saw (init's
//! report, its rusage, the samples, the leaf's counters) to the run's `Outcome`, with CPU time
//! and peak memory as the verdict counts them, and the typed `Enforced` record of what was
//! really in force.

use super::supervise::Supervised;
use crate::error::Error;
use crate::policy::Policy;
use crate::policy::ids::{IdMap, MapWriter};
use crate::policy::landlock::{FEATURES, LandlockState};
use crate::policy::limits::{CgroupPlan, Hit};
use crate::policy::net::MTU;
use crate::request::{NetMode, OnDeny};
use crate::sync::ExitReport;
use crate::policy::tree::{Access, MountOp};
use crate::verdict::{BindInfo, Blocked, Enforced, IdMapInfo, LandlockInfo, LandlockRule, LimitsInfo, NetworkInfo, Ports, RootInfo, SeccompInfo};
use nix::libc;

/// What happened, and what was in force.
#[derive(Debug)]
pub struct Outcome {
    pub ending: crate::verdict::Ending,
    pub enforced: Option<Enforced>,
    /// Calls the seccomp filter denied, as the supervisor saw them.
    pub blocked: Vec<Blocked>,
    /// The sandbox was killed for a denied call (kill-on-deny).
    pub killed_for_syscall: bool,
    /// The launcher (or the kernel, in the leaf) ended the sandbox for this limit.
    pub limit_hit: Option<Hit>,
}

/// What the launcher knows beside supervision: the filter it loaded, the helper's
/// arguments, where the cgroup leaf was (or why there was none).
pub struct Facts<'a> {
    pub filter: Option<&'a super::seccomp::Filter>,
    pub helper_args: Vec<String>,
    pub cgroup: String,
    pub leaf: Option<super::cgroup::Usage>,
}

/// The run's outcome.
pub fn outcome(p: &Policy, s: Supervised, f: Facts<'_>) -> Outcome {
    let mut report = s.report;
    let mut limit_hit = s.hit;
    if f.leaf.is_some_and(|u| u.oom_kills > 0) && limit_hit.is_none() {
        limit_hit = Some(Hit::Memory);
    }
    if limit_hit.is_some() && report.is_none() {
        // Killed by the launcher: init never reported; its rusage covers every process it
        // (or the kernel, tearing the namespace down) reaped. When the kernel tears the
        // namespace down, the processes it kills are not all accounted to init: the CPU time
        // is the larger of init's rusage and the last sample.
        let ru = &s.init_usage;
        let (utime, stime) = (ru.utime_us, ru.stime_us);
        let sampled = (s.max_sampled_cpu * 1e6) as u64 + s.pre_exec_us; // subtracted once below
        report = Some(ExitReport {
            wait_status: libc::SIGKILL,
            wall_ns: s.wall_ns,
            utime_us: utime.max(sampled.saturating_sub(stime)),
            stime_us: stime,
            maxrss_kib: ru.maxrss_kib.max(s.max_sampled_rss / 1024),
            nvcsw: ru.nvcsw,
            nivcsw: ru.nivcsw,
        });
    }
    let blocked = s.blocked;
    let killed_for_syscall = s.killed_for_syscall;
    if let Some(e) = s.failed {
        return Outcome { ending: crate::verdict::Ending::NotStarted(e), enforced: None, blocked, killed_for_syscall, limit_hit };
    }
    // With a leaf: the peak memory of the whole run is memory.peak. CPU time stays init's
    // rusage of everything it reaped (exact, and without init's own setup work), except when
    // the sandbox was killed and init never reported: then the leaf's count since the
    // program started.
    if let (Some(u), Some(r)) = (f.leaf, report.as_mut()) {
        if let Some(peak) = u.peak {
            r.maxrss_kib = peak / 1024;
        }
        if limit_hit.is_some() {
            let used = (u.usage_usec as f64 - s.cgroup_baseline_us).max(0.0) as u64;
            let sys_share = if u.usage_usec > 0 { u.system_usec as f64 / u.usage_usec as f64 } else { 0.0 };
            r.stime_us = (used as f64 * sys_share) as u64;
            r.utime_us = used - r.stime_us;
        }
    }
    // ward's own steps in the program's process before execve are not the program's time
    // (mostly system time: Landlock, the seccomp filter load).
    if let Some(r) = report.as_mut() {
        let from_sys = s.pre_exec_us.min(r.stime_us);
        r.stime_us -= from_sys;
        r.utime_us = r.utime_us.saturating_sub(s.pre_exec_us - from_sys);
    }
    let enforced = Some(enforced(p, &f));
    if killed_for_syscall {
        // init died with the sandbox: there is no report, only the denied call.
        let r = report.unwrap_or(ExitReport { wait_status: libc::SIGSYS, ..Default::default() });
        return Outcome { ending: crate::verdict::Ending::Ran(r), enforced, blocked, killed_for_syscall, limit_hit };
    }
    match report {
        Some(r) => Outcome { ending: crate::verdict::Ending::Ran(r), enforced, blocked, killed_for_syscall, limit_hit },
        None => {
            let status = s.init_status;
            let what = if libc::WIFSIGNALED(status) {
                format!("the sandbox's init was killed by {}", crate::verdict::signal_name(libc::WTERMSIG(status)))
            } else {
                format!("the sandbox's init exited with status {} without a report", libc::WEXITSTATUS(status))
            };
            Outcome { ending: crate::verdict::Ending::NotStarted(Error::host(what, "")), enforced: None, blocked, killed_for_syscall, limit_hit }
        }
    }
}

/// What was in force: from the policy, the filter actually loaded, the helper actually
/// started and the leaf actually used.
pub fn enforced(p: &Policy, f: &Facts<'_>) -> Enforced {
    let (mode, subuid_range, subgid_range) = match &p.ids.map {
        IdMap::Single => ("single", None, None),
        IdMap::Ranges { uid_start, uid_count, gid_start, gid_count } => ("ranges", Some((*uid_start, *uid_count)), Some((*gid_start, *gid_count))),
    };
    // setgroups is denied when the child wrote its own map; otherwise allowed, and the
    // supplementary groups were dropped before the program
    let setgroups = if p.ids.writer == MapWriter::Child { "deny" } else { "allow (groups dropped)" };
    let landlock = match &p.landlock {
        LandlockState::On(l) => LandlockInfo::On {
            enabled: true,
            abi: l.abi,
            requested_abi: l.requested_abi,
            kernel_abi: l.kernel_abi,
            status: if l.abi == l.requested_abi { "fully enforced" } else { "partially enforced (optional features the kernel lacks were dropped)" },
            dropped: FEATURES.iter().filter(|(a, _, _)| *a > l.abi && *a <= l.requested_abi).map(|(_, w, _)| *w).collect(),
            scopes: if l.abi >= 6 { vec!["abstract_unix_socket", "signal"] } else { vec![] },
            tcp_connect_ports: Ports::of(&l.connect_ports),
            tcp_bind_ports: Ports::of(&l.bind_ports),
            rules: l.rules.iter().map(|(path, rights)| LandlockRule { path: path.clone(), rights: *rights }).collect(),
        },
        LandlockState::Off(why) => LandlockInfo::Off { enabled: false, reason: why.clone() },
    };
    let seccomp = match (&p.seccomp, f.filter) {
        (Some(sp), Some(filter)) => SeccompInfo::On {
            enabled: true,
            architectures: [std::env::consts::ARCH],
            other_architectures: "kill",
            allowed_syscalls: filter.allowed,
            denied_syscalls: filter.denied,
            denied_action: match sp.on_deny {
                OnDeny::Errno => "errno (EPERM; EAFNOSUPPORT for socket families), reported by the launcher",
                OnDeny::Kill => "kill the sandbox (SYS), reported by the launcher",
            },
            unknown_syscalls: "ENOSYS (answered by the launcher)",
            clone3: "ENOSYS",
            instructions: filter.bpf.len() / 8,
            from_cache: filter.from_cache,
        },
        _ => SeccompInfo::Off { enabled: false },
    };
    let network = match &p.net {
        None => NetworkInfo::Loopback { mode: "none", interfaces: ["lo"], host_loopback: false },
        Some(n) => NetworkInfo::Helper {
            mode: if n.mode == NetMode::Slirp4netns { "slirp4netns" } else { "pasta" },
            helper: n.helper.clone(),
            options: f.helper_args.clone(),
            mtu: MTU,
            host_loopback: n.allow_host_loopback,
            dns: n.dns,
            publish: n.publish.clone(),
            allow_connect: n.allow_connect.clone(),
            allow_bind: n.allow_bind.clone(),
        },
    };
    let l = &p.limits;
    let procs = p.cgroup.limits.procs;
    let mut limits = if l.is_empty() {
        LimitsInfo::default()
    } else {
        LimitsInfo {
            time: l.time,
            wall_time: l.wall_time,
            extra_time: Some(l.extra_time),
            mem: l.mem,
            output: l.output,
            enforced_by: Some(CgroupPlan::enforced_by(f.leaf.is_some())),
            ..LimitsInfo::default()
        }
    };
    if let Some(n) = procs {
        limits.procs = Some(n);
        let nproc = p.rlimits.iter().any(|(k, v)| *k == crate::request::Limit::Nproc && v.is_some());
        let (by, short) = match (f.leaf.is_some(), nproc) {
            (true, true) => ("pids.max in the run's cgroup leaf, and RLIMIT_NPROC in the sandbox's user namespace", "pids.max,rlimit-nproc-userns"),
            (true, false) => ("pids.max in the run's cgroup leaf", "pids.max"),
            (false, _) => ("RLIMIT_NPROC in the sandbox's user namespace (its processes and threads of the program's uid; init is one)", "rlimit-nproc-userns"),
        };
        limits.procs_enforced_by = Some(by);
        limits.procs_mechanisms = short;
    }
    Enforced {
        warm: Default::default(),
        namespaces: vec!["user", "mount", "pid", "ipc", "uts", "cgroup", "net"],
        id_map: IdMapInfo {
            mode,
            uid: p.ids.inside_uid,
            gid: p.ids.inside_gid,
            outside_uid: p.ids.outside_uid,
            outside_gid: p.ids.outside_gid,
            setgroups,
            caller_is_root: p.ids.writer == MapWriter::Launcher,
            uid_map: crate::policy::ids::map_text(&p.ids.uid_lines).trim_end().replace('\n', ", "),
            gid_map: crate::policy::ids::map_text(&p.ids.gid_lines).trim_end().replace('\n', ", "),
            subuid_range,
            subgid_range,
        },
        root: RootInfo {
            kind: "tmpfs",
            pivot_root: true,
            read_only: true,
            workdir: p.workdir.as_ref().map(|(d, _)| d.display().to_string()),
            workdir_mode: p.workdir.as_ref().map(|(_, m)| m.name()),
            operations: p.tree.len(),
            proc: if p.tree.iter().any(|m| matches!(m, MountOp::Proc { dst } if dst.as_path() == std::path::Path::new("/proc"))) { "own" } else { "none" },
            binds: p
                .tree
                .iter()
                .filter_map(|m| match m {
                    MountOp::Bind { src, dst, access, .. } => Some(BindInfo {
                        src: src.display().to_string(),
                        dst: dst.display().to_string(),
                        access: match access {
                            Access::ReadOnly => "ro",
                            Access::ReadWrite => "rw",
                            Access::Device => "dev",
                        },
                    }),
                    _ => None,
                })
                .collect(),
        },
        rlimits: p.rlimits.iter().map(|(l, v)| (l.name(), *v)).collect(),
        capabilities: "none",
        no_new_privs: true,
        new_session: p.new_session,
        landlock,
        seccomp,
        cgroup: f.cgroup.clone(),
        cgroup_leaf: f.leaf.is_some(),
        network,
        limits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::testing::{FakeFs, fake_host};

    fn policy(args: &[&str], f: impl FnOnce(&mut Request)) -> Policy {
        let mut r = Request::new(args.iter().map(Into::into).collect());
        f(&mut r);
        Policy::build(&r, &fake_host(), &FakeFs).unwrap()
    }

    fn supervised() -> Supervised {
        Supervised::default()
    }

    #[test]
    fn pre_exec_time_is_not_the_programs() {
        let p = policy(&["true"], |_| {});
        let s = Supervised { report: Some(ExitReport { utime_us: 5000, stime_us: 3000, ..Default::default() }), pre_exec_us: 1000, ..supervised() };
        let o = outcome(&p, s, Facts { filter: None, helper_args: vec![], cgroup: String::new(), leaf: None });
        match o.ending {
            crate::verdict::Ending::Ran(r) => assert_eq!((r.utime_us, r.stime_us), (5000, 2000)),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_killed_run_counts_the_larger_of_rusage_and_samples() {
        let p = policy(&["true"], |r| r.limits.time = Some(1.0));
        let s = Supervised { hit: Some(Hit::Time), max_sampled_cpu: 1.2, ..supervised() };
        let o = outcome(&p, s, Facts { filter: None, helper_args: vec![], cgroup: String::new(), leaf: None });
        assert_eq!(o.limit_hit, Some(Hit::Time));
        match o.ending {
            crate::verdict::Ending::Ran(r) => assert_eq!((r.wait_status, r.utime_us), (libc::SIGKILL, 1_200_000)),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn the_leaf_gives_peak_memory_and_oom_is_mle() {
        let p = policy(&["true"], |r| r.limits.mem = Some(crate::request::Size(64 << 20)));
        let leaf = super::super::cgroup::Usage { peak: Some(64 << 20), oom_kills: 1, ..Default::default() };
        let s = Supervised { report: Some(ExitReport { wait_status: 9, maxrss_kib: 10, ..Default::default() }), ..supervised() };
        let o = outcome(&p, s, Facts { filter: None, helper_args: vec![], cgroup: "leaf x".into(), leaf: Some(leaf) });
        assert_eq!(o.limit_hit, Some(Hit::Memory));
        assert!(matches!(o.ending, crate::verdict::Ending::Ran(r) if r.maxrss_kib == 64 << 10));
        // the limits say the leaf enforced them, not sampling
        let by = o.enforced.unwrap().limits.enforced_by.unwrap();
        assert!(by.starts_with("the kernel, in the run's cgroup leaf"), "{by}");
        let o = outcome(&p, supervised(), Facts { filter: None, helper_args: vec![], cgroup: String::new(), leaf: None });
        assert!(o.enforced.is_none());
    }
}
