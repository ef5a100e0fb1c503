//! The outcome of one run as a status class and one machine-readable JSON object (schema
//! `ward.verdict/1`, documented in README.md), plus the process exit code ward returns.

use crate::error::Error;
use crate::policy::{IdMap, Policy, WorkdirMode};
use crate::sync::{ExitReport, Stage};
use serde::Serialize;
use std::collections::BTreeMap;

pub const SCHEMA: &str = "ward.verdict/1";

/// Exit code when ward failed before the program started.
pub const EXIT_SANDBOX_FAILED: i32 = 125;
/// Exit code when the program was found but could not be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the program does not exist inside the sandbox.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Status classes, in precedence order (the first that applies wins): a sandbox failure is
/// never blamed on the program; limits (once cgroups land) come before how the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Sandbox failure: ward could not run the program as asked.
    XX,
    /// Killed for a denied system call (kill-on-deny profiles).
    SYS,
    /// CPU time limit exceeded.
    TLE,
    /// Wall-clock limit exceeded.
    WLE,
    /// Memory limit exceeded.
    MLE,
    /// Output or file-size limit exceeded.
    OLE,
    /// Killed by a signal.
    SG,
    /// Exited with a non-zero status.
    RE,
    /// Exited with status 0.
    OK,
}

/// How the run ended.
#[derive(Debug)]
pub enum Ending {
    /// The program ran; init's report.
    Ran(ExitReport),
    /// ward failed before the program started (including exec failures).
    NotStarted(Error),
}

/// What was really in force for a run, from the policy that was applied.
#[derive(Debug, Clone, Serialize)]
pub struct Enforced {
    pub namespaces: Vec<&'static str>,
    pub id_map: IdMapInfo,
    pub root: RootInfo,
    pub rlimits: BTreeMap<&'static str, Option<u64>>,
    pub capabilities: &'static str,
    pub no_new_privs: bool,
    pub new_session: bool,
    pub landlock: serde_json::Value,
    pub seccomp: serde_json::Value,
    pub cgroup: String,
    pub network: serde_json::Value,
    /// Time limits and how they were enforced.
    pub limits: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdMapInfo {
    pub mode: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub outside_uid: u32,
    pub outside_gid: u32,
    pub setgroups: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subuid_range: Option<(u32, u32)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subgid_range: Option<(u32, u32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootInfo {
    pub kind: &'static str,
    pub pivot_root: bool,
    pub read_only: bool,
    pub workdir: Option<String>,
    pub workdir_mode: Option<&'static str>,
    pub operations: usize,
}

impl Enforced {
    pub fn from_policy(p: &Policy) -> Enforced {
        let (mode, setgroups, subuid_range, subgid_range) = match &p.ids.map {
            IdMap::Single => ("single", "deny", None, None),
            IdMap::Ranges { uid_start, uid_count, gid_start, gid_count } => {
                ("ranges", "allow", Some((*uid_start, *uid_count)), Some((*gid_start, *gid_count)))
            }
        };
        Enforced {
            namespaces: vec!["user", "mount", "pid", "ipc", "uts", "cgroup", "net"],
            id_map: IdMapInfo {
                mode,
                uid: p.ids.inside_uid,
                gid: p.ids.inside_gid,
                outside_uid: p.ids.outside_uid,
                outside_gid: p.ids.outside_gid,
                setgroups,
                subuid_range,
                subgid_range,
            },
            root: RootInfo {
                kind: "tmpfs",
                pivot_root: true,
                read_only: true,
                workdir: p.workdir.as_ref().map(|(d, _)| d.display().to_string()),
                workdir_mode: p.workdir.as_ref().map(|(_, m)| match m {
                    WorkdirMode::ReadWrite => "rw",
                    WorkdirMode::ReadOnly => "ro",
                    WorkdirMode::Overlay => "overlay",
                }),
                operations: p.tree.len(),
            },
            rlimits: p.rlimits.iter().map(|(l, v)| (l.name(), *v)).collect(),
            capabilities: "none",
            no_new_privs: true,
            new_session: p.new_session,
            landlock: landlock_info(&p.landlock),
            seccomp: serde_json::Value::Null,
            cgroup: format!("unavailable ({}); cpu time and peak memory come from rusage", p.cgroup_unavailable),
            limits: if p.limits.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({
                    "time": p.limits.time,
                    "wall_time": p.limits.wall_time,
                    "extra_time": p.limits.extra_time,
                    "mem": p.limits.mem,
                    "output": p.limits.output,
                    "enforced_by": "the launcher, sampling the sandbox's processes (approximate: no cgroup; CPU killed at time + extra_time and judged against time; memory is the sum of the processes' resident sets, sampled every 10 ms)",
                })
            },
            network: crate::net::info(p.net.as_ref(), None),
        }
    }
}

/// The JSON verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub schema: &'static str,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub signal_name: Option<String>,
    pub wall_time_ms: f64,
    pub cpu_time_ms: f64,
    pub cpu_user_ms: f64,
    pub cpu_system_ms: f64,
    pub max_rss_kib: u64,
    pub csw_voluntary: u64,
    pub csw_forced: u64,
    pub limit_hit: Option<&'static str>,
    pub blocked: Vec<crate::seccomp::Blocked>,
    pub message: String,
    /// The exit code ward itself returns for this run.
    pub ward_exit_code: i32,
    pub enforced: Option<Enforced>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("SIG{sig}"))
}

