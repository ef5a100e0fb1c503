//! The outcome of one run as a status class and one machine-readable JSON object (schema
//! `ward.verdict/1`, documented in README.md), plus the process exit code ward returns.

use crate::error::Error;
use crate::policy::limits::{Hit, TimeLimits};
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

/// What was really in force for a run (built by `launcher::account`).
#[derive(Debug, Clone, Serialize)]
pub struct Enforced {
    pub namespaces: Vec<&'static str>,
    pub id_map: IdMapInfo,
    pub root: RootInfo,
    pub rlimits: BTreeMap<&'static str, Option<u64>>,
    pub capabilities: &'static str,
    pub no_new_privs: bool,
    pub new_session: bool,
    pub landlock: LandlockInfo,
    pub seccomp: SeccompInfo,
    pub cgroup: String,
    /// The run had its own cgroup leaf (what `cgroup` says in words).
    #[serde(skip)]
    pub cgroup_leaf: bool,
    pub network: NetworkInfo,
    /// Time limits and how they were enforced.
    pub limits: LimitsInfo,
    /// Whether the run joined a warm sandbox, and if not, why.
    pub warm: WarmInfo,
}

/// A warm run shares the keeper's user (or has its own below it), mount (copied) and network
/// namespaces and gets `fresh` anew; `cloned_ahead`: a batch cloned its init while the run
/// before it went on; `why_not` says why a run that could have been warm was fresh.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmInfo {
    pub used: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keeper_pid: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cloned_ahead: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fresh: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdMapInfo {
    pub mode: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub outside_uid: u32,
    pub outside_gid: u32,
    pub setgroups: &'static str,
    /// The launcher ran as root: it wrote the maps, and no id inside is host 0.
    pub caller_is_root: bool,
    /// The maps as written (`inside outside count`, lines joined by ", ").
    pub uid_map: String,
    pub gid_map: String,
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
    /// The sandbox's /proc: "own" (a fresh procfs of its pid namespace, with runc's masks),
    /// or "none" (asked for with --no-proc / tree.no_proc: an empty directory).
    pub proc: &'static str,
    /// Every bind as mounted: the host source (canonical, opened without following a link)
    /// and where it appears.
    pub binds: Vec<BindInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BindInfo {
    pub src: String,
    pub dst: String,
    /// "ro", "rw" or "dev".
    pub access: &'static str,
}

/// TCP ports Landlock restricts: "any", or the allowed ones.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Ports {
    Any(&'static str),
    Only(Vec<u16>),
}

impl Ports {
    pub fn of(p: &[u16]) -> Ports {
        if p.is_empty() { Ports::Any("any") } else { Ports::Only(p.to_vec()) }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LandlockRule {
    pub path: std::path::PathBuf,
    pub rights: crate::policy::landlock::Rights,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LandlockInfo {
    On {
        enabled: bool,
        abi: u8,
        requested_abi: u8,
        kernel_abi: u8,
        status: &'static str,
        dropped: Vec<&'static str>,
        scopes: Vec<&'static str>,
        tcp_connect_ports: Ports,
        tcp_bind_ports: Ports,
        rules: Vec<LandlockRule>,
    },
    Off {
        enabled: bool,
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SeccompInfo {
    On {
        enabled: bool,
        architectures: [&'static str; 1],
        other_architectures: &'static str,
        allowed_syscalls: usize,
        denied_syscalls: usize,
        denied_action: &'static str,
        unknown_syscalls: &'static str,
        clone3: &'static str,
        /// What was really loaded.
        instructions: usize,
        from_cache: bool,
    },
    Off {
        enabled: bool,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum NetworkInfo {
    Loopback {
        mode: &'static str,
        interfaces: [&'static str; 1],
        host_loopback: bool,
    },
    Helper {
        mode: &'static str,
        helper: std::path::PathBuf,
        options: Vec<String>,
        mtu: u32,
        host_loopback: bool,
        dns: std::net::IpAddr,
        publish: Vec<crate::policy::net::Publish>,
        allow_connect: Vec<u16>,
        allow_bind: Vec<u16>,
    },
}

/// The whole-run limits and what enforced them (empty when there are none).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LimitsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced_by: Option<&'static str>,
    /// --procs, and what enforced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procs_enforced_by: Option<&'static str>,
    /// The same as the meta file's tokens (`pids.max`, `rlimit-nproc-userns`, comma-joined).
    #[serde(skip)]
    pub procs_mechanisms: &'static str,
}

/// One denied call as the verdict reports it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Blocked {
    pub syscall: String,
    pub count: u64,
    /// The first three arguments of the first occurrence.
    pub args: [u64; 3],
    pub errno: String,
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
    pub blocked: Vec<Blocked>,
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
    pub fn with_limits(mut self, l: &TimeLimits, hit: Option<Hit>) -> Verdict {
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
    pub fn with_blocked(mut self, blocked: Vec<Blocked>, killed_for_syscall: bool) -> Verdict {
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

/// isolate's meta file for a verdict (`cg`: isolate's control-group mode, which adds
/// cg-mem and cg-oom-killed).
pub fn meta_cg(v: &Verdict, cg: bool) -> String {
    let mut m = meta(v);
    if cg {
        let extra = format!("cg-mem:{}\n{}", v.max_rss_kib, if v.status == Status::MLE { "cg-oom-killed:1\n" } else { "" });
        let at = m.find("exitcode:").or_else(|| m.find("exitsig:")).or_else(|| m.find("killed:")).or_else(|| m.find("message:")).unwrap_or(m.len());
        m.insert_str(at, &extra);
    }
    m
}

/// isolate's meta file for a verdict.
pub fn meta(v: &Verdict) -> String {
    let mut m = format!("time:{:.3}\ntime-wall:{:.3}\nmax-rss:{}\ncsw-voluntary:{}\ncsw-forced:{}\n", v.cpu_time_ms / 1000.0, v.wall_time_ms / 1000.0, v.max_rss_kib, v.csw_voluntary, v.csw_forced);
    // ward's own key (readers of isolate's format skip keys they do not know): what held the
    // process limit, pids.max and/or RLIMIT_NPROC in the sandbox's user namespace
    if let Some(l) = v.enforced.as_ref().map(|e| &e.limits).filter(|l| l.procs.is_some()) {
        m.push_str(&format!("procs-limit:{} {}\n", l.procs.unwrap_or(0), l.procs_mechanisms));
    }
    // killed by the sandbox: a limit or a denied call ended it (a TLE judged after a normal
    // exit, within --extra-time, was not killed)
    let killed = match v.status {
        Status::TLE | Status::WLE | Status::MLE => v.exit_code.is_none(),
        Status::SYS => true,
        _ => false,
    };
    if let Some(c) = v.exit_code {
        m.push_str(&format!("exitcode:{c}\n"));
    }
    if let Some(s) = v.signal.filter(|_| !matches!(v.status, Status::TLE | Status::WLE)) {
        m.push_str(&format!("exitsig:{s}\n"));
    }
    if killed {
        m.push_str("killed:1\n");
    }
    let (status, message) = match v.status {
        Status::OK => (None, None),
        Status::RE => (Some("RE"), Some(v.message.clone())),
        Status::SG => (Some("SG"), Some(format!("Caught fatal signal {}", v.signal.unwrap_or(0)))),
        Status::TLE | Status::WLE => (Some("TO"), Some(v.message.clone())),
        Status::SYS => (Some("SG"), Some(v.message.clone())),
        // isolate reports a cgroup OOM kill as a signal death (SIGKILL) with cg-oom-killed
        Status::MLE | Status::OLE => (Some("SG"), Some(v.message.clone())),
        Status::XX => (Some("XX"), Some(v.message.clone())),
    };
    if let Some(msg) = message {
        m.push_str(&format!("message:{msg}\n"));
    }
    if let Some(s) = status {
        m.push_str(&format!("status:{s}\n"));
    }
    m
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
