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
use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::sys::stat::mkdirat;
use nix::unistd::{chdir, fchdir, mkdir, pivot_root, symlinkat, write};
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

pub const OLD: &str = "/oldroot";
pub const NEW: &str = "/newroot";

/// One tree operation with every path ready for the child (no allocation needed there).
#[derive(Debug)]
pub enum Op {
    /// `src` is the host path (opened by `open_sources` before the root is built).
    Bind { src: CString, dst: CString, dir: bool, access: Access },
    Tmpfs { dst: CString, data: CString, noexec: bool },
    /// `src` (a host path, opened by `open_sources`) is bound at `lower` on the scratch root.
    Overlay { src: CString, base: CString, lower: CString, upper: CString, work: CString, base_data: CString, dst: CString, data: CString },
    Symlink { target: CString, dst: CString },
    Dir { dst: CString },
    File { dst: CString, contents: Vec<u8> },
    /// A fresh procfs at `dst`, then, when `masked`, `PROC_HIDDEN` out of sight and
    /// `PROC_READ_ONLY` read-only below it. `null` is the /dev/null bound over hidden files.
    Proc { dst: CString, masked: bool, null: CString },
    DevPts { dst: CString },
    RemountRo { dst: CString },
    NoExec { dst: CString },
}

/// Below /proc, out of sight (runc's and Docker's masked paths): kernel memory, other
/// processes' timing and keys, hardware.
pub const PROC_HIDDEN: [&str; 10] = ["kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats", "acpi", "asound", "scsi", "interrupts"];
/// Below /proc, read-only (runc's and Docker's): host-global knobs.
pub const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];

/// `dir/name` as a C string in `buf` (no allocation: a warm run's init is a copy of the
/// launcher, whose heap pages it would copy by writing them).
fn join_in<'b>(buf: &'b mut [u8; 512], dir: &CStr, name: &str) -> Result<&'b CStr, Fail> {
    let (d, n) = (dir.to_bytes(), name.as_bytes());
    let len = d.len() + 1 + n.len();
    if len >= buf.len() {
        return Err(fail(Errno::ENAMETOOLONG, format_args!("{}/{name}", shown(dir))));
    }
    buf[..d.len()].copy_from_slice(d);
    buf[d.len()] = b'/';
    buf[d.len() + 1..len].copy_from_slice(n);
    buf[len] = 0;
    CStr::from_bytes_with_nul(&buf[..=len]).map_err(|_| fail(Errno::EINVAL, format_args!("{}/{name}", shown(dir))))
}

/// The path as the user wrote it: without the /oldroot or /newroot prefix.
fn shown(p: &CStr) -> &str {
    let s = p.to_str().unwrap_or("?");
    s.strip_prefix(OLD).or_else(|| s.strip_prefix(NEW)).map(|r| if r.is_empty() { "/" } else { r }).unwrap_or(s)
}

fn no_symlinks(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_NO_SYMLINKS)
}

/// What a mount point is, if `target` has to create it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// The mount point `path`, created when missing (directories 0755, an empty file 0644) and
/// opened: what is then mounted on the returned fd lands exactly there. `careful` (the path
/// lies below a bind, which another sandbox may write): no symbolic link is followed
/// anywhere on the way. Otherwise the path is on ward's own tmpfs, which nothing else
/// writes while the root is built, and plain path calls are enough.
fn target(path: &CStr, kind: Kind, careful: bool) -> Result<OwnedFd, Fail> {
    if !careful {
        let made = match kind {
            Kind::Dir => match mkdir(path, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => open(path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()),
                Err(e) => Err(e),
            },
            // the created (or existing) file's fd names the mount point itself
            Kind::File => open(path, OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644)),
        };
        match made {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(e, format_args!("create mount point {}", shown(path)))),
        }
    } else {
        match openat2(AT_FDCWD, path, no_symlinks(OFlag::O_PATH)) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail(e, format_args!("open mount point {} (no symbolic links)", shown(path)))),
        }
    }
    let (dir, name) = parent(path, careful)?;
    create(&dir, name, kind).map_err(|e| fail(e, format_args!("create mount point {}", shown(path))))
}

