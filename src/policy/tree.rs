//! The sandbox's file tree, declared: the ordered list of operations the child performs to
//! build a fresh root on tmpfs (read-only binds of the system directories, a minimal /etc,
//! /proc, /dev, /tmp, the work dir, the caller's own operations), with host paths already
//! canonical and destinations normalized. `child::init::mount` executes the list in order.

use crate::error::{Error, Result};
use crate::host::Host;
use crate::request::{BindAccess, MountSpec, Workdir, WorkdirMode};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// A device node: read-write and without `nodev`.
    Device,
}

impl From<BindAccess> for Access {
    fn from(a: BindAccess) -> Access {
        match a {
            BindAccess::ReadOnly => Access::ReadOnly,
            BindAccess::ReadWrite => Access::ReadWrite,
            BindAccess::Device => Access::Device,
        }
    }
}

/// One step of building the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    Bind { src: PathBuf, dst: PathBuf, dir: bool, access: Access },
    Tmpfs { dst: PathBuf, size: u64, mode: u32, noexec: bool },
    Overlay { src: PathBuf, dst: PathBuf, size: u64 },
    Symlink { target: PathBuf, dst: PathBuf },
    Dir { dst: PathBuf },
    File { dst: PathBuf, contents: Vec<u8> },
    Proc { dst: PathBuf },
    DevPts { dst: PathBuf },
    /// Make a mount point read-only (not recursive): used last, for / and /dev.
    RemountRo { dst: PathBuf },
    /// Add noexec to a mount (recursively).
    NoExec { dst: PathBuf },
}

/// What `Policy::build` needs from the file system: canonical path and whether it is a dir.
pub trait Resolve {
    fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)>;
    /// A directory others may write (world-writable or sticky, as /tmp, /var/tmp, /dev/shm):
    /// other users' sockets and files can be in it.
    fn shared(&self, p: &Path) -> bool;
}

/// The real file system, seen with the caller's rights.
pub struct RealFs;

impl Resolve for RealFs {
    fn resolve(&self, p: &Path) -> std::io::Result<(PathBuf, bool)> {
        let c = std::fs::canonicalize(p)?;
        let dir = std::fs::metadata(&c)?.is_dir();
        Ok((c, dir))
    }
    fn shared(&self, p: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o1002 != 0)
    }
}

/// Normalize a destination inside the sandbox: absolute, no `..`, `.` and `//` folded.
/// `/` itself is refused (the root is ward's own).
pub fn normalize_dst(what: &str, p: &Path) -> Result<PathBuf> {
    let shown = p.display();
    if p.as_os_str().is_empty() {
        return Err(Error::invalid(format!("{what}: the destination is empty"), "give an absolute path such as /data"));
    }
    if p.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid(format!("{what} {shown:?}: the path contains a NUL byte"), ""));
    }
    if !p.is_absolute() {
        return Err(Error::invalid(format!("{what} {shown}: the destination must be an absolute path"), format!("write it as /{shown}")));
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!("{what} {shown}: the destination must not contain '..'"), "write the path without '..'"));
            }
        }
    }
    if out == Path::new("/") {
        return Err(Error::invalid(format!("{what} {shown}: cannot replace the sandbox's root"), "bind to a directory below /"));
    }
    if out.as_os_str().len() > 3000 {
        return Err(Error::invalid(format!("{what}: the destination is longer than 3000 bytes"), ""));
    }
    Ok(out)
}

