//! Declare, validate, normalize: a `Request` (what the caller asked for) and the `Host` facts
//! become a `Policy`, the complete and checked description of one run, in parts: the tree,
//! the ids, the environment, networking, Landlock, seccomp, the limits. Building a policy is
//! pure apart from the `Resolve` of host paths passed in, so every decision here is unit
//! tested and fuzzed; nothing in this module touches the kernel.

pub mod env;
pub mod ids;
pub mod landlock;
pub mod limits;
pub mod net;
pub mod seccomp;
pub mod tree;
pub mod warm;

use crate::error::{Error, Result};
use crate::host::{Host, NoCgroup};
use crate::request::{Limit, NetMode, Request, WorkdirMode};
use ids::Ids;
use landlock::{LandlockPolicy, LandlockState};
use limits::{CgLimits, CgroupNeed, CgroupPlan, CgroupSource, TimeLimits};
use net::{NetPolicy, Publish};
use seccomp::SeccompPolicy;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tree::{Access, MountOp, Resolve};

pub const DEFAULT_HOSTNAME: &str = "ward";

/// The program's stdio files: host paths opened by the launcher with the caller's rights,
/// or (`inside`) paths in the sandbox's view opened by the program's process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub stderr_to_stdout: bool,
    pub inside: bool,
    /// Host directories the sandbox can write (read-write and device binds, the work dir):
    /// host-side opens never follow a symbolic link below them.
    pub writable: Vec<PathBuf>,
}

/// The validated description of one run.
#[derive(Debug, Clone)]
pub struct Policy {
    pub argv: Vec<OsString>,
    /// Where the program is looked for inside, in order (PATH search done ahead of time).
    pub exec_candidates: Vec<PathBuf>,
    pub ids: Ids,
    pub tree: Vec<MountOp>,
    pub chdir: PathBuf,
    pub hostname: String,
    pub env: Vec<(String, OsString)>,
    pub rlimits: Vec<(Limit, Option<u64>)>,
    pub new_session: bool,
    pub stdio: Stdio,
    /// The work directory bound inside, if any, and how.
    pub workdir: Option<(PathBuf, WorkdirMode)>,
    pub seccomp: Option<SeccompPolicy>,
    pub net: Option<NetPolicy>,
    pub limits: TimeLimits,
    pub cgroup: CgroupPlan,
    pub landlock: LandlockState,
}

impl Policy {
    pub fn build(r: &Request, host: &Host, fs: &dyn Resolve) -> Result<Policy> {
        let argv = env::check_argv(&r.run.argv)?;
        let ids = ids::build(&r.process, host)?;
        let environment = env::build(&r.process, host)?;
        let hostname = r.process.hostname.clone().unwrap_or_else(|| DEFAULT_HOSTNAME.to_string());
        if hostname.is_empty() || hostname.len() > 64 || hostname.bytes().any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace()) {
            return Err(Error::invalid(format!("--hostname {hostname:?}: not a valid host name"), "use 1 to 64 characters without spaces or '/'"));
        }
        let tmp_size = r.tree.tmp_size.map(|s| s.0).unwrap_or(tree::DEFAULT_TMP_SIZE);
        if tmp_size < 4096 {
            return Err(Error::invalid(format!("--tmp-size {tmp_size}: smaller than one page"), "use at least 4K"));
        }

        let net = build_net(&r.network, host)?;
        let l = &r.limits;
        let limits = TimeLimits::new(l.time, l.wall_time, l.extra_time, l.mem.map(|m| m.0), l.output.map(|o| o.0))?;
        if l.cpus.is_some_and(|c| !c.is_finite() || c <= 0.0 || c > 4096.0) {
            return Err(Error::invalid(format!("--cpus {}: not a usable number of CPUs", l.cpus.unwrap_or(0.0)), "give a positive number, e.g. 1 or 0.5"));
        }
        if l.procs == Some(0) {
            return Err(Error::invalid("--procs 0: the program itself is a process", "give at least 1"));
        }
        let cgroup = build_cgroup(r, host)?;

