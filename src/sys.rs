//! The only module with `unsafe`: thin wrappers over the raw system calls that nix does not
//! cover (clone without a new stack, a vfork-style child on a stack of its own, mount_setattr,
//! close_range, wait4 with rusage, waitid leaving a zombie, the loopback ioctl,
//! landlock_create_ruleset, _exit, SCM_RIGHTS). Each wrapper is safe to call
//! because it checks, or does not need, what the raw call requires; the invariants are stated
//! at each block. A function whose soundness would depend on its caller is an `unsafe fn`
//! with a `# Safety` section (there is none outside this module's own use); a forked helper
//! body is a plain fn handed to `fork_keeping`, which lives with its mechanism.

use nix::errno::Errno;
use nix::libc::{self, c_int, c_long};
use nix::unistd::Pid;
use std::ffi::CStr;

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of the
/// parent's stack), `SIGCHLD` as exit signal and `flags` (CLONE_NEW*).
/// Returns `None` in the child and the child's pid in the parent.
///
/// Refused with EDEADLK unless the process is single-threaded (checked here), so the child's
/// copy of the address space holds no lock of a vanished thread.
pub fn clone_fork(flags: c_int) -> nix::Result<Option<Pid>> {
    single_threaded()?;
    clone_raw(flags)
}

/// Stack of a child that shares this process's memory (`spawn_sharing_memory`): 1 MiB above
/// one guard page (pages never touched cost nothing).
const SHARED_STACK: usize = 1 << 20;
const PAGE: usize = 4096;
/// The stack mapping kept for this process's next such child (0: none yet, or in use). A
/// forked copy of the process inherits the value with its copy of the mapping.
static SPARE_STACK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Run `body` in a child that shares this process's memory until it calls execve or ends:
/// clone(CLONE_VM | CLONE_VFORK), as posix_spawn does. No copy of the address space is made
/// (no page tables to copy, no copy-on-write faults afterwards in either process), and the
/// calling thread is suspended until the child execs or ends, so the two never run on the
/// same memory at once. The child has its own descriptor table, filesystem information,
/// signal handlers and credentials (none of CLONE_FILES, CLONE_FS, CLONE_SIGHAND,
/// CLONE_THREAD: setns, setsid, setrlimit, dup2 and the like change only the child), runs on
/// a fresh stack, and ends with `body`'s value as its exit status; what it writes to memory
/// the caller sees when it resumes. A process the child forks gets a copy of the memory as
/// it is then and keeps running on its copy of that stack. The stack's mapping is kept for
/// the next child. Returns the child's pid; it reports its end with SIGCHLD and must be
/// reaped.
pub fn spawn_sharing_memory(body: &mut dyn FnMut() -> c_int) -> nix::Result<Pid> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut` below, alive for the whole call: the
        // caller's thread is suspended in clone until this child has exec'd or ended.
        let body = unsafe { &mut *(arg as *mut &mut dyn FnMut() -> c_int) };
        body()
    }
    let spare = SPARE_STACK.swap(0, std::sync::atomic::Ordering::Relaxed);
    let base = if spare != 0 {
        spare as *mut libc::c_void
    } else {
        // SAFETY: a new private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), SHARED_STACK + PAGE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK, -1, 0)
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        // SAFETY: the lowest page of the mapping just made: an overflow faults instead of
        // writing below it.
        unsafe { libc::mprotect(base, PAGE, libc::PROT_NONE) };
        base
    };
    let mut body = body;
    // SAFETY: the child runs `trampoline` on the top of the fresh mapping (stacks grow down;
    // the end of a page-aligned mapping is 16-byte aligned) and cannot outlive the call as a
    // user of this memory (CLONE_VFORK); `body` is valid for as long as it runs.
    let ret = unsafe {
        libc::clone(
            trampoline,
            base.cast::<u8>().add(SHARED_STACK + PAGE).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut body as *mut &mut dyn FnMut() -> c_int).cast(),
        )
    };
    let err = Errno::last();
    // The child has left this memory (exec'd or ended; a process it forked has its own copy
    // of the mapping): kept for the next child, and what it left on it is dead.
    SPARE_STACK.store(base as usize, std::sync::atomic::Ordering::Relaxed);
    if ret == -1 { Err(err) } else { Ok(Pid::from_raw(ret)) }
}

fn clone_raw(flags: c_int) -> nix::Result<Option<Pid>> {
    // SAFETY: the raw clone syscall with a NULL stack behaves like fork(2): the child gets a
    // copy-on-write copy of the address space and resumes here. The caller (clone_fork) has
    // checked that the process is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as c_long,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<c_int>(),
            std::ptr::null_mut::<c_int>(),
            0 as c_long,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on `path` (kernel 5.12+), recursively when `recursive`.
pub fn mount_setattr(path: &CStr, set: u64, clr: u64, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr { attr_set: set, attr_clr: clr, propagation: 0, userns_fd: 0 };
    let flags = if recursive { 0x8000 /* AT_RECURSIVE */ } else { 0 } | libc::AT_NO_AUTOMOUNT;
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a properly sized, initialized
    // struct mount_attr that outlives the call; the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, ...)` on the mount `fd` names (an
/// attached mount or a detached tree from `open_tree_clone`): add `set` to every mount of it.
pub fn mount_setattr_fd(fd: std::os::fd::BorrowedFd<'_>, set: u64) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = MountAttr { attr_set: set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: an empty path with AT_EMPTY_PATH names `fd` itself; `attr` is a properly sized,
    // initialized struct mount_attr the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | 0x8000, /* AT_RECURSIVE */
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `open_tree(fd, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH)` (Linux 5.2+): a detached
/// copy of the mount tree at `fd`, as a bind would make, not yet attached anywhere.
pub fn open_tree_clone(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    const OPEN_TREE_CLONE: u32 = 1;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32 | 0x8000 /* AT_RECURSIVE */;
    // SAFETY: an empty NUL-terminated path and integer flags; on success the kernel returns
    // a new fd that we own.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    let fd = Errno::result(ret)? as std::os::fd::RawFd;
    // SAFETY: the fd was just created for us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`: attach
/// the mount `from` names onto the directory or file `to` names, with no path resolved.
pub fn move_mount_fd(from: std::os::fd::BorrowedFd<'_>, to: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    const F_EMPTY: u32 = 0x4;
    const T_EMPTY: u32 = 0x40;
    // SAFETY: two fds, two empty NUL-terminated paths and integer flags.
    let ret = unsafe { libc::syscall(libc::SYS_move_mount, from.as_raw_fd(), c"".as_ptr(), to.as_raw_fd(), c"".as_ptr(), F_EMPTY | T_EMPTY) };
    Errno::result(ret).map(drop)
}

/// Mark every fd >= `first` close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`,
/// kernel 5.11+), so they stay usable until execve succeeds and vanish with it.
pub fn close_range_cloexec(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes the fd table flags; no Rust object is invalidated
    // because CLOEXEC does not close anything before exec.
    let ret = unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as c_int) };
    Errno::result(ret).map(drop)
}

/// Close every fd >= `first` now (`close_range(first, ~0, 0)`), in the guard process only.
///
/// # Safety
/// No Rust object of this process may use an fd >= `first` afterwards (the guard, a fresh
/// fork that ends with `exit_now`, uses none).
unsafe fn close_range_now(first: u32) -> nix::Result<()> {
    // SAFETY: the caller guarantees that no live OwnedFd refers to fds >= first.
    let ret = unsafe { libc::close_range(first, u32::MAX, 0) };
    Errno::result(ret).map(drop)
}

/// Resource usage as returned by wait4.
pub type Rusage = libc::rusage;

/// `wait4(pid, &status, flags, &rusage)`: the raw wait status and the rusage of the child and
/// of all its waited-for descendants. Returns `None` with WNOHANG when nothing changed.
pub fn wait4(pid: Pid, nohang: bool) -> nix::Result<Option<(c_int, Rusage)>> {
    let mut status: c_int = 0;
    // SAFETY: rusage is plain old data; an all-zero value is valid.
    let mut ru: Rusage = unsafe { std::mem::zeroed() };
    let flags = if nohang { libc::WNOHANG } else { 0 } | libc::__WALL;
    loop {
        // SAFETY: status and ru are valid, writable and live for the call.
        let ret = unsafe { libc::wait4(pid.as_raw(), &mut status, flags, &mut ru) };
        match Errno::result(ret) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some((status, ru))),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `waitid(P_PID, pid, WEXITED | WNOWAIT [| WNOHANG], &info, &rusage)` (the kernel's waitid
/// takes a rusage): how the child ended, as a raw wait status, and its rusage, leaving it a
/// zombie for `wait4` to reap later. Returns `None` with `nohang` when it has not ended.
pub fn wait_ended(pid: Pid, nohang: bool) -> nix::Result<Option<(c_int, Rusage)>> {
    // SAFETY: siginfo_t and rusage are plain old data; all-zero values are valid.
    let (mut info, mut ru): (libc::siginfo_t, Rusage) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let flags = libc::WEXITED | libc::WNOWAIT | libc::__WALL | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: info and ru are valid, writable and live for the call; the other arguments
        // are integers.
        let ret = unsafe { libc::syscall(libc::SYS_waitid, libc::P_PID, pid.as_raw(), &mut info as *mut libc::siginfo_t, flags, &mut ru as *mut Rusage) };
        match Errno::result(ret) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed with WNOHANG), whose
    // si_pid and si_status fields these read.
    let (from, status) = unsafe { (info.si_pid(), info.si_status()) };
    if from == 0 {
        return Ok(None);
    }
    Ok(match info.si_code {
        libc::CLD_EXITED => Some(((status & 0xff) << 8, ru)),
        libc::CLD_KILLED => Some((status, ru)),
        libc::CLD_DUMPED => Some((status | 0x80, ru)),
        _ => None,
    })
}

/// Bring the loopback interface of the current network namespace up
/// (`ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS, "lo", IFF_UP)`).
pub fn loopback_up() -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; an all-zero value is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq for the socket ioctls SIOCGIFFLAGS/SIOCSIFFLAGS, which
    // read the name and read/write the flags union member only.
    unsafe {
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        Errno::result(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}

/// The Landlock ABI version of the running kernel (`landlock_create_ruleset(NULL, 0,
/// LANDLOCK_CREATE_RULESET_VERSION)`), or the errno (EOPNOTSUPP: disabled, ENOSYS: absent).
pub fn landlock_abi() -> nix::Result<i32> {
    // SAFETY: with a NULL attr and size 0 and the VERSION flag the kernel reads no memory.
    let ret = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32)
    };
    Errno::result(ret).map(|v| v as i32)
}

/// `_exit(2)`: leave the process now, without running atexit handlers or destructors
/// (a forked child must not flush the parent's stdio buffers twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust-managed state.
    unsafe { libc::_exit(code) }
}