fn create(dir: &OwnedFd, name: &CStr, kind: Kind) -> nix::Result<OwnedFd> {
    match kind {
        Kind::Dir => {
            match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            openat(dir, name, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        }
        Kind::File => openat(dir, name, OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644)),
    }
}

/// The directory that holds `path` (created like `mkdir -p`, each component 0755; never
/// through a symbolic link when `careful`) and the last component's name.
fn parent(path: &CStr, careful: bool) -> Result<(OwnedFd, &CStr), Fail> {
    let all = path.to_bytes_with_nul();
    let bytes = path.to_bytes();
    let cut = bytes.iter().rposition(|b| *b == b'/').ok_or_else(|| fail(Errno::EINVAL, format_args!("{}: not an absolute path", shown(path))))?;
    let name = CStr::from_bytes_with_nul(&all[cut + 1..]).map_err(|_| fail(Errno::EINVAL, format_args!("{}", shown(path))))?;
    // the usual case: the parent is there (one call)
    let mut buf = [0u8; 4096];
    if cut > 0 && cut < buf.len() {
        buf[..cut].copy_from_slice(&bytes[..cut]);
        if let Ok(p) = CStr::from_bytes_until_nul(&buf) {
            let dirflags = OFlag::O_PATH | OFlag::O_DIRECTORY;
            let found = if careful { openat2(AT_FDCWD, p, no_symlinks(dirflags)) } else { open(p, dirflags | OFlag::O_CLOEXEC, Mode::empty()) };
            if let Ok(d) = found {
                return Ok((d, name));
            }
        }
    }
    let mut dir = open(c"/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| fail(e, format_args!("open(/)")))?;
    for comp in bytes[..cut].split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        let mut buf = [0u8; 256];
        if comp.len() >= buf.len() {
            return Err(fail(Errno::ENAMETOOLONG, format_args!("{}", shown(path))));
        }
        buf[..comp.len()].copy_from_slice(comp);
        let c = CStr::from_bytes_until_nul(&buf).map_err(|_| fail(Errno::EINVAL, format_args!("{}", shown(path))))?;
        dir = create(&dir, c, Kind::Dir).map_err(|e| {
            let why = if e == Errno::ENOTDIR { " (a symbolic link or not a directory)" } else { "" };
            fail(e, format_args!("create the directories of {}{why}", shown(path)))
        })?;
    }
    Ok((dir, name))
}

/// Is `path` below one of the binds made so far (whose contents another sandbox may write)?
fn below(path: &CStr, binds: &[&[u8]]) -> bool {
    let p = path.to_bytes();
    binds.iter().any(|b| p.len() > b.len() && p.starts_with(b) && p[b.len()] == b'/')
}

/// Mount on a directory held by `at` through the working directory: `mount(..., ".")` names
/// exactly that directory, with no path to follow.
fn mount_here(at: &OwnedFd, src: &str, fstype: &str, flags: MsFlags, data: Option<&CStr>, what: fmt::Arguments<'_>) -> Result<(), Fail> {
    fchdir(at).map_err(|e| fail(e, format_args!("fchdir(mount point for {what})")))?;
    mount(Some(src), ".", Some(fstype), flags, data).map_err(|e| fail(e, format_args!("mount({what})")))
}

