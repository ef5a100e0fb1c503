//! Parent half of the whole-run limits while the program runs: with a cgroup leaf the CPU
//! time is read from the leaf (the kernel enforces memory.max); without one (the fallback,
//! as on hybrid hosts) the launcher samples the CPU time of every process of
//! the sandbox and kills the sandbox at `time + extra_time`; the wall clock is checked
//! against `wall_time`. Verdicts are judged against `time` and `wall_time` from init's final
//! accounting. Sampling is approximate (the reaped processes' CPU is counted in 10 ms clock
//! ticks until the end), and the verdict says so.
//!
//! CPU time cannot grow faster than (CPUs × wall time), so the launcher sleeps until the
//! earliest moment the limit could be reached, samples, and repeats: no busy polling.

use crate::policy::limits::{Hit, TimeLimits};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().map(|v| v as f64).filter(|v| *v > 0.0).unwrap_or(100.0)
}

/// What the sandbox whose init is `init` uses right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds: every live process below init (exact, from schedstat) plus everything
    /// init has reaped (its cutime + cstime, in clock ticks).
    pub cpu: f64,
    /// Resident bytes of every live process below init (VmRSS; shared pages are counted once
    /// per process, so this errs on the high side).
    pub rss: u64,
}

/// One walk over the sandbox's process tree (through /proc/PID/task/TID/children). With
/// `memfd`, the space of every memfd file a process holds open counts too (once per file):
/// its pages are resident memory no VmRSS shows until they are mapped.
pub fn sandbox_usage(init: Pid, memfd: bool) -> Usage {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as u64;
    let mut u = Usage::default();
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{init}/stat")) {
        if let Some(after) = stat.rsplit_once(')').map(|x| x.1) {
            let f: Vec<&str> = after.split_whitespace().collect();
            // fields 16 and 17 of stat (cutime, cstime) are 13 and 14 after the name
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            u.cpu += (t(13) + t(14)) / ticks_per_second();
        }
    }
    let mut stack = vec![init];
    let mut seen = 0usize;
    let mut files = Vec::new();
    while let Some(pid) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for t in tasks.flatten() {
            if let Ok(kids) = std::fs::read_to_string(t.path().join("children")) {
                stack.extend(kids.split_whitespace().filter_map(|k| k.parse().ok()).map(Pid::from_raw));
            }
            if pid != init {
                if let Ok(ss) = std::fs::read_to_string(t.path().join("schedstat")) {
                    u.cpu += ss.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 1e9;
                }
            }
        }
        if pid != init {
            if let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) {
                u.rss += statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * page;
            }
            if memfd {
                u.rss += memfd_bytes(pid, &mut files);
            }
        }
    }
    u
}

/// Bytes allocated to the memfd files `pid` holds open that were not counted yet.
fn memfd_bytes(pid: Pid, seen: &mut Vec<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let mut n = 0;
    for fd in fds.flatten() {
        let is_memfd = std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str().as_encoded_bytes().starts_with(b"/memfd:"));
        if !is_memfd {
            continue;
        }
        if let Ok(m) = std::fs::metadata(fd.path()) {
            if !seen.contains(&(m.dev(), m.ino())) && seen.len() < 100_000 {
                seen.push((m.dev(), m.ino()));
                n += m.blocks() * 512;
            }
        }
    }
    n
}

/// How often the memory of the run is sampled (there is no bound on how fast it grows).
pub const MEM_SAMPLE: Duration = Duration::from_millis(10);

/// The launcher's view of the limits during a run.
#[derive(Debug)]
pub struct Watch {
    limits: TimeLimits,
    cpus: f64,
    /// When the run was due (supervision began): the clock until the program has started,
    /// so a program's process that never reaches execve is still bound by the limits.
    due: Instant,
    started: Option<Instant>,
    pub hit: Option<Hit>,
    pub max_sampled_cpu: f64,
    /// Largest resident memory of the whole run seen by sampling (bytes).
    pub max_sampled_rss: u64,
    /// CPU time comes from the run's cgroup (exact) and the kernel enforces memory.max.
    cgroup: bool,
    /// The leaf's CPU usage when the program started (init's own setup work), subtracted.
    cg_base: Option<f64>,
    pre_exec: f64,
}

impl Watch {
    pub fn new(limits: TimeLimits) -> Watch {
        let cpus = nix::sched::sched_getaffinity(Pid::from_raw(0))
            .map(|set| (0..nix::sched::CpuSet::count()).filter(|c| set.is_set(*c).unwrap_or(false)).count())
            .unwrap_or(1)
            .max(1) as f64;
        Watch { limits, cpus, due: Instant::now(), started: None, hit: None, max_sampled_cpu: 0.0, max_sampled_rss: 0, cgroup: false, cg_base: None, pre_exec: 0.0 }
    }

    /// CPU seconds the program's process spent in ward's steps before execve: not counted.
    pub fn set_pre_exec(&mut self, secs: f64) {
        self.pre_exec = secs;
    }