/// Reset every signal disposition to its default and unblock all signals (before exec, and in
/// children that must not inherit the launcher's handlers or mask).
pub fn reset_signals() {
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None);
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting SIG_DFL installs no Rust handler, so nothing can run concurrently;
        // invalid numbers (the glibc-reserved RT signals) just return EINVAL.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Descriptors 0, 1 and 2 of this process, borrowed without `std::io::stdin()` and its
/// siblings: those allocate their buffers on first use, and in a child that is a copy of the
/// launcher an 8 KiB allocation makes glibc's malloc walk (and the kernel copy) heap pages
/// all over.
pub fn stdio_fds() -> [std::os::fd::BorrowedFd<'static>; 3] {
    // SAFETY: 0, 1 and 2 stay open for the life of the process (the child's stdio step put
    // the run's files there; nothing closes them).
    unsafe { [0, 1, 2].map(|n| std::os::fd::BorrowedFd::borrow_raw(n)) }
}

/// EDEADLK unless this process has exactly one thread (EDEADLK also when /proc cannot say).
/// glibc's own flag answers first: it is cleared for good when a second thread is made, so
/// while set, no /proc read is needed (one took ~17 µs, on every run of a batch).
pub fn single_threaded() -> nix::Result<()> {
    #[cfg(target_env = "gnu")]
    {
        unsafe extern "C" {
            static __libc_single_threaded: libc::c_char;
        }
        // SAFETY: a byte glibc (2.32+) keeps; only this process's threads write it, and there
        // are none besides this one when it reads 1.
        if unsafe { std::ptr::read_volatile(&raw const __libc_single_threaded) } == 1 {
            return Ok(());
        }
    }
    if thread_count() == Some(1) { Ok(()) } else { Err(Errno::EDEADLK) }
}