/// The bind sources, opened before anything is mounted (and, for a root caller, before its
/// ids change): the canonical paths the launcher checked, opened with no symbolic link
/// allowed anywhere, so a source swapped for a link in between is refused (ELOOP) rather
/// than followed. One fd per `Bind` and `Overlay`, in order.
pub fn open_sources(ops: &[Op]) -> Result<Vec<OwnedFd>, Fail> {
    let mut fds = Vec::with_capacity(ops.len());
    for op in ops {
        if let Op::Bind { src, .. } | Op::Overlay { src, .. } = op {
            let fd = openat2(AT_FDCWD, src.as_c_str(), no_symlinks(OFlag::O_PATH)).map_err(|e| {
                let why = if e == Errno::ELOOP { " (a component became a symbolic link after ward resolved it)" } else { "" };
                fail(e, format_args!("open bind source {}{why}", src.to_str().unwrap_or("?")))
            })?;
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// Bind the tree at `src` onto `dst` with `attrs` set first: open_tree clones it detached,
/// mount_setattr makes it read-only/nosuid/nodev before it is visible, move_mount attaches it.
fn bind_fd(src: &OwnedFd, dst: &CStr, kind: Kind, attrs: u64, what: &str, careful: bool) -> Result<(), Fail> {
    let tree = sys::open_tree_clone(src.as_fd()).map_err(|e| fail(e, format_args!("open_tree({} -> {}, clone)", what, shown(dst))))?;
    let later = match sys::mount_setattr_fd(tree.as_fd(), attrs) {
        Ok(()) => false,
        Err(Errno::ENOSYS) => true, // before 5.12: remount the attached tree below
        Err(e) => return Err(fail(e, format_args!("mount_setattr({} -> {}, {what})", "bind", shown(dst)))),
    };
    let at = target(dst, kind, careful)?;
    sys::move_mount_fd(tree.as_fd(), at.as_fd()).map_err(|e| fail(e, format_args!("move_mount(-> {}, bind {what})", shown(dst))))?;
    if later { remount_fallback(dst, attrs, true, what) } else { Ok(()) }
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

/// Perform one operation. `binds`: the directories bound so far; `None` when every path is
/// to be treated as lying below a bind (a warm run's fresh mounts).
fn apply<'a>(op: &'a Op, sources: &mut std::vec::IntoIter<OwnedFd>, binds: &mut Option<Vec<&'a [u8]>>) -> Result<(), Fail> {
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let careful = |p: &CStr| binds.as_ref().is_none_or(|b| below(p, b));
    let mut source = || sources.next().ok_or_else(|| fail(Errno::EINVAL, format_args!("a bind source was not opened")));
    match op {
        Op::Bind { src, dst, dir, access } => {
            let (kind, attrs) = match access {
                Access::ReadOnly => ("ro", sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV),
                Access::ReadWrite => ("rw", sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV),
                // device nodes work, set-user-ID files do not
                Access::Device => ("dev", sys::MOUNT_ATTR_NOSUID),
            };
            let _ = src;
            bind_fd(&source()?, dst, if *dir { Kind::Dir } else { Kind::File }, attrs, kind, careful(dst))?;
            if let (true, Some(b)) = (*dir, binds.as_mut()) {
                b.push(dst.to_bytes());
            }
            Ok(())
        }
        Op::Tmpfs { dst, data, noexec } => {
            let flags = nosuid_nodev | if *noexec { MsFlags::MS_NOEXEC } else { MsFlags::empty() };
            let at = target(dst, Kind::Dir, careful(dst))?;
            mount_here(&at, "tmpfs", "tmpfs", flags, Some(data), format_args!("tmpfs -> {}, {}", shown(dst), data.to_str().unwrap_or("")))
        }
        Op::Overlay { src: _, base, lower, upper, work, base_data, dst, data } => {
            // On the scratch root, which only ward writes: a tmpfs for the upper and work
            // directories, and the source bound (from its fd) as the lower layer, so the
            // option string names ward's own paths only.
            let b = target(base, Kind::Dir, false)?;
            mount_here(&b, "tmpfs", "tmpfs", nosuid_nodev, Some(base_data), format_args!("tmpfs -> {} for the overlay on {}", shown(base), shown(dst)))?;
            bind_fd(&source()?, lower, Kind::Dir, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV, "overlay lower", false)?;
            target(upper, Kind::Dir, false)?;
            target(work, Kind::Dir, false)?;
            let at = target(dst, Kind::Dir, careful(dst))?;
            mount_here(&at, "overlay", "overlay", nosuid_nodev, Some(data), format_args!("overlay -> {}, {}", shown(dst), data.to_str().unwrap_or("")))?;
            if let Some(b) = binds.as_mut() {
                b.push(dst.to_bytes());
            }
            Ok(())
        }
        Op::Symlink { target: to, dst } => {
            let (dir, name) = parent(dst, careful(dst))?;
            symlinkat(to.as_c_str(), &dir, name).map_err(|e| fail(e, format_args!("symlink({} -> {})", shown(dst), to.to_str().unwrap_or("?"))))
        }
        Op::Dir { dst } => target(dst, Kind::Dir, careful(dst)).map(drop),
        Op::File { dst, contents } => {
            let (dir, name) = parent(dst, careful(dst))?;
            let fd = openat(&dir, name, OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
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
        Op::Proc { dst, masked, null } => {
            let at = target(dst, Kind::Dir, careful(dst))?;
            mount_here(&at, "proc", "proc", nosuid_nodev | MsFlags::MS_NOEXEC, None, format_args!("proc -> {}", shown(dst)))?;
            if !masked {
                return Ok(());
            }
            // As runc and Docker do: host-global knobs read-only, kernel memory and other
            // hosts' secrets out of sight. A path this kernel does not have is skipped.
            let mut buf = [0u8; 512];
            for name in PROC_READ_ONLY {
                let p = join_in(&mut buf, dst, name)?;
                if matches!(nix::sys::stat::stat(p), Err(Errno::ENOENT)) {
                    continue;
                }
                mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .map_err(|e| fail(e, format_args!("mount({} -> itself, bind)", shown(p))))?;
                set_attrs(p, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC, true, "ro")?;
            }
            for name in PROC_HIDDEN {
                let p = join_in(&mut buf, dst, name)?;
                let st = match nix::sys::stat::stat(p) {
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(fail(e, format_args!("stat({})", shown(p)))),
                    Ok(st) => st,
                };
                if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR {
                    mount(Some("tmpfs"), p, Some("tmpfs"), nosuid_nodev | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY, Some("size=0,mode=0555"))
                        .map_err(|e| fail(e, format_args!("mount(empty tmpfs -> {})", shown(p))))?;
                } else {
                    mount(Some(null.as_c_str()), p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                        .map_err(|e| fail(e, format_args!("mount(/dev/null -> {}, bind)", shown(p))))?;
                }
            }
            Ok(())
        }
        Op::DevPts { dst } => {
            let at = target(dst, Kind::Dir, careful(dst))?;
            mount_here(&at, "devpts", "devpts", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, Some(c"newinstance,ptmxmode=0666,mode=620"), format_args!("devpts -> {}", shown(dst)))
        }
        Op::RemountRo { dst } => set_attrs(dst, sys::MOUNT_ATTR_RDONLY, false, "ro"),
        Op::NoExec { dst } => {
            // the destination may lie below a writable bind: never through a symbolic link
            let at = openat2(AT_FDCWD, dst.as_c_str(), no_symlinks(OFlag::O_PATH)).map_err(|e| fail(e, format_args!("open {} for noexec (no symbolic links)", shown(dst))))?;
            match sys::mount_setattr_fd(at.as_fd(), sys::MOUNT_ATTR_NOEXEC) {
                Err(Errno::ENOSYS) => remount_fallback(dst, sys::MOUNT_ATTR_NOEXEC, true, "noexec"),
                other => other.map_err(|e| fail(e, format_args!("mount_setattr({}, noexec)", shown(dst)))),
            }
        }
    }
}

/// Build the new root from `ops` and make it `/`. Afterwards nothing of the host's tree is
/// reachable except what `ops` bound.
pub fn build_root(ops: &[Op], sources: Vec<OwnedFd>) -> Result<(), Fail> {
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

    let mut sources = sources.into_iter();
    let mut binds = Some(Vec::with_capacity(ops.len()));
    for op in ops {
        apply(op, &mut sources, &mut binds)?;
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

/// A warm run, in its own copy of the keeper's mount namespace (whose root is the sandbox's
/// already, read-only): mount afresh every place the program can write and /proc of the
/// run's pid namespace, each on top of the keeper's, which no run reaches again. No symbolic
/// link is followed on the way (a fresh place may lie below the caller's writable bind).
///
/// A bind below a fresh place (a work dir under /tmp) is bound again from the keeper's own
/// bind at the same path, opened before the fresh mount hides it: the host's tree is not
/// reachable from here, and need not be.
pub fn refresh(ops: &[Op]) -> Result<(), Fail> {
    let mut kept = Vec::new();
    for op in ops {
        if let Op::Bind { dst, .. } = op {
            kept.push(openat2(AT_FDCWD, dst.as_c_str(), no_symlinks(OFlag::O_PATH)).map_err(|e| fail(e, format_args!("open the kept bind {}", shown(dst))))?);
        }
    }
    let mut kept = kept.into_iter();
    let mut careful = None;
    for op in ops {
        apply(op, &mut kept, &mut careful)?;
    }
    chdir("/").map_err(|e| fail(e, format_args!("chdir(/)")))
}