        let mut tree = tree::base(host, ids::passwd(host, &ids), ids::group(host, &ids), &hostname, tmp_size, r.tree.dev_pts.unwrap_or(false), !r.tree.no_proc.unwrap_or(false));
        if let Some(n) = &net {
            tree.push(MountOp::File { dst: PathBuf::from("/etc/resolv.conf"), contents: format!("nameserver {}\n", n.dns).into_bytes() });
        }
        let workdir = tree::resolve_workdir(r.tree.workdir.as_ref().unwrap_or(&crate::request::Workdir::Auto), r.tree.workdir_mode.unwrap_or_default(), host, fs)?;
        if let Some((dir, mode)) = &workdir {
            tree.push(match mode {
                WorkdirMode::ReadWrite => MountOp::Bind { src: dir.clone(), dst: dir.clone(), dir: true, access: Access::ReadWrite },
                WorkdirMode::ReadOnly => MountOp::Bind { src: dir.clone(), dst: dir.clone(), dir: true, access: Access::ReadOnly },
                WorkdirMode::Overlay => MountOp::Overlay { src: dir.clone(), dst: dir.clone(), size: tmp_size },
            });
        }
        for m in &r.tree.mounts {
            tree.extend(tree::user_op(m, fs, host.home.as_deref(), tmp_size)?);
        }
        // Last: nothing of the root tmpfs itself is writable, nor /dev.
        tree.push(MountOp::RemountRo { dst: PathBuf::from("/dev") });
        tree.push(MountOp::RemountRo { dst: PathBuf::from("/") });

        let chdir = match (&r.tree.chdir, &workdir) {
            (Some(c), _) => {
                if c == Path::new("/") { PathBuf::from("/") } else { tree::normalize_dst("--chdir", c)? }
            }
            (None, Some((dir, _))) => dir.clone(),
            (None, None) => PathBuf::from("/"),
        };
        let exec_candidates = env::exec_candidates(&argv[0], &environment);
        let run = &r.run;
        for (what, p) in [("--stdin", &run.stdin), ("--stdout", &run.stdout), ("--stderr", &run.stderr)] {
            if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(Error::invalid(format!("{what}: the file name is empty"), "name a file"));
            }
        }
        // RLIMIT_CORE 0 unless asked; --fsize is RLIMIT_FSIZE.
        let mut rlimits: Vec<(Limit, Option<u64>)> = vec![(Limit::Core, Some(0))];
        let fsize = limits.output.map(|b| (Limit::Fsize, crate::request::Rlim(Some(b))));
        for (l, v) in r.process.rlimits.iter().map(|(l, v)| (*l, *v)).chain(fsize) {
            rlimits.retain(|(k, _)| *k != l);
            rlimits.push((l, v.0));
        }
        // --procs: RLIMIT_NPROC set in the sandbox's user namespace counts its processes and
        // threads only (5.14+), init among them when it runs as the program's uid; with a
        // leaf, pids.max enforces it as well
        if let (Some(n), true) = (r.limits.procs, nproc_per_userns(host)) {
            if !r.process.rlimits.contains_key(&Limit::Nproc) {
                rlimits.push((Limit::Nproc, Some(n + u64::from(ids.ward_runs_as_program_uid()))));
            }
        }
        let sc = &r.seccomp;
        let mut seccomp = if sc.enabled.unwrap_or(true) {
            let mut allow = if sc.allow.is_empty() { vec!["@basic".to_string()] } else { sc.allow.clone() };
            allow.retain(|a| !sc.deny.contains(a));
            Some(SeccompPolicy::new(&allow, &sc.deny, sc.allow_ptrace.unwrap_or(false), sc.on_deny.unwrap_or_default(), net.is_some(), sc.log_denied.unwrap_or(false))?)
        } else {
            None
        };
        let ll = &r.landlock;
        let landlock = if !ll.enabled.unwrap_or(true) {
            LandlockState::Off("disabled by the profile or --no-landlock".into())
        } else {
            match LandlockPolicy::new(ll.abi.unwrap_or(landlock::TESTED_ABI), ll.optional.unwrap_or(true), host.landlock_abi, &tree)? {
                Some(p) => LandlockState::On(p),
                None => LandlockState::Off("the kernel has no Landlock (optional in this profile)".into()),
            }
        };
        let landlock = landlock::with_ports(landlock, &r.network.allow_connect, &r.network.allow_bind, host.landlock_abi)?;
        // Sampled --mem (no leaf can be had) sees resident memory and memfd files, not what
        // lives in tmpfs or SysV segments: tmpfs is capped at the limit, and SysV shared
        // memory (whose size the launcher cannot see) is refused by the filter.
        let shm_limit = limits.mem.filter(|_| matches!(cgroup.source, CgroupSource::Unavailable(_)));
        if let Some(m) = shm_limit {
            if let Some(sc) = &mut seccomp {
                sc.allow.remove("shmget");
            }
            for op in tree.iter_mut() {
                match op {
                    MountOp::Tmpfs { size, .. } | MountOp::Overlay { size, .. } => *size = (*size).min(m),
                    _ => {}
                }
            }
        }
        let writable = writable_sources(&tree);
        Ok(Policy {
            seccomp,
            net,
            limits,
            cgroup,
            landlock,
            argv,
            exec_candidates,
            ids,
            tree,
            chdir,
            hostname,
            env: environment,
            rlimits,
            new_session: !r.process.keep_session.unwrap_or(false),
            stdio: Stdio {
                stdin: run.stdin.clone(),
                stdout: run.stdout.clone(),
                stderr: run.stderr.clone(),
                stderr_to_stdout: run.stderr_to_stdout,
                inside: run.stdio_inside,
                writable,
            },
            workdir,
        })
    }
}