/// Number of threads of this process, from /proc/self/stat field 20 (or None if unreadable).
/// One open and one read into a stack buffer: no allocation (it runs in the child too).
pub fn thread_count() -> Option<u64> {
    use nix::fcntl::{OFlag, open};
    let fd = open(c"/proc/self/stat", OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()?;
    let mut buf = [0u8; 1024];
    let n = nix::unistd::read(&fd, &mut buf).ok()?;
    let stat = std::str::from_utf8(&buf[..n]).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(17)?.parse().ok()
}

/// Drop every capability from the bounding set (PR_CAPBSET_DROP for 0..=cap_last_cap) and
/// clear the ambient set. Needs CAP_SETPCAP in the current user namespace.
pub fn drop_bounding_and_ambient() -> nix::Result<()> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if ret == -1 {
            match Errno::last() {
                Errno::EINVAL => break, // past cap_last_cap
                e => return Err(e),
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0)
    };
    Errno::result(ret).map(drop)
}

/// Mark the descriptor numbered `fd` close-on-exec, whatever it is (EBADF if none is open).
/// Clear FD_CLOEXEC on `fd`, so it survives exec.
pub fn clear_cloexec(fd: std::os::fd::RawFd) -> nix::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an integer fd changes only its flags.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Changes no Rust object: the fd stays open until exec.
pub fn set_cloexec(fd: std::os::fd::RawFd) -> nix::Result<()> {
    // SAFETY: fcntl(F_SETFD) with an integer argument; no memory is passed, and an fd number
    // that is not open just yields EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Errno::result(ret).map(drop)
}