/// The tree every run gets, before the work dir and the caller's own operations.
pub fn base(host: &Host, passwd: String, group: String, hostname: &str, tmp_size: u64, dev_pts: bool, proc: bool) -> Vec<MountOp> {
    let p = PathBuf::from;
    let mut t = vec![MountOp::Bind { src: p("/usr"), dst: p("/usr"), dir: true, access: Access::ReadOnly }];
    for (name, link) in &host.usr_links {
        let dst = Path::new("/").join(name);
        t.push(match link {
            Some(target) => MountOp::Symlink { target: target.clone(), dst },
            None => MountOp::Bind { src: dst.clone(), dst, dir: true, access: Access::ReadOnly },
        });
    }
    t.push(MountOp::Dir { dst: p("/etc") });
    t.push(MountOp::File { dst: p("/etc/passwd"), contents: passwd.into_bytes() });
    t.push(MountOp::File { dst: p("/etc/group"), contents: group.into_bytes() });
    t.push(MountOp::File {
        dst: p("/etc/hosts"),
        contents: format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n").into_bytes(),
    });
    t.push(MountOp::File { dst: p("/etc/hostname"), contents: format!("{hostname}\n").into_bytes() });
    t.push(MountOp::File {
        dst: p("/etc/nsswitch.conf"),
        contents: b"passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n".to_vec(),
    });
    if host.has_ld_so_cache {
        t.push(MountOp::Bind { src: p("/etc/ld.so.cache"), dst: p("/etc/ld.so.cache"), dir: false, access: Access::ReadOnly });
    }
    if host.has_alternatives {
        t.push(MountOp::Bind { src: p("/etc/alternatives"), dst: p("/etc/alternatives"), dir: true, access: Access::ReadOnly });
    }
    if let Some(lt) = &host.localtime {
        t.push(MountOp::Symlink { target: lt.clone(), dst: p("/etc/localtime") });
    }
    t.push(if proc { MountOp::Proc { dst: p("/proc") } } else { MountOp::Dir { dst: p("/proc") } });
    t.push(MountOp::Tmpfs { dst: p("/dev"), size: 64 << 10, mode: 0o755, noexec: true });
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let d = Path::new("/dev").join(dev);
        t.push(MountOp::Bind { src: d.clone(), dst: d, dir: false, access: Access::Device });
    }
    // no /dev/core: /proc/kcore is not for sandboxes
    for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        t.push(MountOp::Symlink { target: p(target), dst: Path::new("/dev").join(name) });
    }
    t.push(MountOp::Tmpfs { dst: p("/dev/shm"), size: tmp_size, mode: 0o1777, noexec: false });
    if dev_pts {
        t.push(MountOp::DevPts { dst: p("/dev/pts") });
        t.push(MountOp::Symlink { target: p("pts/ptmx"), dst: p("/dev/ptmx") });
    }
    t.push(MountOp::Tmpfs { dst: p("/tmp"), size: tmp_size, mode: 0o1777, noexec: false });
    t
}

fn resolve_src(what: &str, src: &Path, fs: &dyn Resolve) -> Result<(PathBuf, bool)> {
    fs.resolve(src).map_err(|e| {
        Error::invalid(format!("{what} {}: the source cannot be used: {e}", src.display()), "check that the path exists and that you can read it")
    })
}

/// A leading `~/` is the caller's home directory.
fn expand(src: &Path, home: Option<&Path>) -> PathBuf {
    match (src.strip_prefix("~"), home) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => src.to_path_buf(),
    }
}

/// The operation for one of the caller's specs; `None` for an optional bind whose source is
/// not there.
pub fn user_op(m: &MountSpec, fs: &dyn Resolve, home: Option<&Path>, tmp_size: u64) -> Result<Option<MountOp>> {
    let present = |src: &Path| fs.resolve(&expand(src, home)).is_ok();
    Ok(Some(match m {
        MountSpec::Bind { src, dst, access, optional } => {
            if *optional && !present(src) {
                return Ok(None);
            }
            let what = match access {
                BindAccess::ReadOnly => "--ro-bind",
                BindAccess::ReadWrite => "--bind",
                BindAccess::Device => "--dev-bind",
            };
            let dst = normalize_dst(what, dst)?;
            let (src, dir) = resolve_src(what, &expand(src, home), fs)?;
            MountOp::Bind { src, dst, dir, access: (*access).into() }
        }
        MountSpec::Tmpfs { dst, size } => {
            MountOp::Tmpfs { dst: normalize_dst("--tmpfs", dst)?, size: size.map(|s| s.0).unwrap_or(tmp_size), mode: 0o755, noexec: false }
        }
        MountSpec::Overlay { src, dst, optional } => {
            if *optional && !present(src) {
                return Ok(None);
            }
            let dst = normalize_dst("--overlay", dst)?;
            let (src, dir) = resolve_src("--overlay", &expand(src, home), fs)?;
            if !dir {
                return Err(Error::invalid(format!("--overlay {}: the source is not a directory", src.display()), "overlay a directory"));
            }
            overlay_source_ok("--overlay", &src)?;
            MountOp::Overlay { src, dst, size: tmp_size }
        }
        MountSpec::Symlink { target, dst } => {
            if target.as_os_str().is_empty() || target.as_os_str().as_bytes().contains(&0) {
                return Err(Error::invalid("--symlink: the target is empty or contains NUL", "give a target path"));
            }
            MountOp::Symlink { target: target.clone(), dst: normalize_dst("--symlink", dst)? }
        }
        MountSpec::Dir { dst } => MountOp::Dir { dst: normalize_dst("--dir", dst)? },
        MountSpec::NoExec { dst } => MountOp::NoExec { dst: normalize_dst("noexec", dst)? },
    }))
}