/// The host directories the sandbox can write: sources of read-write and device binds.
fn writable_sources(tree: &[MountOp]) -> Vec<PathBuf> {
    tree.iter()
        .filter_map(|m| match m {
            MountOp::Bind { src, dir: true, access: Access::ReadWrite | Access::Device, .. } => Some(src.clone()),
            _ => None,
        })
        .collect()
}

/// From Linux 5.14 RLIMIT_NPROC counts the processes of a uid per user namespace: set inside
/// the sandbox's own, it limits the sandbox's processes and threads only.
pub fn nproc_per_userns(host: &Host) -> bool {
    host.kernel >= (5, 14)
}

/// Does the run need a cgroup leaf, and where would it come from? Refused here, before
/// anything runs, when it is required and none can be had.
fn build_cgroup(r: &Request, host: &Host) -> Result<CgroupPlan> {
    let l = &r.limits;
    let need = if l.require_cgroup.unwrap_or(false) {
        CgroupNeed::Required("--require-cgroup")
    } else if l.cpus.is_some() {
        CgroupNeed::Required("--cpus")
    } else {
        CgroupNeed::Preferred
    };
    let source = match &host.cgroup {
        Ok(sub) => CgroupSource::Delegated(sub.clone()),
        Err(why @ NoCgroup::NotDelegated { .. }) if host.session_bus => CgroupSource::FromSystemd(why.clone()),
        Err(why) => CgroupSource::Unavailable(why.clone()),
    };
    if let (CgroupNeed::Required(what), CgroupSource::Unavailable(why)) = (need, &source) {
        return Err(no_cgroup(what, &why.to_string()));
    }
    if let (Some(n), CgroupSource::Unavailable(why), false) = (l.procs, &source, nproc_per_userns(host)) {
        return Err(Error::host(
            format!(
                "--procs {n}: without a cgroup leaf ({why}) the process limit is RLIMIT_NPROC in the sandbox's own user namespace, which counts only the sandbox's processes from Linux 5.14 on; this kernel is {}.{}",
                host.kernel.0, host.kernel.1
            ),
            "use a delegated cgroup (see 'ward check'), or a newer kernel",
        ));
    }
    Ok(CgroupPlan { need, source, limits: CgLimits { mem: l.mem.map(|m| m.0), procs: l.procs, cpus: l.cpus } })
}

/// The error for a run that requires a cgroup leaf and cannot have one.
pub fn no_cgroup(what: &'static str, why: &str) -> Error {
    crate::error::CgroupError::Unavailable { option: what, why: why.to_string() }.into()
}

