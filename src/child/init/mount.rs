//! Child half of the mount namespace: build a fresh root on tmpfs from the policy's ordered
//! tree operations, then pivot_root into it and detach the host's tree.
//!
//! Runs in the sandbox's init (pid 1), after the id maps are written (mounting needs the
//! capabilities of the new user namespace) and before anything of the program runs. The host
//! root is first moved to /oldroot (a pivot into a scratch tmpfs, as bubblewrap does), so bind
//! sources are read from /oldroot/SRC and every destination is built under /newroot; at the
//! end /oldroot is detached and /newroot becomes /.
//!
//! The parent half is `launcher::plan`, which turns the policy's tree into `Op`s before clone.

use crate::child::{Fail, fail};
use crate::policy::tree::Access;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, pivot_root, symlinkat, write};
use std::ffi::{CStr, CString};

pub const OLD: &str = "/oldroot";
pub const NEW: &str = "/newroot";

/// One tree operation with every path ready for the child (no allocation needed there).
#[derive(Debug)]
pub enum Op {
    Bind { src: CString, dst: CString, dir: bool, access: Access },
    Tmpfs { dst: CString, data: CString, noexec: bool },
    Overlay { base: CString, upper: CString, work: CString, base_data: CString, dst: CString, data: CString },
    Symlink { target: CString, dst: CString },
    Dir { dst: CString },
    File { dst: CString, contents: Vec<u8> },
    /// A fresh procfs at `dst`, then `hide` (masked) and `read_only` paths below it.
    Proc { dst: CString, hide: Vec<CString>, read_only: Vec<CString> },
    DevPts { dst: CString },
    RemountRo { dst: CString },
    NoExec { dst: CString },
}

/// The path as the user wrote it: without the /oldroot or /newroot prefix.
fn shown(p: &CStr) -> &str {
    let s = p.to_str().unwrap_or("?");
    s.strip_prefix(OLD).or_else(|| s.strip_prefix(NEW)).map(|r| if r.is_empty() { "/" } else { r }).unwrap_or(s)
}

/// mkdir -p, each component 0755; existing directories are fine. Tries the whole path first:
/// in the usual case (parent exists) that is the only system call.
fn mkdir_p(path: &CStr) -> Result<(), Fail> {
    match mkdir(path, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail(e, format_args!("mkdir({})", shown(path)))),
    }
    // Create each component from the top (iteratively: paths may be deep).
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return Err(fail(Errno::ENAMETOOLONG, format_args!("mkdir({})", shown(path))));
    }
    for (i, b) in bytes.iter().enumerate() {
        if (*b == b'/' && i > 0) || i == bytes.len() - 1 {
            let end = if *b == b'/' { i } else { i + 1 };
            buf[..end].copy_from_slice(&bytes[..end]);
            buf[end] = 0;
            let part = CStr::from_bytes_until_nul(&buf[..=end]).map_err(|_| fail(Errno::EINVAL, format_args!("mkdir({})", shown(path))))?;
            match mkdir(part, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(fail(e, format_args!("mkdir({})", shown(part)))),
            }
        }
    }
    Ok(())
}

fn parent_of(path: &CStr) -> Result<(), Fail> {
    let bytes = path.to_bytes();
    let Some(cut) = bytes.iter().rposition(|b| *b == b'/') else { return Ok(()) };
    if cut == 0 {
        return Ok(());
    }
    let mut buf = [0u8; 4096];
    if cut >= buf.len() {
        return Err(fail(Errno::ENAMETOOLONG, format_args!("mkdir({})", shown(path))));
    }
    buf[..cut].copy_from_slice(&bytes[..cut]);
    let p = CStr::from_bytes_until_nul(&buf[..=cut]).map_err(|_| fail(Errno::EINVAL, format_args!("mkdir({})", shown(path))))?;
    mkdir_p(p)
}

fn touch(path: &CStr) -> Result<(), Fail> {
    let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    if open(path, flags, Mode::from_bits_truncate(0o644)).is_ok() {
        return Ok(());
    }
    parent_of(path)?;
    match open(path, OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, Mode::from_bits_truncate(0o644)) {
        Ok(_) => Ok(()),
        Err(e) => Err(fail(e, format_args!("create mount point {}", shown(path)))),
    }
}

