//! Profiles: what a judge, a CI job or a developer wants, in a TOML file instead of a long
//! command line. serde types mirror profiles/*.toml (unknown keys are errors); `extends`
//! inherits a profile and overrides it: scalars replace, lists append. A profile becomes
//! `Options` (`Profile::to_options`), which the command line then overrides; `Policy::build`
//! validates the result before anything runs.

use crate::error::{Error, Result};
use crate::policy::{LandlockOptions, Limit, MountSpec, Options, SeccompOptions, Workdir, WorkdirMode, parse_limit, parse_size};
use crate::seccomp::OnDeny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in profiles: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../profiles/default.toml")),
    ("judge", include_str!("../profiles/judge.toml")),
    ("ci", include_str!("../profiles/ci.toml")),
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(default)]
    pub tree: Tree,
    #[serde(default)]
    pub process: Process,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub landlock: Landlock,
    #[serde(default)]
    pub seccomp: Seccomp,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    pub src: String,
    pub dst: String,
    /// Skip the bind when the source does not exist (caches that may not be there yet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TmpfsSpec {
    pub dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SymlinkSpec {
    pub target: String,
    pub dst: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmp_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_pts: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ro_bind: Vec<Bind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<Bind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<TmpfsSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overlay: Vec<Bind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlink: Vec<SymlinkSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dir: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Process {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_ranges: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_session: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
    #[serde(default)]
    pub rlimits: Rlimits,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rlimits {
    #[serde(rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsize: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nofile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nproc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
}

/// Whole-tree limits through cgroups: reserved; this version refuses any value here rather
/// than pretend to enforce it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Refuse to run without a cgroup leaf (exact, kernel-enforced limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_cgroup: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_host_loopback: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_connect: Vec<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_bind: Vec<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Landlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abi: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_ptrace: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_deny: Option<OnDeny>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_denied: Option<bool>,
}

fn merge_opt<T: Clone>(base: &mut Option<T>, over: &Option<T>) {
    if over.is_some() {
        *base = over.clone();
    }
}

impl Profile {
    /// Parse one profile's text; `origin` names it in errors (with line and key).
    pub fn parse(origin: &str, text: &str) -> Result<Profile> {
        toml::from_str(text).map_err(|e| {
            let msg = e.to_string().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
            Error::invalid(format!("profile {origin}: {msg}"), "see profiles/README.md for the keys")
        })
    }

    /// `self` on top of `base` (scalars replace, lists append).
    fn over(mut base: Profile, o: &Profile) -> Profile {
        merge_opt(&mut base.description, &o.description);
        base.extends = None;
        let (t, ot) = (&mut base.tree, &o.tree);
        merge_opt(&mut t.workdir, &ot.workdir);
        merge_opt(&mut t.workdir_mode, &ot.workdir_mode);
        merge_opt(&mut t.chdir, &ot.chdir);
        merge_opt(&mut t.tmp_size, &ot.tmp_size);
        merge_opt(&mut t.dev_pts, &ot.dev_pts);
        t.ro_bind.extend(ot.ro_bind.iter().cloned());
        t.bind.extend(ot.bind.iter().cloned());
        t.tmpfs.extend(ot.tmpfs.iter().cloned());
        t.overlay.extend(ot.overlay.iter().cloned());
        t.symlink.extend(ot.symlink.iter().cloned());
        t.dir.extend(ot.dir.iter().cloned());
        let (p, op) = (&mut base.process, &o.process);
        merge_opt(&mut p.uid, &op.uid);
        merge_opt(&mut p.gid, &op.gid);
        merge_opt(&mut p.map_ranges, &op.map_ranges);
        merge_opt(&mut p.hostname, &op.hostname);
        merge_opt(&mut p.keep_session, &op.keep_session);
        p.env.extend(op.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        p.pass_env.extend(op.pass_env.iter().cloned());
        let (r, or) = (&mut p.rlimits, &op.rlimits);
        for (a, b) in [
            (&mut r.as_, &or.as_),
            (&mut r.fsize, &or.fsize),
            (&mut r.nofile, &or.nofile),
            (&mut r.nproc, &or.nproc),
            (&mut r.cpu, &or.cpu),
            (&mut r.stack, &or.stack),
            (&mut r.core, &or.core),
        ] {
            merge_opt(a, b);
        }
        let (l, ol) = (&mut base.limits, &o.limits);
        merge_opt(&mut l.mem, &ol.mem);
        merge_opt(&mut l.procs, &ol.procs);
        merge_opt(&mut l.cpus, &ol.cpus);
        merge_opt(&mut l.time, &ol.time);
        merge_opt(&mut l.wall_time, &ol.wall_time);
        merge_opt(&mut l.extra_time, &ol.extra_time);
        merge_opt(&mut l.output, &ol.output);
        merge_opt(&mut l.require_cgroup, &ol.require_cgroup);
        merge_opt(&mut base.network.mode, &o.network.mode);
        merge_opt(&mut base.network.allow_host_loopback, &o.network.allow_host_loopback);
        base.network.publish.extend(o.network.publish.iter().cloned());
        base.network.allow_connect.extend(&o.network.allow_connect);
        base.network.allow_bind.extend(&o.network.allow_bind);
        merge_opt(&mut base.landlock.enabled, &o.landlock.enabled);
        merge_opt(&mut base.landlock.abi, &o.landlock.abi);
        merge_opt(&mut base.landlock.optional, &o.landlock.optional);
        let (s, os) = (&mut base.seccomp, &o.seccomp);
        merge_opt(&mut s.enabled, &os.enabled);
        s.allow.extend(os.allow.iter().cloned());
        s.deny.extend(os.deny.iter().cloned());
        merge_opt(&mut s.allow_ptrace, &os.allow_ptrace);
        merge_opt(&mut s.on_deny, &os.on_deny);
        merge_opt(&mut s.log_denied, &os.log_denied);
        base
    }

    /// Load a profile by built-in name or file path, following `extends` (at most 8 deep).
    pub fn load(name_or_path: &str) -> Result<Profile> {
        Self::load_depth(name_or_path, 0)
    }

    fn load_depth(name_or_path: &str, depth: usize) -> Result<Profile> {
        if depth > 8 {
            return Err(Error::invalid(format!("profile {name_or_path}: 'extends' nests more than 8 deep (a cycle?)"), "break the cycle"));
        }
        let (origin, text) = match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, t)) => (format!("{n} (built-in)"), t.to_string()),
            None if name_or_path.contains('/') || name_or_path.ends_with(".toml") => {
                let t = std::fs::read_to_string(name_or_path).map_err(|e| {
                    Error::invalid(format!("--profile {name_or_path}: {e}"), "give a built-in name (ward profile list) or a readable file")
                })?;
                (name_or_path.to_string(), t)
            }
            None => {
                return Err(Error::invalid(
                    format!("--profile {name_or_path}: no such built-in profile"),
                    format!("use one of {} or a path to a .toml file", BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
                ));
            }
        };
        let p = Profile::parse(&origin, &text)?;
        match &p.extends {
            Some(parent) => Ok(Profile::over(Self::load_depth(parent, depth + 1)?, &p)),
            None => Ok(Profile::over(Profile::default(), &p)),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the profile: {e}\n"))
    }

    /// The options this profile asks for. `home` expands a leading `~/` in sources.
    pub fn to_options(&self, home: Option<&Path>) -> Result<Options> {
        let key = |k: &str, e: Error| match e {
            Error::Invalid { what, fix } => Error::Invalid { what: format!("profile key {k}: {what}"), fix },
            other => other,
        };
        let expand = |s: &str| -> PathBuf {
            match (s.strip_prefix("~/"), home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(s),
            }
        };
        let mut o = Options::default();
        let t = &self.tree;
        o.workdir = match t.workdir.as_deref() {
            None | Some("cwd") => Workdir::Auto,
            Some("none") => Workdir::None,
            Some(d) => Workdir::Dir(expand(d)),
        };
        o.workdir_mode = match t.workdir_mode.as_deref() {
            None | Some("rw") => WorkdirMode::ReadWrite,
            Some("ro") => WorkdirMode::ReadOnly,
            Some("overlay") => WorkdirMode::Overlay,
            Some(x) => return Err(Error::invalid(format!("profile key tree.workdir_mode = {x:?}: not a mode"), "use rw, ro or overlay")),
        };
        o.chdir = t.chdir.as_deref().map(PathBuf::from);
        o.tmp_size = t.tmp_size.as_deref().map(|s| parse_size("tree.tmp_size", s)).transpose().map_err(|e| key("tree.tmp_size", e))?;
        o.dev_pts = t.dev_pts.unwrap_or(false);
        let present = |b: &Bind| !b.optional || expand(&b.src).exists();
        for b in t.ro_bind.iter().filter(|b| present(b)) {
            o.mounts.push(MountSpec::RoBind { src: expand(&b.src), dst: b.dst.clone().into() });
        }
        for b in t.bind.iter().filter(|b| present(b)) {
            o.mounts.push(MountSpec::Bind { src: expand(&b.src), dst: b.dst.clone().into() });
        }
        for b in t.overlay.iter().filter(|b| present(b)) {
            o.mounts.push(MountSpec::Overlay { src: expand(&b.src), dst: b.dst.clone().into() });
        }
        for tm in &t.tmpfs {
            let size = tm.size.as_deref().map(|s| parse_size("tree.tmpfs.size", s)).transpose()?;
            o.mounts.push(MountSpec::Tmpfs { dst: tm.dst.clone().into(), size });
        }
        for s in &t.symlink {
            o.mounts.push(MountSpec::Symlink { target: s.target.clone().into(), dst: s.dst.clone().into() });
        }
        for d in &t.dir {
            o.mounts.push(MountSpec::Dir { dst: d.into() });
        }
        let p = &self.process;
        o.uid = p.uid;
        o.gid = p.gid;
        o.map_ranges = p.map_ranges.unwrap_or(false);
        o.hostname = p.hostname.clone();
        o.keep_session = p.keep_session.unwrap_or(false);
        o.setenv = p.env.iter().map(|(k, v)| (k.clone(), v.into())).collect();
        o.pass_env = p.pass_env.clone();
        let r = &p.rlimits;
        for (l, v, k) in [
            (Limit::As, &r.as_, "process.rlimits.as"),
            (Limit::Fsize, &r.fsize, "process.rlimits.fsize"),
            (Limit::Nofile, &r.nofile, "process.rlimits.nofile"),
            (Limit::Nproc, &r.nproc, "process.rlimits.nproc"),
            (Limit::Cpu, &r.cpu, "process.rlimits.cpu"),
            (Limit::Stack, &r.stack, "process.rlimits.stack"),
            (Limit::Core, &r.core, "process.rlimits.core"),
        ] {
            if let Some(v) = v {
                o.rlimits.push((l, parse_limit(k, v)?));
            }
        }
        let l = &self.limits;
        o.output = l.output.as_deref().map(|v| parse_size("limits.output", v)).transpose()?;
        o.procs = l.procs;
        o.require_cgroup = l.require_cgroup.unwrap_or(false);
        o.cpus = l.cpus;
        o.mem = l.mem.as_deref().map(|m| parse_size("limits.mem", m)).transpose()?;
        o.time = l.time;
        o.wall_time = l.wall_time;
        o.extra_time = l.extra_time;
        o.net = crate::policy::NetOptions {
            mode: crate::net::NetMode::parse(self.network.mode.as_deref().unwrap_or("none")).map_err(|e| key("network.mode", e))?,
            allow_host_loopback: self.network.allow_host_loopback.unwrap_or(false),
            publish: self.network.publish.clone(),
            allow_connect: self.network.allow_connect.clone(),
            allow_bind: self.network.allow_bind.clone(),
        };
        o.landlock = LandlockOptions {
            enabled: self.landlock.enabled.unwrap_or(true),
            abi: self.landlock.abi.unwrap_or(crate::landlock::TESTED_ABI),
            optional: self.landlock.optional.unwrap_or(true),
        };
        let s = &self.seccomp;
        let mut allow = if s.allow.is_empty() { vec!["@basic".to_string()] } else { s.allow.clone() };
        allow.retain(|a| !s.deny.contains(a));
        o.seccomp = SeccompOptions {
            enabled: s.enabled.unwrap_or(true),
            allow,
            deny: s.deny.clone(),
            allow_ptrace: s.allow_ptrace.unwrap_or(false),
            on_deny: s.on_deny.unwrap_or_default(),
            log_denied: s.log_denied.unwrap_or(false),
        };
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_convert() {
        for (name, _) in BUILTIN {
            let p = Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            p.to_options(Some(Path::new("/home/u"))).unwrap_or_else(|e| panic!("{name}: {e}"));
            // show prints something that parses back to the same profile
            assert_eq!(Profile::parse("shown", &p.to_toml()).unwrap(), p, "{name}");
        }
    }

    #[test]
    fn unknown_keys_name_line_and_key() {
        let e = Profile::parse("x.toml", "[tree]\nworkdir = \"none\"\nfrobnicate = 1\n").unwrap_err().to_string();
        assert!(e.contains("profile x.toml") && e.contains("line 3") && e.contains("frobnicate"), "{e}");
        let e = Profile::parse("x.toml", "[seccomp]\non_deny = \"explode\"\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("explode"), "{e}");
    }

    #[test]
    fn extends_overrides_scalars_and_appends_lists() {
        let base = Profile::parse("b", "[tree]\nworkdir = \"none\"\ntmp_size = \"1M\"\nro_bind = [{ src = \"/a\", dst = \"/a\" }]\n").unwrap();
        let child = Profile::parse("c", "[tree]\ntmp_size = \"2M\"\nro_bind = [{ src = \"/b\", dst = \"/b\" }]\n").unwrap();
        let m = Profile::over(Profile::over(Profile::default(), &base), &child);
        assert_eq!(m.tree.workdir.as_deref(), Some("none"));
        assert_eq!(m.tree.tmp_size.as_deref(), Some("2M"));
        assert_eq!(m.tree.ro_bind.len(), 2);
    }

    #[test]
    fn impossible_requests_are_refused() {
        let p = Profile::parse("x", "[limits]\noutput = \"1M\"\n").unwrap();
        assert_eq!(p.to_options(None).unwrap().output, Some(1 << 20));
        let p = Profile::parse("x", "[limits]\nmem = \"1G\"\n").unwrap();
        assert_eq!(p.to_options(None).unwrap().mem, Some(1 << 30));
        let p = Profile::parse("x", "[limits]\ntime = 1.5\nwall_time = 3.0\n").unwrap();
        assert_eq!(p.to_options(None).unwrap().time, Some(1.5));
        let p = Profile::parse("x", "[network]\nmode = \"carrier-pigeon\"\n").unwrap();
        assert!(p.to_options(None).unwrap_err().to_string().contains("network.mode"));
        assert!(Profile::load("nope").unwrap_err().to_string().contains("no such built-in profile"));
    }
}