fn build_net(o: &crate::request::Network, host: &Host) -> Result<Option<NetPolicy>> {
    let (mode, helper) = match o.mode.unwrap_or_default() {
        NetMode::None => {
            if o.allow_host_loopback.unwrap_or(false) || !o.publish.is_empty() || !o.allow_connect.is_empty() || !o.allow_bind.is_empty() {
                return Err(Error::invalid(
                    "--allow-host-loopback, --publish, --allow-connect and --allow-bind need networking",
                    "add --net slirp4netns, --net pasta or --net auto",
                ));
            }
            return Ok(None);
        }
        NetMode::Slirp4netns => (NetMode::Slirp4netns, host.slirp4netns.clone()),
        NetMode::Pasta => (NetMode::Pasta, host.pasta.clone()),
        NetMode::Auto => match (&host.pasta, &host.slirp4netns) {
            (Some(p), _) => (NetMode::Pasta, Some(p.clone())),
            (None, Some(s)) => (NetMode::Slirp4netns, Some(s.clone())),
            (None, None) => (NetMode::Auto, None),
        },
    };
    let helper = helper.ok_or_else(|| {
        let (what, fix) = match mode {
            NetMode::Slirp4netns => ("slirp4netns is not installed", "as root: apt-get install slirp4netns"),
            NetMode::Pasta => ("pasta is not installed", "as root: apt-get install passt"),
            _ => ("neither pasta nor slirp4netns is installed", "as root: apt-get install passt (or slirp4netns)"),
        };
        Error::host(format!("--net: {what}"), fix)
    })?;
    let publish = o.publish.iter().map(|s| Publish::parse(s)).collect::<Result<Vec<_>>>()?;
    let (dns, gateway) = match mode {
        NetMode::Slirp4netns => (net::SLIRP_DNS.parse().map_err(|_| Error::invalid("bad built-in DNS address", ""))?, None),
        _ => {
            let g = host.gateway.ok_or_else(|| {
                Error::host("--net pasta: the host has no IPv4 default route for pasta to copy", "use --net slirp4netns, or give the host a default route")
            })?;
            (g, Some(g))
        }
    };
    Ok(Some(NetPolicy {
        mode,
        helper,
        allow_host_loopback: o.allow_host_loopback.unwrap_or(false),
        publish,
        allow_connect: o.allow_connect.clone(),
        allow_bind: o.allow_bind.clone(),
        dns,
        gateway,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{BindAccess, MountSpec};
    use tree::auto_workdir_is_unsafe;
    use ids::IdMap;

    struct FakeFs;
    impl Resolve for FakeFs {
        fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
            match p.to_str() {
                Some("/srv/data") | Some("/home/u/proj") | Some("/tmp/w") => Ok((p.to_path_buf(), true)),
                Some("/srv/link") => Ok((PathBuf::from("/srv/data"), true)),
                Some("/srv/file") => Ok((p.to_path_buf(), false)),
                Some("/tmp") => Ok((p.to_path_buf(), true)),
                _ => Err(std::io::Error::from_raw_os_error(2)),
            }
        }
        fn shared(&self, p: &Path) -> bool {
            p == Path::new("/tmp")
        }
    }

    #[test]
    fn a_shared_directory_is_not_bound_automatically() {
        // run from /tmp: other users' sockets there would be reachable through the bind
        let h = Host { cwd: "/tmp".into(), ..host() };
        let p = Policy::build(&opts(&["sh"]), &h, &FakeFs).unwrap();
        assert_eq!(p.workdir, None);
        assert!(!p.tree.iter().any(|m| matches!(m, MountOp::Bind { dst, .. } if dst == Path::new("/tmp"))));
        // named explicitly it is the caller's choice
        let mut o = opts(&["sh"]);
        o.tree.workdir = Some(crate::request::Workdir::Dir("/tmp".into()));
        assert_eq!(Policy::build(&o, &h, &FakeFs).unwrap().workdir, Some((PathBuf::from("/tmp"), WorkdirMode::ReadWrite)));
    }

    #[test]
    fn a_root_caller_is_never_host_root_inside() {
        use ids::MapWriter;
        let root = Host { uid: 0, gid: 0, user_name: "root".into(), ..host() };
        let p = Policy::build(&opts(&["sh"]), &root, &FakeFs).unwrap();
        assert_eq!(p.ids.writer, MapWriter::Launcher);
        assert_eq!((p.ids.inside_uid, p.ids.outside_uid, p.ids.outside_gid), (0, 65534, 65534));
        assert_eq!(p.ids.uid_lines, vec![[0, 65534, 1]]);
        // a chosen inside id and a per-box host id (ward isolate)
        let mut o = opts(&["sh"]);
        o.process.uid = Some(60007);
        o.process.host_ids = Some((60007, 60007));
        let p = Policy::build(&o, &root, &FakeFs).unwrap();
        assert_eq!(p.ids.uid_lines, vec![[60007, 60007, 1]]);
        // ranges: root's own range, the caller not in it
        o.process.map_ranges = Some(true);
        o.process.uid = Some(65535);
        let r = Host { subuid: Some((200000, 65536)), subgid: Some((200000, 65536)), ..root.clone() };
        let p = Policy::build(&o, &r, &FakeFs).unwrap();
        assert_eq!(p.ids.uid_lines, vec![[0, 200000, 65536]]);
        assert_eq!(p.ids.outside_uid, 265535);
        o.process.uid = Some(65536);
        assert!(Policy::build(&o, &r, &FakeFs).unwrap_err().to_string().contains("outside the mapped range 0..=65535"));
        // never host 0, whatever is asked
        o.process.uid = None;
        o.process.map_ranges = None;
        o.process.host_ids = Some((0, 0));
        assert!(Policy::build(&o, &root, &FakeFs).unwrap_err().to_string().contains("host id 0"));
    }

    /// The fuzzers' made-up host, with what these tests depend on spelled out.
    fn host() -> Host {
        Host {
            env: vec![("TERM".into(), "xterm".into()), ("SECRET".into(), "s3".into())],
            usr_links: vec![("bin".into(), Some("usr/bin".into())), ("lib64".into(), None)],
            landlock_abi: 7,
            kernel: (6, 18),
            pasta: None,
            gateway: None,
            ..crate::testing::fake_host()
        }
    }

    fn opts(argv: &[&str]) -> Request {
        Request::new(argv.iter().map(OsString::from).collect())
    }

    #[test]
    fn default_policy_is_strict() {
        let p = Policy::build(&opts(&["sh"]), &host(), &FakeFs).unwrap();
        assert_eq!(p.ids.inside_uid, 1000);
        assert_eq!(p.ids.map, IdMap::Single);
        // only PATH, HOME, TERM from the caller; not SECRET
        let names: Vec<_> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "TERM"]);
        // the work dir is the cwd, read-write; root and /dev end read-only
        assert_eq!(p.workdir, Some((PathBuf::from("/home/u/proj"), WorkdirMode::ReadWrite)));
        assert_eq!(p.chdir, PathBuf::from("/home/u/proj"));
        assert_eq!(p.tree.last(), Some(&MountOp::RemountRo { dst: "/".into() }));
        assert!(p.tree.contains(&MountOp::Symlink { target: "usr/bin".into(), dst: "/bin".into() }));
        assert!(p.tree.iter().any(|m| matches!(m, MountOp::Bind { dst, access: Access::ReadOnly, .. } if dst == Path::new("/lib64"))));
        assert_eq!(p.rlimits, vec![(Limit::Core, Some(0))]);
        assert!(p.exec_candidates.contains(&PathBuf::from("/usr/bin/sh")));
        assert!(p.new_session);
    }

    #[test]
    fn home_is_not_bound_automatically() {
        let mut h = host();
        h.cwd = "/home/u".into();
        let p = Policy::build(&opts(&["sh"]), &h, &FakeFs).unwrap();
        assert_eq!(p.workdir, None);
        assert_eq!(p.chdir, PathBuf::from("/"));
        assert!(auto_workdir_is_unsafe(Path::new("/home"), Some(Path::new("/home/u"))));
        assert!(auto_workdir_is_unsafe(Path::new("/"), None));
        assert!(auto_workdir_is_unsafe(Path::new("/etc/x"), None));
        assert!(!auto_workdir_is_unsafe(Path::new("/home/u/p"), Some(Path::new("/home/u"))));
    }

    #[test]
    fn bad_input_is_named() {
        let mut o = opts(&["sh"]);
        o.tree.mounts.push(MountSpec::Bind { src: "/nope".into(), dst: "/x".into(), access: BindAccess::ReadOnly, optional: false });
        let e = Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string();
        assert!(e.starts_with("--ro-bind /nope: the source cannot be used"), "{e}");

        let mut o = opts(&["sh"]);
        o.tree.mounts.push(MountSpec::Bind { src: "/srv/data".into(), dst: "rel".into(), access: BindAccess::ReadWrite, optional: false });
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("must be an absolute path"));

        assert!(Policy::build(&opts(&[]), &host(), &FakeFs).unwrap_err().to_string().contains("no program given"));
        let big = "x".repeat(env::MAX_ARG_LEN);
        assert!(Policy::build(&opts(&["sh", &big]), &host(), &FakeFs).unwrap_err().to_string().contains("at most 131071 bytes"));

        let mut o = opts(&["sh"]);
        o.process.env.push(("A=B".into(), "x".into()));
        assert!(Policy::build(&o, &host(), &FakeFs).is_err());
    }

    #[test]
    fn binds_resolve_symlinks_on_the_host() {
        let mut o = opts(&["sh"]);
        o.tree.mounts.push(MountSpec::Bind { src: "/srv/link".into(), dst: "/data/".into(), access: BindAccess::ReadOnly, optional: false });
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert!(p.tree.contains(&MountOp::Bind { src: "/srv/data".into(), dst: "/data".into(), dir: true, access: Access::ReadOnly }));
    }

    #[test]
    fn ranges() {
        let mut o = opts(&["id"]);
        o.process.map_ranges = Some(true);
        o.process.uid = Some(1000);
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert_eq!(p.ids.inside_uid, 1000);
        assert!(matches!(p.ids.map, IdMap::Ranges { uid_start: 100000, uid_count: 65536, .. }));
        o.process.uid = Some(70000);
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("outside the mapped range"));
        let mut h = host();
        h.subuid = None;
        o.process.uid = None;
        // typed: the caller tells the mechanism and the missing file by variant
        let e = Policy::build(&o, &h, &FakeFs).unwrap_err();
        assert!(matches!(&e, Error::IdMap(crate::error::IdMapError::NoRange { file: "/etc/subuid", uid: 1000, .. })), "{e:?}");
        assert!(e.to_string().starts_with("--map-ranges: user u (uid 1000) has no range in /etc/subuid; as root: usermod"), "{e}");
    }

    #[test]
    fn a_cgroup_only_limit_without_a_cgroup_is_a_typed_cgroup_error() {
        let mut o = opts(&["sh"]);
        o.limits.cpus = Some(1.0);
        let h = Host { cgroup: Err(NoCgroup::NotMounted), session_bus: false, ..host() };
        let e = Policy::build(&o, &h, &FakeFs).unwrap_err();
        assert!(matches!(&e, Error::Cgroup(crate::error::CgroupError::Unavailable { option: "--cpus", .. })), "{e:?}");
    }

    #[test]
    fn networking_choices() {
        let mut o = opts(&["sh"]);
        o.network.allow_host_loopback = Some(true);
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("need networking"));
        o.network.mode = Some(NetMode::Auto);
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        let n = p.net.as_ref().unwrap();
        assert_eq!(n.mode, NetMode::Slirp4netns); // pasta is not installed here
        assert_eq!(n.dns.to_string(), "10.0.2.3");
        assert!(p.seccomp.as_ref().unwrap().inet);
        assert!(p.tree.contains(&MountOp::File { dst: "/etc/resolv.conf".into(), contents: b"nameserver 10.0.2.3\n".to_vec() }));
        o.network.mode = Some(NetMode::Pasta);
        assert!(Policy::build(&o, &host(), &FakeFs).unwrap_err().to_string().contains("apt-get install passt"));
    }

    #[test]
    fn env_pass_and_set() {
        let mut o = opts(&["sh"]);
        o.process.pass_env.push("SECRET".into());
        o.process.env.push(("PATH".into(), "/bin".into()));
        let p = Policy::build(&o, &host(), &FakeFs).unwrap();
        assert!(p.env.contains(&("SECRET".into(), "s3".into())));
        assert!(p.env.contains(&("PATH".into(), "/bin".into())));
        assert_eq!(p.exec_candidates, vec![PathBuf::from("/bin/sh")]);
    }
}