/// overlayfs reads its lower directory from a comma- and colon-separated option string: a
/// path with ',', ':' or '\' would inject options or layers.
pub fn overlay_source_ok(what: &str, src: &Path) -> Result<()> {
    if src.as_os_str().as_bytes().iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
        return Err(Error::invalid(format!("{what} {}: overlayfs cannot take a path with ',', ':' or '\\'", src.display()), "rename the directory or bind it first"));
    }
    Ok(())
}

pub fn resolve_workdir(w: &Workdir, mode: WorkdirMode, host: &Host, fs: &dyn Resolve) -> Result<Option<(PathBuf, WorkdirMode)>> {
    let dir = match w {
        Workdir::None => return Ok(None),
        Workdir::Dir(d) => {
            let (c, is_dir) = resolve_src("--workdir", d, fs)?;
            if !is_dir {
                return Err(Error::invalid(format!("--workdir {}: not a directory", d.display()), "name a directory"));
            }
            c
        }
        Workdir::Auto => {
            let Ok((c, true)) = fs.resolve(&host.cwd) else { return Ok(None) };
            if auto_workdir_is_unsafe(&c, host.home.as_deref()) || fs.shared(&c) {
                return Ok(None);
            }
            c
        }
    };
    if dir == Path::new("/") {
        return Err(Error::invalid("--workdir /: cannot bind the whole host tree", "name a project directory"));
    }
    if mode == WorkdirMode::Overlay {
        overlay_source_ok("--workdir-mode overlay: the work dir", &dir)?;
    }
    Ok(Some((dir, mode)))
}

/// The current directory is not bound automatically when binding it would expose far more
/// than a project: `/`, the home directory or an ancestor of it, or a system directory; nor
/// (`Resolve::shared`) a directory others may write, such as /tmp: a bind exposes every
/// unix socket in it (tmux's, an X server's, an ssh agent's), read-only or not, and
/// `connect()` on a path socket is not a write.
pub fn auto_workdir_is_unsafe(cwd: &Path, home: Option<&Path>) -> bool {
    if cwd == Path::new("/") {
        return true;
    }
    if let Some(h) = home {
        if h.starts_with(cwd) {
            return true;
        }
    }
    ["/usr", "/etc", "/proc", "/sys", "/dev", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/var", "/run"].iter().any(|s| cwd.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_dst_rules() {
        assert_eq!(normalize_dst("x", Path::new("/a//b/./c")).unwrap(), PathBuf::from("/a/b/c"));
        assert!(normalize_dst("x", Path::new("a/b")).unwrap_err().to_string().contains("absolute"));
        assert!(normalize_dst("x", Path::new("/a/../etc")).unwrap_err().to_string().contains("'..'"));
        assert!(normalize_dst("x", Path::new("/")).is_err());
        assert!(normalize_dst("x", Path::new("/./")).is_err());
        assert!(normalize_dst("x", Path::new("")).is_err());
    }

    #[test]
    fn overlay_paths_cannot_inject_options() {
        assert!(overlay_source_ok("x", Path::new("/a:/oldroot/home")).is_err());
        assert!(overlay_source_ok("x", Path::new("/a,upperdir=/x")).is_err());
        assert!(overlay_source_ok("x", Path::new("/srv/proj")).is_ok());
    }
}