/// A new descriptor (close-on-exec, ours) for the open file behind the inherited number `fd`
/// (`--verdict-fd`); EBADF when nothing is open there. The inherited number is left as it is.
pub fn dup_inherited_fd(fd: std::os::fd::RawFd) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a number creates a new fd or fails; no memory is passed.
    let ret = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    let new = Errno::result(ret)?;
    // SAFETY: the kernel just created `new` for this call; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

/// Load a classic-BPF seccomp filter (the bytes libseccomp exported) with a user-notification
/// listener (`seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER)`), and return
/// the listener fd (close-on-exec). no_new_privs must already be set.
pub fn seccomp_load_listener(bpf: &[u8]) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if bpf.is_empty() || bpf.len() % 8 != 0 || bpf.len() / 8 > u16::MAX as usize {
        return Err(Errno::EINVAL);
    }
    let prog = SockFprog { len: (bpf.len() / 8) as u16, filter: bpf.as_ptr() };
    // SAFETY: `prog` points at `bpf`, a whole number of 8-byte sock_filter instructions that
    // outlives the call; the kernel copies the program and only reads it.
    let ret = unsafe {
        libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 8 /* FLAG_NEW_LISTENER */, &prog as *const SockFprog)
    };
    let fd = Errno::result(ret)? as std::os::fd::RawFd;
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `recvmsg` of one datagram into `buf`, taking ownership of the descriptors it carries
/// (SCM_RIGHTS, close-on-exec): the first is returned, any others are closed. Returns the
/// number of bytes (0: the peer closed the channel).
pub fn recv_with_fd(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8], nonblock: bool) -> nix::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // room for 4 fds' control message, on the stack (the child's copy of the launcher's heap
    // is left alone: no allocation here)
    let mut space = [0u64; 8];
    let flags = libc::MSG_CMSG_CLOEXEC | if nonblock { libc::MSG_DONTWAIT } else { 0 };
    loop {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: a zeroed msghdr is valid; its pointers are set to live buffers below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&space);
        // SAFETY: `msg` points at `iov` (over `buf`) and `space`, valid for their lengths.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let mut passed = None;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
        // msg_controllen; each SCM_RIGHTS payload holds whole fds just installed in this
        // process for this call, which nothing else owns (extra ones are closed here).
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c) as *const libc::c_int;
                    let count = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize) / std::mem::size_of::<libc::c_int>();
                    for i in 0..count {
                        let owned = std::os::fd::OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                        passed.get_or_insert(owned);
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        return Ok((n as usize, passed));
    }
}