impl Verdict {
    pub fn new(ending: &Ending, enforced: Option<Enforced>) -> Verdict {
        let mut v = Verdict {
            schema: SCHEMA,
            status: Status::XX,
            exit_code: None,
            signal: None,
            signal_name: None,
            wall_time_ms: 0.0,
            cpu_time_ms: 0.0,
            cpu_user_ms: 0.0,
            cpu_system_ms: 0.0,
            max_rss_kib: 0,
            csw_voluntary: 0,
            csw_forced: 0,
            limit_hit: None,
            blocked: Vec::new(),
            message: String::new(),
            ward_exit_code: EXIT_SANDBOX_FAILED,
            enforced: None,
        };
        match ending {
            Ending::Ran(r) => {
                let st = r.wait_status;
                v.wall_time_ms = ms(r.wall_ns / 1000);
                v.cpu_user_ms = ms(r.utime_us);
                v.cpu_system_ms = ms(r.stime_us);
                v.cpu_time_ms = ms(r.utime_us + r.stime_us);
                v.max_rss_kib = r.maxrss_kib;
                v.csw_voluntary = r.nvcsw;
                v.csw_forced = r.nivcsw;
                v.enforced = enforced;
                if st & 0x7f == 0 {
                    let code = (st >> 8) & 0xff;
                    v.exit_code = Some(code);
                    v.ward_exit_code = code;
                    if code == 0 {
                        v.status = Status::OK;
                    } else {
                        v.status = Status::RE;
                        v.message = format!("Exited with error status {code}");
                    }
                } else {
                    let sig = st & 0x7f;
                    v.signal = Some(sig);
                    v.signal_name = Some(signal_name(sig));
                    v.status = Status::SG;
                    v.ward_exit_code = 128 + sig;
                    v.message = format!("Caught fatal signal {sig} ({})", signal_name(sig));
                }
            }
            Ending::NotStarted(e) => {
                v.message = e.to_string();
                v.ward_exit_code = exit_code_for(e);
            }
        }
        v
    }

    /// Judge the run against its time limits (TLE before WLE; never over XX or SYS).
    pub fn with_limits(mut self, l: &crate::limits::TimeLimits, hit: Option<crate::limits::Hit>) -> Verdict {
        use crate::limits::Hit;
        if matches!(self.status, Status::XX | Status::SYS) {
            return self;
        }
        let over_time = l.time.is_some_and(|t| self.cpu_time_ms / 1000.0 > t) || hit == Some(Hit::Time);
        let over_wall = l.wall_time.is_some_and(|w| self.wall_time_ms / 1000.0 > w) || hit == Some(Hit::WallTime);
        let over_mem = l.mem.is_some_and(|m| self.max_rss_kib * 1024 > m) || hit == Some(Hit::Memory);
        if over_time {
            self.status = Status::TLE;
            self.limit_hit = Some("time");
            self.message = "Time limit exceeded".into();
        } else if over_wall {
            self.status = Status::WLE;
            self.limit_hit = Some("wall-time");
            self.message = "Time limit exceeded (wall clock)".into();
        } else if over_mem {
            self.status = Status::MLE;
            self.limit_hit = Some("memory");
            self.message = "Memory limit exceeded".into();
        } else if l.output.is_some() && self.signal == Some(nix::libc::SIGXFSZ) {
            self.status = Status::OLE;
            self.limit_hit = Some("output");
            self.message = "Output limit exceeded".into();
        }
        self
    }

    /// Add what the seccomp supervisor saw; a kill-on-deny run becomes SYS.
    pub fn with_blocked(mut self, blocked: Vec<crate::seccomp::Blocked>, killed_for_syscall: bool) -> Verdict {
        if killed_for_syscall && self.status != Status::XX {
            let name = blocked.first().map(|b| b.syscall.clone()).unwrap_or_default();
            self.status = Status::SYS;
            self.exit_code = None;
            self.signal = Some(nix::libc::SIGSYS);
            self.signal_name = Some("SIGSYS".into());
            self.ward_exit_code = 128 + nix::libc::SIGSYS;
            self.limit_hit = Some("syscall");
            self.message = format!("Denied system call {name} (the profile kills on a denied call)");
        }
        self.blocked = blocked;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"schema\":\"{SCHEMA}\",\"status\":\"XX\",\"message\":\"verdict: {e}\"}}"))
    }
}