    /// The leaf's CPU usage (µs) when the program started.
    pub fn cgroup_baseline_us(&self) -> f64 {
        self.cg_base.unwrap_or(0.0) * 1e6
    }

    /// The run has a cgroup leaf: read CPU time from it, leave memory to memory.max.
    pub fn use_cgroup(&mut self) {
        self.cgroup = true;
    }

    /// The program started now (init reports it once the program's process has exec'd,
    /// after that process's `PreExec`); with a cgroup, `leaf` gives the baseline to subtract:
    /// what the leaf used before, less ward's own steps in the program's process, which the
    /// account subtracts itself.
    pub fn start(&mut self, leaf: Option<&super::cgroup::Leaf>) {
        self.started.get_or_insert_with(Instant::now);
        if let Some(l) = leaf {
            self.cg_base.get_or_insert((l.usage().usage_usec as f64 / 1e6 - self.pre_exec).max(0.0));
        }
    }

    /// Where the wall clock counts from: the program's start, or until then when the run was
    /// due.
    fn clock(&self) -> Instant {
        self.started.unwrap_or(self.due)
    }

    /// The program has started (init reported it).
    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// Wall time on the clock (see `clock`).
    pub fn elapsed(&self) -> Duration {
        self.clock().elapsed()
    }

    /// How long the launcher may sleep before the next check (None: no limit to watch).
    pub fn timeout(&self) -> Option<Duration> {
        let started = self.clock();
        let mut next: Option<f64> = None;
        if let Some(w) = self.limits.wall_time {
            next = Some(w - started.elapsed().as_secs_f64());
        }
        if let Some(t) = self.limits.time {
            // CPU time grows at most `cpus` seconds per second of wall time.
            let left = (t + self.limits.extra_time - self.max_sampled_cpu) / self.cpus;
            next = Some(next.map_or(left, |n| n.min(left)));
        }
        if self.limits.mem.is_some() && !self.cgroup {
            let m = MEM_SAMPLE.as_secs_f64();
            next = Some(next.map_or(m, |n| n.min(m)));
        }
        next.map(|s| Duration::from_secs_f64(s.clamp(0.001, 3600.0)))
    }

    /// Check the limits now; returns the limit to kill for, if one was reached.
    pub fn check(&mut self, init: Pid, leaf: Option<&super::cgroup::Leaf>) -> Option<Hit> {
        let started = self.clock();
        let wall_over = self.limits.wall_time.is_some_and(|w| started.elapsed().as_secs_f64() >= w);
        if self.limits.mem.is_none() && self.limits.time.is_none() {
            if wall_over {
                self.hit = Some(Hit::WallTime);
            }
            return self.hit;
        }
        let u = match leaf {
            Some(l) => {
                let now = l.usage().usage_usec as f64 / 1e6;
                let base = *self.cg_base.get_or_insert(now);
                Usage { cpu: now - base, rss: 0 }
            }
            None => sandbox_usage(init, self.limits.mem.is_some()),
        };
        self.max_sampled_rss = self.max_sampled_rss.max(u.rss);
        self.max_sampled_cpu = self.max_sampled_cpu.max(u.cpu - self.pre_exec);
        if self.limits.mem.is_some_and(|m| self.max_sampled_rss > m) {
            self.hit = Some(Hit::Memory);
            return self.hit;
        }
        if let Some(t) = self.limits.time {
            if self.max_sampled_cpu >= t + self.limits.extra_time {
                self.hit = Some(Hit::Time);
                return self.hit;
            }
        }
        // CPU was sampled first: a run over both limits is a time limit, not a wall one
        if wall_over {
            self.hit = Some(Hit::WallTime);
        }
        self.hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_limit_could_be_reached() {
        let mut w = Watch::new(TimeLimits::new(Some(2.0), None, Some(0.0), None, None).unwrap());
        w.cpus = 2.0;
        // not started yet: the limits are watched from when the run was due
        let t = w.timeout().unwrap().as_secs_f64();
        assert!((0.99..=1.0).contains(&t), "{t}");
        w.start(None);
        let t = w.timeout().unwrap().as_secs_f64();
        assert!((0.99..=1.0).contains(&t), "{t}");
        w.max_sampled_cpu = 1.5;
        assert!((w.timeout().unwrap().as_secs_f64() - 0.25).abs() < 0.01);
    }

    /// A program's process that never reaches execve (no Started) is killed at the wall limit.
    #[test]
    fn a_program_that_never_starts_is_still_bound_by_the_wall_limit() {
        let mut w = Watch::new(TimeLimits::new(None, Some(0.05), None, None, None).unwrap());
        assert!(w.timeout().is_some_and(|t| t <= Duration::from_millis(50)));
        assert_eq!(w.check(Pid::from_raw(1), None), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(w.check(Pid::from_raw(1), None), Some(Hit::WallTime));
    }
}