/// Send `buf` with `pass` attached (SCM_RIGHTS), without allocating (the control message is
/// built on the stack).
pub fn send_with_fd(fd: std::os::fd::BorrowedFd<'_>, buf: &[u8], pass: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let mut space = [0u64; 4];
    loop {
        let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
        // SAFETY: a zeroed msghdr is valid; its pointers are set to live buffers below, and
        // the one control message (an fd) fits `space` (CMSG_SPACE(4) is 24 bytes).
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = space.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::c_int, pass.as_raw_fd());
            libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
        };
        match Errno::result(n) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// Join a new anonymous session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`), so the
/// caller's session keys are out of reach.
pub fn join_new_session_keyring() -> nix::Result<()> {
    // SAFETY: a NULL name asks for a new anonymous keyring; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, std::ptr::null::<libc::c_char>()) };
    Errno::result(ret).map(drop)
}

const KEY_SPEC_USER_KEYRING: c_long = -4;
const KEY_SPEC_SESSION_KEYRING: c_long = -3;

/// Is this process under a seccomp filter that refuses keyctl outright? Asking for the
/// session keyring's id (which any process may do) fails with EPERM only then.
pub fn keyctl_filtered() -> bool {
    // SAFETY: integer arguments only.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    // SAFETY: integer arguments only; create = 0 makes nothing.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, KEY_SPEC_SESSION_KEYRING, 0 as c_long) };
    mode == 2 && ret == -1 && Errno::last() == Errno::EPERM
}

/// `keyctl(KEYCTL_SEARCH, @u, "user", desc)`: the serial of the caller's user key `desc`.
/// The user keyring belongs to the user namespace: a sandbox (in its own) has another one.
pub fn user_key_find(desc: &CStr) -> nix::Result<i32> {
    // SAFETY: two valid NUL-terminated strings and integers; the kernel only reads them.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 10 /* KEYCTL_SEARCH */, KEY_SPEC_USER_KEYRING, c"user".as_ptr(), desc.as_ptr(), 0 as c_long) };
    Errno::result(ret).map(|r| r as i32)
}

/// `keyctl(KEYCTL_READ, serial, buf)`: the key's payload length (copied when it fits).
pub fn user_key_read(serial: i32, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length, which is passed with it.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 11 /* KEYCTL_READ */, serial as c_long, buf.as_mut_ptr(), buf.len()) };
    Errno::result(ret).map(|r| r as usize)
}

/// `add_key("user", desc, payload, @u)`, then only its possessor may use it
/// (`KEYCTL_SETPERM` possessor-all): a process of the same uid that does not possess the
/// caller's keyrings (a sandbox in its own session keyring and user namespace) cannot read it
/// even by serial.
pub fn user_key_add(desc: &CStr, payload: &[u8]) -> nix::Result<i32> {
    // SAFETY: valid NUL-terminated strings and a payload pointer valid for its length.
    let ret = unsafe { libc::syscall(libc::SYS_add_key, c"user".as_ptr(), desc.as_ptr(), payload.as_ptr(), payload.len(), KEY_SPEC_USER_KEYRING) };
    let serial = Errno::result(ret)? as i32;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 5 /* KEYCTL_SETPERM */, serial as c_long, 0x3f00_0000 as c_long /* KEY_POS_ALL */) };
    Errno::result(ret)?;
    Ok(serial)
}

