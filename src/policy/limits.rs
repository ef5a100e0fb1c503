//! Whole-run limits, validated: what the verdict is judged against (CPU and wall time,
//! memory, output), the limits of the run's cgroup leaf, and whether the run needs a leaf.
//! Enforcing them is the launcher's (`launcher::cgroup`, `launcher::watch`).

use crate::error::{Error, Result};
use crate::host::{NoCgroup, Subtree};

/// Time, memory and output limits of a run, validated.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct TimeLimits {
    /// CPU seconds of the whole tree; the verdict is TLE above it.
    pub time: Option<f64>,
    /// Wall-clock seconds; the verdict is WLE above it.
    pub wall_time: Option<f64>,
    /// Grace before killing for CPU time: killed at time + extra_time, judged against time.
    pub extra_time: f64,
    /// Resident memory of the whole run in bytes; the verdict is MLE above it.
    pub mem: Option<u64>,
    /// Largest file (RLIMIT_FSIZE); a run ended by SIGXFSZ under it is OLE.
    pub output: Option<u64>,
}

impl TimeLimits {
    pub fn new(time: Option<f64>, wall_time: Option<f64>, extra_time: Option<f64>, mem: Option<u64>, output: Option<u64>) -> Result<TimeLimits> {
        if mem.is_some_and(|m| m < 1 << 20) {
            return Err(Error::invalid(format!("--mem {}: less than 1 MiB", mem.unwrap_or(0)), "give a size such as 256M"));
        }
        for (what, v) in [("--time", time), ("--wall-time", wall_time), ("--extra-time", extra_time)] {
            if let Some(v) = v {
                if !v.is_finite() || !(0.0..=1e7).contains(&v) || (v == 0.0 && what != "--extra-time") {
                    return Err(Error::invalid(format!("{what} {v}: not a usable number of seconds"), "give a positive number, e.g. 1.5"));
                }
            }
        }
        if extra_time.is_some() && time.is_none() {
            return Err(Error::invalid("--extra-time without --time: there is no CPU limit to extend", "add --time SECONDS"));
        }
        Ok(TimeLimits { time, wall_time, extra_time: extra_time.unwrap_or(0.0), mem, output })
    }

    pub fn is_empty(&self) -> bool {
        self.time.is_none() && self.wall_time.is_none() && self.mem.is_none()
    }
}

/// What ended the run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Time,
    WallTime,
    Memory,
}

/// Limits applied in the run's cgroup leaf.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgLimits {
    pub mem: Option<u64>,
    pub procs: Option<u64>,
    pub cpus: Option<f64>,
}

/// Whether the run must have a cgroup leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupNeed {
    /// Without a leaf the run is refused; the option that requires it.
    Required(&'static str),
    /// A leaf is used when one can be had; otherwise the limits are sampled.
    Preferred,
}

/// Where the run's leaf comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSource {
    /// The caller's own delegated subtree.
    Delegated(Subtree),
    /// The caller's cgroup is not delegated (why), but the systemd user manager can be asked
    /// for a scope with Delegate=yes over the session bus (by the launcher, before clone).
    FromSystemd(NoCgroup),
    /// No leaf can be had (why).
    Unavailable(NoCgroup),
}

/// The cgroup part of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupPlan {
    pub need: CgroupNeed,
    pub source: CgroupSource,
    pub limits: CgLimits,
}

impl CgroupPlan {
    /// What a run with the cgroup leaf enforces the limits with, or, without it, how.
    pub fn enforced_by(leaf: bool) -> &'static str {
        if leaf {
            "the kernel, in the run's cgroup leaf (CPU time from cpu.stat, killed at time + extra_time and judged against time; memory.max, peak from memory.peak)"
        } else {
            "the launcher, sampling the sandbox's processes (approximate: no cgroup; CPU killed at time + extra_time and judged against time; memory is the sum of the processes' resident sets and the memfd files they hold, sampled every 10 ms; /tmp, /dev/shm and other tmpfs are each capped at the limit, and SysV shared memory (shmget) is denied by the filter)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(TimeLimits::new(Some(0.0), None, None, None, None).is_err());
        assert!(TimeLimits::new(Some(f64::NAN), None, None, None, None).is_err());
        assert!(TimeLimits::new(None, Some(-1.0), None, None, None).is_err());
        assert!(TimeLimits::new(None, None, Some(0.5), None, None).unwrap_err().to_string().contains("--extra-time without --time"));
        assert!(TimeLimits::new(None, None, None, Some(1000), None).unwrap_err().to_string().contains("less than 1 MiB"));
        let l = TimeLimits::new(Some(1.0), Some(2.0), Some(0.5), None, None).unwrap();
        assert_eq!((l.time, l.wall_time, l.extra_time), (Some(1.0), Some(2.0), 0.5));
    }
}
