//! Test support, not library API (`cfg(test)`, and `cfg(fuzzing)` for the cargo-fuzz targets
//! in fuzz/): a made-up host and file system, and the fuzz entry points. Each entry point
//! takes arbitrary bytes and must neither panic nor hang; errors are fine. The unit tests
//! below replay the checked-in seed corpus and the built-in profiles (profiles/*.toml, read
//! from there, not copied) through them on stable Rust.

use crate::host::{Host, NoCgroup};
use crate::policy::Policy;
use crate::policy::tree::{Resolve, normalize_dst};
use crate::request::{BindAccess, MountSpec, Request, Size, parse_limit, parse_size};
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
        kernel: (6, 1),
        slirp4netns: Some("/usr/bin/slirp4netns".into()),
        pasta: Some("/usr/bin/pasta".into()),
        gateway: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        cgroup: Err(NoCgroup::Other("fuzzing".into())),
        session_bus: false,
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
    fn shared(&self, p: &Path) -> bool {
        p == Path::new("/tmp") || p == Path::new("/var/tmp")
    }
}

/// Profile text -> request -> validated policy -> the child's plan and the verdict's record.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = crate::request::profile::parse("fuzz", text) else { return };
    let _ = crate::request::profile::to_toml(&p);
    let mut r = Request::default().overlay(&p);
    r.run.argv = vec!["/bin/true".into()];
    r.seccomp.enabled = Some(false); // the filter has its own target (it is slow to build)
    if let Ok(policy) = Policy::build(&r, &fake_host(), &FakeFs) {
        let _ = crate::launcher::plan::ops(&policy);
        let facts = crate::launcher::account::Facts { filter: None, helper_args: vec![], cgroup: String::new(), leaf: None };
        let _ = crate::launcher::account::enforced(&policy, &facts);
    }
}

/// A request straight from bytes: paths, sizes, env, argv through `Policy::build`.
pub fn policy(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let mut r = Request::new(vec![OsStr::from_bytes(parts.next().unwrap_or(b"")).to_os_string()]);
    r.seccomp.enabled = Some(false);
    let mut i = 0u8;
    for chunk in parts {
        let p = PathBuf::from(OsStr::from_bytes(chunk));
        i = i.wrapping_add(1);
        let m = &mut r.tree.mounts;
        match i % 6 {
            0 => m.push(MountSpec::Bind { src: p.clone(), dst: p, access: BindAccess::ReadOnly, optional: false }),
            1 => m.push(MountSpec::Bind { src: "/srv".into(), dst: p, access: BindAccess::ReadWrite, optional: i % 4 == 1 }),
            2 => m.push(MountSpec::Tmpfs { dst: p, size: Some(Size(chunk.len() as u64 * 4096)) }),
            3 => m.push(MountSpec::Symlink { target: p.clone(), dst: p }),
            4 => r.process.env.push((String::from_utf8_lossy(chunk).into_owned(), "v".into())),
            _ => r.tree.chdir = Some(p),
        }
    }
    let _ = Policy::build(&r, &fake_host(), &FakeFs);
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
        let _ = parse_limit("fuzz", s);
    }
}