/// The serials of the keys linked in the caller's user keyring (`KEYCTL_READ` of the keyring).
pub fn user_keyring_list() -> nix::Result<Vec<i32>> {
    let mut ids = vec![0i32; 256];
    // SAFETY: the buffer is valid for writes of its length in bytes, which is passed with it.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 11 /* KEYCTL_READ */, KEY_SPEC_USER_KEYRING, ids.as_mut_ptr(), ids.len() * 4) };
    let n = Errno::result(ret)? as usize / 4;
    ids.truncate(n.min(ids.len()));
    Ok(ids)
}

/// `keyctl(KEYCTL_DESCRIBE)`: "type;uid;gid;perm;description" of a key the caller may view.
pub fn key_describe(serial: i32) -> nix::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length, which is passed with it.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, 6 /* KEYCTL_DESCRIBE */, serial as c_long, buf.as_mut_ptr(), buf.len()) };
    let n = (Errno::result(ret)? as usize).min(buf.len());
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end_matches('\0').to_string())
}

/// `keyctl(KEYCTL_INVALIDATE)`: the key is gone at once and its quota freed by the kernel soon.
pub fn key_invalidate(serial: i32) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, 21 /* KEYCTL_INVALIDATE */, serial as c_long) }).map(drop)
}

/// `keyctl(KEYCTL_SET_TIMEOUT)`: the key expires `secs` seconds from now.
pub fn key_set_timeout(serial: i32, secs: u32) -> nix::Result<()> {
    // SAFETY: integer arguments only.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, 15 /* KEYCTL_SET_TIMEOUT */, serial as c_long, secs as c_long) }).map(drop)
}

/// `pidfd_open(pid, 0)`: a descriptor that names exactly this process, immune to pid reuse.
pub fn pidfd_open(pid: Pid) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: integer arguments only; on success the kernel returns a new fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as std::os::fd::RawFd;
    // SAFETY: the fd was just created for us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Fork a process that holds only `keep` (as fds 3 and 4; /dev/null as 0, 1 and 2; every
