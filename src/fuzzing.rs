//! Entry points for the fuzz targets in fuzz/ (cargo-fuzz), kept in the library so that a
//! normal test replays the checked-in seed corpus on stable Rust (tests/fuzz_corpus.rs).
//! Each takes arbitrary bytes and must neither panic nor hang; errors are fine.

use crate::policy::{Host, Options, Policy, Resolve, normalize_dst, parse_size};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A made-up caller and host, so policies can be built without touching the machine.
pub fn fake_host() -> Host {
    Host {
        uid: 1000,
        gid: 1000,
        user_name: "u".into(),
        group_name: "u".into(),
        home: Some("/home/u".into()),
        cwd: "/home/u/proj".into(),
        env: vec![("TERM".into(), "xterm".into())],
        usr_links: vec![("bin".into(), Some("usr/bin".into())), ("lib".into(), Some("usr/lib".into()))],
        has_ld_so_cache: true,
        has_alternatives: true,
        localtime: None,
        subuid: Some((100000, 65536)),
        subgid: Some((100000, 65536)),
        landlock_abi: 2,
        cache_dir: Some("/home/u/.cache/ward".into()),
        slirp4netns: Some("/usr/bin/slirp4netns".into()),
        pasta: Some("/usr/bin/pasta".into()),
        gateway: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        cgroup: Err("fuzzing".into()),
    }
}

/// Every absolute path exists and is a directory, except those containing "nope" or "file".
pub struct FakeFs;

impl Resolve for FakeFs {
    fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
        let s = p.as_os_str().as_bytes();
        if !p.is_absolute() || s.windows(4).any(|w| w == b"nope") {
            return Err(std::io::Error::from_raw_os_error(2));
        }
        Ok((p.to_path_buf(), !s.windows(4).any(|w| w == b"file")))
    }
}

/// Profile text -> profile -> options -> validated policy -> Landlock rules.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = crate::profile::Profile::parse("fuzz", text) else { return };
    let _ = p.to_toml();
    let Ok(mut o) = p.to_options(Some(Path::new("/home/u"))) else { return };
    o.argv = vec!["/bin/true".into()];
    o.seccomp.enabled = false; // the filter has its own target (it is slow to build)
    if let Ok(policy) = Policy::build(&o, &fake_host(), &FakeFs) {
        let _ = crate::child::mount::Op::prepare(&policy);
        let _ = crate::verdict::Enforced::from_policy(&policy);
    }
}

/// Options straight from bytes: paths, sizes, env, argv through `Policy::build`.
pub fn policy(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let mut o = Options::default();
    o.seccomp.enabled = false;
    o.argv = vec![OsStr::from_bytes(parts.next().unwrap_or(b"")).to_os_string()];
    let mut i = 0u8;
    for chunk in parts {
        let p = PathBuf::from(OsStr::from_bytes(chunk));
        i = i.wrapping_add(1);
        match i % 6 {
            0 => o.mounts.push(crate::MountSpec::RoBind { src: p.clone(), dst: p }),
            1 => o.mounts.push(crate::MountSpec::Bind { src: "/srv".into(), dst: p }),
            2 => o.mounts.push(crate::MountSpec::Tmpfs { dst: p, size: Some(chunk.len() as u64 * 4096) }),
            3 => o.mounts.push(crate::MountSpec::Symlink { target: p.clone(), dst: p }),
            4 => o.setenv.push((String::from_utf8_lossy(chunk).into_owned(), "v".into())),
            _ => o.chdir = Some(p),
        }
    }
    let _ = Policy::build(&o, &fake_host(), &FakeFs);
}

/// Path normalization and size parsing.
pub fn normalize(data: &[u8]) {
    if let Ok(p) = normalize_dst("fuzz", Path::new(OsStr::from_bytes(data))) {
        assert!(p.is_absolute(), "normalized path not absolute");
        assert!(!p.components().any(|c| matches!(c, std::path::Component::ParentDir)), "'..' survived");
        assert!(normalize_dst("again", &p).is_ok_and(|q| q == p), "normalization not idempotent");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_size("fuzz", s);
        let _ = crate::policy::parse_limit("fuzz", s);
    }
}

/// Filter building: the bytes pick which calls are allowed and which values the masked
/// complements exclude; the complement must be exact and the BPF well formed.
pub fn filter(data: &[u8]) {
    let excluded: Vec<u32> = data.chunks(4).take(8).map(|c| c.iter().fold(0u32, |a, b| a << 8 | *b as u32)).collect();
    let rules = crate::seccomp::complement(&excluded);
    for probe in excluded.iter().copied().chain(data.chunks(4).map(|c| c.iter().fold(0x5a5a_5a5au32, |a, b| a.rotate_left(8) ^ *b as u32))) {
        let hits = rules.iter().filter(|(m, v)| probe & m == *v).count();
        assert_eq!(hits, usize::from(!excluded.contains(&probe)), "complement wrong for {probe:#x}");
    }
    if data.len() < 2 {
        return;
    }
    let allow: Vec<String> = crate::syscalls::BASIC
        .iter()
        .enumerate()
        .filter(|(i, _)| data.get(i / 8 % data.len()).is_some_and(|b| b >> (i % 8) & 1 == 1))
        .map(|(_, s)| s.to_string())
        .collect();
    let on_deny = if data[0] & 1 == 0 { crate::seccomp::OnDeny::Errno } else { crate::seccomp::OnDeny::Kill };
    if let Ok(p) = crate::seccomp::SeccompPolicy::new(&allow, &[], data[1] & 1 == 1, on_deny, data[1] & 2 == 2, false) {
        if let Ok((bpf, _, _)) = crate::seccomp::compile(&p) {
            assert!(!bpf.is_empty() && bpf.len() % 8 == 0, "malformed BPF");
        }
    }
}