/// What the verdict says about Landlock.
pub fn landlock_info(s: &crate::policy::LandlockState) -> serde_json::Value {
    match s {
        crate::policy::LandlockState::On(p) => serde_json::json!({
            "enabled": true,
            "abi": p.abi,
            "requested_abi": p.requested_abi,
            "kernel_abi": p.kernel_abi,
            "status": if p.abi == p.requested_abi { "fully enforced" } else { "partially enforced (optional features the kernel lacks were dropped)" },
            "dropped": crate::landlock::FEATURES.iter().filter(|(a, _, _)| *a > p.abi && *a <= p.requested_abi).map(|(_, w, _)| *w).collect::<Vec<_>>(),
            "scopes": if p.abi >= 6 { vec!["abstract_unix_socket", "signal"] } else { vec![] },
            "tcp_connect_ports": if p.connect_ports.is_empty() { serde_json::json!("any") } else { serde_json::json!(p.connect_ports) },
            "tcp_bind_ports": if p.bind_ports.is_empty() { serde_json::json!("any") } else { serde_json::json!(p.bind_ports) },
            "rules": p.rules.iter().map(|(path, r)| serde_json::json!({"path": path, "rights": r})).collect::<Vec<_>>(),
        }),
        crate::policy::LandlockState::Off(why) => serde_json::json!({ "enabled": false, "reason": why }),
    }
}

/// What the verdict says about seccomp.
pub fn seccomp_info(p: Option<&crate::seccomp::SeccompPolicy>, f: Option<&crate::seccomp::Filter>) -> serde_json::Value {
    match (p, f) {
        (Some(p), Some(f)) => serde_json::json!({
            "enabled": true,
            "architectures": [std::env::consts::ARCH],
            "other_architectures": "kill",
            "allowed_syscalls": f.allowed,
            "denied_syscalls": f.denied,
            "denied_action": match p.on_deny { crate::seccomp::OnDeny::Errno => "errno (EPERM; EAFNOSUPPORT for socket families), reported by the launcher", crate::seccomp::OnDeny::Kill => "kill the sandbox (SYS), reported by the launcher" },
            "unknown_syscalls": "ENOSYS (answered by the launcher)",
            "clone3": "ENOSYS",
            "instructions": f.bpf.len() / 8,
            "from_cache": f.from_cache,
        }),
        _ => serde_json::json!({ "enabled": false }),
    }
}

/// The documented exit code for a failure before the program started.
pub fn exit_code_for(e: &Error) -> i32 {
    match e {
        Error::Child { stage: Stage::Exec, errno, .. } => match errno {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => EXIT_NOT_FOUND,
            _ => EXIT_NOT_EXECUTABLE,
        },
        _ => EXIT_SANDBOX_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(st: i32) -> Verdict {
        Verdict::new(&Ending::Ran(ExitReport { wait_status: st, wall_ns: 1_500_000, utime_us: 700, stime_us: 300, ..Default::default() }), None)
    }

    #[test]
    fn classes_and_exit_codes() {
        let ok = ran(0);
        assert_eq!((ok.status, ok.exit_code, ok.ward_exit_code), (Status::OK, Some(0), 0));
        assert_eq!(ok.wall_time_ms, 1.5);
        assert_eq!(ok.cpu_time_ms, 1.0);
        let re = ran(42 << 8);
        assert_eq!((re.status, re.exit_code, re.ward_exit_code), (Status::RE, Some(42), 42));
        assert_eq!(re.message, "Exited with error status 42");
        let sg = ran(11 | 0x80);
        assert_eq!((sg.status, sg.signal, sg.ward_exit_code), (Status::SG, Some(11), 139));
        assert_eq!(sg.signal_name.as_deref(), Some("SIGSEGV"));
        let nf = Verdict::new(
            &Ending::NotStarted(Error::Child { stage: Stage::Exec, errno: nix::errno::Errno::ENOENT, what: "execve(x)".into(), fix: String::new() }),
            None,
        );
        assert_eq!((nf.status, nf.ward_exit_code), (Status::XX, 127));
        let json: serde_json::Value = serde_json::from_str(&ok.to_json()).unwrap();
        assert_eq!(json["schema"], "ward.verdict/1");
        assert_eq!(json["status"], "OK");
    }
}