/// Filter building: the bytes pick which calls are allowed and which values the masked
/// complements exclude; the complement must be exact and the BPF well formed.
pub fn filter(data: &[u8]) {
    use crate::policy::seccomp::{OnDeny, SeccompPolicy, complement, groups};
    let excluded: Vec<u32> = data.chunks(4).take(8).map(|c| c.iter().fold(0u32, |a, b| a << 8 | *b as u32)).collect();
    let rules = complement(&excluded);
    for probe in excluded.iter().copied().chain(data.chunks(4).map(|c| c.iter().fold(0x5a5a_5a5au32, |a, b| a.rotate_left(8) ^ *b as u32))) {
        let hits = rules.iter().filter(|(m, v)| probe & m == *v).count();
        assert_eq!(hits, usize::from(!excluded.contains(&probe)), "complement wrong for {probe:#x}");
    }
    if data.len() < 2 {
        return;
    }
    let allow: Vec<String> = groups::BASIC
        .iter()
        .enumerate()
        .filter(|(i, _)| data.get(i / 8 % data.len()).is_some_and(|b| b >> (i % 8) & 1 == 1))
        .map(|(_, s)| s.to_string())
        .collect();
    let on_deny = if data[0] & 1 == 0 { OnDeny::Errno } else { OnDeny::Kill };
    if let Ok(p) = SeccompPolicy::new(&allow, &[], data[1] & 1 == 1, on_deny, data[1] & 2 == 2, false) {
        if let Ok((bpf, allowed, denied)) = crate::launcher::seccomp::compile(&p) {
            assert!(!bpf.is_empty() && bpf.len() % 8 == 0, "malformed BPF");
            // ward's BPF decides as libseccomp's build of the same policy, for every call
            // number and argument words taken from the input
            if let Ok((theirs, ta, td)) = crate::launcher::seccomp::compile_libseccomp(&p) {
                assert_eq!((allowed, denied), (ta, td));
                let arch = crate::launcher::bpf::AUDIT_ARCH_X86_64;
                let word = |i: usize| data.chunks(8).nth(i).map_or(0, |c| c.iter().fold(0u64, |a, b| a << 8 | *b as u64));
                let args = [word(0), word(1), word(2), 0, 0, 0];
                for nr in 0..520 {
                    for a in [[0u64; 6], args, [u64::MAX; 6], [0x1_0000_0016, 0x1_0000_5412, 0, 0, 0, 0]] {
                        assert_eq!(bpf_eval(&bpf, arch, nr, a), bpf_eval(&theirs, arch, nr, a), "call {nr} args {a:x?}");
                    }
                }
            }
        }
    }
}

/// Run a classic BPF seccomp program (the instructions `build` and libseccomp emit) on
/// one call.
pub fn bpf_eval(bpf: &[u8], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::new();
    data.extend_from_slice(&nr.to_le_bytes());
    data.extend_from_slice(&arch.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        data.extend_from_slice(&a.to_le_bytes());
    }
    let word = |off: usize| u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
    let (mut acc, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    loop {
        let i = &bpf[pc * 8..pc * 8 + 8];
        let (code, jt, jf, k) = (u16::from_le_bytes([i[0], i[1]]), i[2] as usize, i[3] as usize, u32::from_le_bytes([i[4], i[5], i[6], i[7]]));
        pc += 1;
        let jump = |cond: bool| if cond { jt } else { jf };
        match code {
            0x20 => acc = word(k as usize),
            0x00 => acc = k,
            0x01 => x = k,
            0x02 => mem[k as usize] = acc,
            0x03 => mem[k as usize] = x,
            0x60 => acc = mem[k as usize],
            0x61 => x = mem[k as usize],
            0x87 => acc = x,
            0x07 => x = acc,
            0x54 => acc &= k,
            0x44 => acc |= k,
            0x05 => pc += k as usize,
            0x15 => pc += jump(acc == k),
            0x25 => pc += jump(acc > k),
            0x35 => pc += jump(acc >= k),
            0x45 => pc += jump(acc & k != 0),
            0x1d => pc += jump(acc == x),
            0x2d => pc += jump(acc > x),
            0x3d => pc += jump(acc >= x),
            0x4d => pc += jump(acc & x != 0),
            0x06 => return k,
            0x16 => return acc,
            other => panic!("opcode {other:#x} at {}", pc - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    fn replay(dir: &str, f: fn(&[u8])) -> usize {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.is_file() && p.extension().is_none_or(|x| x != "md") {
                f(&std::fs::read(&p).unwrap());
                n += 1;
            }
        }
        n
    }

    #[test]
    fn profile_corpus_and_the_builtin_profiles() {
        assert!(replay("fuzz/corpus/profile", super::profile) >= 3);
        assert_eq!(replay("profiles", super::profile), 3, "profiles/*.toml are replayed as they are");
    }

    #[test]
    fn policy_corpus() {
        assert!(replay("fuzz/corpus/policy", super::policy) >= 3);
    }

    #[test]
    fn normalize_corpus() {
        assert!(replay("fuzz/corpus/normalize", super::normalize) >= 3);
    }

    #[test]
    fn filter_corpus() {
        assert!(replay("fuzz/corpus/filter", super::filter) >= 3);
    }

    #[test]
    fn filter_on_random_inputs() {
        // a fixed-seed xorshift: the same 100 inputs every run (cargo-fuzz explores further)
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..100usize {
            let data: Vec<u8> = (0..len % 48 + 2)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            super::filter(&data);
        }
    }
}