/// Add mount flags to `path`'s mount (recursively for binds), never removing any.
/// mount_setattr (5.12+) does the whole subtree at once; on ENOSYS each mount is remounted,
/// keeping the flags the kernel locked on it.
fn set_attrs(path: &CStr, attrs: u64, recursive: bool, what: &str) -> Result<(), Fail> {
    match sys::mount_setattr(path, attrs, 0, recursive) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => remount_fallback(path, attrs, recursive, what),
        Err(e) => Err(fail(e, format_args!("mount_setattr({}, {what})", shown(path)))),
    }
}

fn remount_fallback(path: &CStr, attrs: u64, recursive: bool, what: &str) -> Result<(), Fail> {
    let mut targets: Vec<CString> = vec![path.to_owned()];
    if recursive {
        let prefix = path.to_bytes();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in info.lines() {
            if let Some(mp) = line.split(' ').nth(4) {
                let mpb = mp.as_bytes();
                if mpb.len() > prefix.len() && mpb.starts_with(prefix) && mpb[prefix.len()] == b'/' {
                    if let Ok(c) = CString::new(mpb) {
                        targets.push(c);
                    }
                }
            }
        }
    }
    for t in &targets {
        let st = nix::sys::statvfs::statvfs(t.as_c_str()).map_err(|e| fail(e, format_args!("statvfs({})", shown(t))))?;
        let f = st.flags();
        use nix::sys::statvfs::FsFlags;
        let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
        for (have, ms) in [
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if f.contains(have) {
                flags |= ms;
            }
        }
        for (bit, ms) in [
            (sys::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
            (sys::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
            (sys::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
            (sys::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if attrs & bit != 0 {
                flags |= ms;
            }
        }
        mount(None::<&str>, t.as_c_str(), None::<&str>, flags, None::<&str>)
            .map_err(|e| fail(e, format_args!("mount({}, remount {what})", shown(t))))?;
    }
    Ok(())
}

fn apply(op: &Op) -> Result<(), Fail> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    match op {
        Op::Bind { src, dst, dir, access } => {
            if *dir { mkdir_p(dst)? } else { touch(dst)? }
            let kind = match access {
                Access::ReadOnly => "ro",
                Access::ReadWrite => "rw",
                Access::Device => "dev",
            };
            mount(Some(src.as_c_str()), dst.as_c_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| fail(e, format_args!("mount({} -> {}, bind {kind})", shown(src), shown(dst))))?;
            let attrs = match access {
                Access::ReadOnly => sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                Access::ReadWrite => sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
                // A device node from the host's /dev keeps that mount's nosuid, which the
                // kernel locks on the bind; one call fewer per node.
                Access::Device if src.to_bytes().starts_with(b"/oldroot/dev/") => return Ok(()),
                Access::Device => sys::MOUNT_ATTR_NOSUID,
            };
            set_attrs(dst, attrs, true, kind)
        }
        Op::Tmpfs { dst, data, noexec } => {
            mkdir_p(dst)?;
            let flags = nosuid_nodev | if *noexec { MsFlags::MS_NOEXEC } else { MsFlags::empty() };
            mount(Some("tmpfs"), dst.as_c_str(), Some("tmpfs"), flags, Some(data.as_c_str()))
                .map_err(|e| fail(e, format_args!("mount(tmpfs -> {}, {})", shown(dst), data.to_str().unwrap_or(""))))
        }
        Op::Overlay { base, upper, work, base_data, dst, data } => {
            mkdir_p(base)?;
            mount(Some("tmpfs"), base.as_c_str(), Some("tmpfs"), nosuid_nodev, Some(base_data.as_c_str()))
                .map_err(|e| fail(e, format_args!("mount(tmpfs -> {} for the overlay on {})", shown(base), shown(dst))))?;
            mkdir_p(upper)?;
            mkdir_p(work)?;
            mkdir_p(dst)?;
            mount(Some("overlay"), dst.as_c_str(), Some("overlay"), nosuid_nodev, Some(data.as_c_str()))
                .map_err(|e| fail(e, format_args!("mount(overlay -> {}, {})", shown(dst), data.to_str().unwrap_or(""))))
        }
        Op::Symlink { target, dst } => {
            parent_of(dst)?;
            symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, dst.as_c_str())
                .map_err(|e| fail(e, format_args!("symlink({} -> {})", shown(dst), target.to_str().unwrap_or("?"))))
        }
        Op::Dir { dst } => mkdir_p(dst),
        Op::File { dst, contents } => {
            parent_of(dst)?;
            let fd = open(dst.as_c_str(), OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
                .map_err(|e| fail(e, format_args!("create {}", shown(dst))))?;
            let mut rest: &[u8] = contents;
            while !rest.is_empty() {
                match write(&fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(fail(e, format_args!("write {}", shown(dst)))),
                }
            }
            Ok(())
        }
        Op::Proc { dst, hide, read_only } => {
            mkdir_p(dst)?;
            mount(Some("proc"), dst.as_c_str(), Some("proc"), nosuid_nodev | MsFlags::MS_NOEXEC, None::<&str>)
                .map_err(|e| fail(e, format_args!("mount(proc -> {})", shown(dst))))?;
            // As runc and Docker do: host-global knobs read-only, kernel memory and other
            // hosts' secrets out of sight. A path this kernel does not have is skipped.
            for p in read_only {
                if matches!(nix::sys::stat::stat(p.as_c_str()), Err(Errno::ENOENT)) {
                    continue;
                }
                mount(Some(p.as_c_str()), p.as_c_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .map_err(|e| fail(e, format_args!("mount({} -> itself, bind)", shown(p))))?;
                set_attrs(p, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC, true, "ro")?;
            }
            for p in hide {
                let st = match nix::sys::stat::stat(p.as_c_str()) {
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(fail(e, format_args!("stat({})", shown(p)))),
                    Ok(st) => st,
                };
                if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR {
                    mount(Some("tmpfs"), p.as_c_str(), Some("tmpfs"), nosuid_nodev | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY, Some("size=0,mode=0555"))
                        .map_err(|e| fail(e, format_args!("mount(empty tmpfs -> {})", shown(p))))?;
                } else {
                    mount(Some(c"/oldroot/dev/null"), p.as_c_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                        .map_err(|e| fail(e, format_args!("mount(/dev/null -> {}, bind)", shown(p))))?;
                }
            }
            Ok(())
        }
        Op::DevPts { dst } => {
            mkdir_p(dst)?;
            mount(Some("devpts"), dst.as_c_str(), Some("devpts"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some("newinstance,ptmxmode=0666,mode=620"))
                .map_err(|e| fail(e, format_args!("mount(devpts -> {})", shown(dst))))
        }
        Op::RemountRo { dst } => set_attrs(dst, sys::MOUNT_ATTR_RDONLY, false, "ro"),
        Op::NoExec { dst } => set_attrs(dst, sys::MOUNT_ATTR_NOEXEC, true, "noexec"),
    }
}

/// Build the new root from `ops` and make it `/`. Afterwards nothing of the host's tree is
/// reachable except what `ops` bound.
pub fn build_root(ops: &[Op]) -> Result<(), Fail> {
    // Nothing we mount may propagate back to the host's namespace.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| fail(e, format_args!("mount(/, MS_REC|MS_PRIVATE)")))?;
    // A scratch tmpfs becomes / and the host's root moves to /oldroot: bind sources are then
    // read from /oldroot/SRC, wherever they are (even under the host's /tmp).
    mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0700"))
        .map_err(|e| fail(e, format_args!("mount(tmpfs -> /tmp, scratch root)")))?;
    chdir("/tmp").map_err(|e| fail(e, format_args!("chdir(/tmp)")))?;
    for d in ["newroot", "oldroot"] {
        mkdir(d, Mode::from_bits_truncate(0o755)).map_err(|e| fail(e, format_args!("mkdir(/tmp/{d})")))?;
    }
    pivot_root(".", "oldroot").map_err(|e| fail(e, format_args!("pivot_root(/tmp, /tmp/oldroot)")))?;
    chdir("/").map_err(|e| fail(e, format_args!("chdir(/)")))?;
    mount(Some("tmpfs"), NEW, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))
        .map_err(|e| fail(e, format_args!("mount(tmpfs -> /, new root)")))?;

    for op in ops {
        apply(op)?;
    }

    // Detach the host's tree, then make /newroot the root (bubblewrap's sequence).
    mount(None::<&str>, OLD, None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| fail(e, format_args!("mount({OLD}, MS_REC|MS_PRIVATE)")))?;
    umount2(OLD, MntFlags::MNT_DETACH).map_err(|e| fail(e, format_args!("umount2({OLD}, MNT_DETACH)")))?;
    chdir(NEW).map_err(|e| fail(e, format_args!("chdir({NEW})")))?;
    pivot_root(".", ".").map_err(|e| fail(e, format_args!("pivot_root(., .)")))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail(e, format_args!("umount2(old root, MNT_DETACH)")))?;
    chdir("/").map_err(|e| fail(e, format_args!("chdir(/)")))?;
    Ok(())
}