/// other descriptor closed), in its own session with default signal handling, and runs
/// `body` there. `body` is a plain function (it captures nothing of the parent's objects,
/// whose fds are gone in the child) and must end the process. Returns the child's pid.
pub fn fork_keeping(
    keep: [std::os::fd::BorrowedFd<'_>; 2],
    arg: Option<std::path::PathBuf>,
    body: fn([std::os::fd::BorrowedFd<'static>; 2], Option<std::path::PathBuf>) -> !,
) -> nix::Result<Pid> {
    use std::os::fd::AsRawFd;
    let (a, b) = (keep[0].as_raw_fd(), keep[1].as_raw_fd());
    if let Some(pid) = clone_fork(0)? {
        return Ok(pid);
    }
    reset_signals();
    let _ = nix::unistd::setsid();
    // SAFETY: plain fd syscalls on integers in the forked child; the two kept fds are moved
    // up first so that neither overwrites the other. The only code that runs afterwards is
    // `body`, which receives nothing but the two kept fds and `arg` (no fd inside).
    let kept = unsafe {
        let hi_a = libc::fcntl(a, libc::F_DUPFD, 100);
        let hi_b = libc::fcntl(b, libc::F_DUPFD, 101);
        libc::dup2(hi_a, 3);
        libc::dup2(hi_b, 4);
        libc::dup2(libc::open(c"/dev/null".as_ptr(), libc::O_RDWR), 0);
        libc::dup2(0, 1);
        libc::dup2(0, 2);
        let _ = close_range_now(5);
        // 3 and 4 are open now and stay open until the process exits.
        [std::os::fd::BorrowedFd::borrow_raw(3), std::os::fd::BorrowedFd::borrow_raw(4)]
    };
    body(kept, arg)
}

/// `pidfd_send_signal(pidfd, SIGKILL)`.
pub fn pidfd_kill(pidfd: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: integer arguments and a NULL siginfo.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0) };
    Errno::result(ret).map(drop)
}

thread_local! {
    static TO_REAP: std::cell::RefCell<Vec<Pid>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reap later, without blocking now (helpers and guards end on their own after the run).
pub fn remember_to_reap(pid: Pid) {
    TO_REAP.with(|v| v.borrow_mut().push(pid));
    reap_remembered();
}

/// Reap whatever remembered children have exited by now.
pub fn reap_remembered() {
    TO_REAP.with(|v| {
        v.borrow_mut().retain(|pid| matches!(wait4(*pid, true), Ok(None)));
    });
}

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(2)` with fork semantics (no new stack), `SIGCHLD` as exit signal, `flags`, and
/// with `cgroup` the child is born in that cgroup (CLONE_INTO_CGROUP, Linux 5.7+): no
/// instruction of it runs outside its leaf. ENOSYS on kernels without clone3.
/// Refused with EDEADLK unless the process is single-threaded, as `clone_fork`.
pub fn clone3_fork(flags: c_int, cgroup: Option<std::os::fd::BorrowedFd<'_>>) -> nix::Result<Option<Pid>> {
    single_threaded()?;
    clone3_raw(flags, cgroup)
}

/// clone3 from a warm run's joiner: a child of the single-threaded launcher, sharing its
/// memory, that has started nothing, so single-threaded by construction (its /proc, after setns into the
/// keeper's mount namespace, shows another pid namespace and cannot say so).
pub fn clone3_joiner(flags: c_int, cgroup: Option<std::os::fd::BorrowedFd<'_>>) -> nix::Result<Option<Pid>> {
    clone3_raw(flags, cgroup)
}

fn clone3_raw(flags: c_int, cgroup: Option<std::os::fd::BorrowedFd<'_>>) -> nix::Result<Option<Pid>> {
    use std::os::fd::AsRawFd;
    let mut args = CloneArgs {
        flags: flags as u32 as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        // CLONE_PARENT: the child is the caller's sibling and reports to the same parent with
        // the caller's own exit signal (clone3 wants 0 here then)
        exit_signal: if flags & libc::CLONE_PARENT != 0 { 0 } else { libc::SIGCHLD as u64 },
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: as clone_fork: a NULL stack gives fork semantics (the child resumes here on a
    // copy of the address space) and the process is single-threaded; `args` is a valid,
    // fully initialized struct clone_args the kernel only reads during the call.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Close every fd but 0, 1, 2 and the two in `keep` (a process that outlives its starter
/// must not hold the starter's pipes or files).
pub fn close_all_except(keep: [std::os::fd::BorrowedFd<'_>; 2]) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let mut k = [keep[0].as_raw_fd() as u32, keep[1].as_raw_fd() as u32];
    k.sort_unstable();
    let mut from = 3u32;
    for fd in k.into_iter().chain([u32::MAX]) {
        if fd > from {
            // SAFETY: only fds that no live value of this process refers to are closed: the
            // caller (a keeper, between fork and its own loop) keeps exactly `keep` and 0-2.
            let ret = unsafe { libc::close_range(from, fd - 1, 0) };
            Errno::result(ret)?;
        }
        from = fd.saturating_add(1);
    }
    Ok(())
}

/// The uid that owns the user namespace `fd` (ioctl NS_GET_OWNER_UID).
pub fn ns_owner_uid(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<u32> {
    use std::os::fd::AsRawFd;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    let mut uid: libc::uid_t = 0;
    // SAFETY: the ioctl writes one uid_t into the valid `uid` and reads nothing else.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_OWNER_UID as _, &mut uid as *mut libc::uid_t) };
    Errno::result(ret).map(|_| uid)
}
