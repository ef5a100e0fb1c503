//! Parent half of networking: give the sandbox's network namespace a user-mode stack from
//! slirp4netns or pasta (the passt package), started with std::process as the caller, only
//! when asked. Without it the namespace has only loopback (`child::net`).
//!
//! - The helper joins the namespace of the sandbox's init (the caller owns that user
//!   namespace, so no privilege is needed), configures an interface, a default route and
//!   the MTU, and says when it is ready: slirp4netns writes to `--ready-fd`; pasta writes its
//!   pid file, which ward points at a pipe. Only then does init let the program start.
//! - The host's loopback is unreachable unless `--allow-host-loopback`: slirp4netns
//!   `--disable-host-loopback`; pasta `--no-map-gw`. pasta always gets `-T none -U none`
//!   (its default would forward the sandbox's own loopback ports to the host's), and
//!   `-t`/`-u` only for `--publish` (its default would expose every port bound inside).
//! - Lifetime: a small guard process, forked by the launcher, holds a pidfd of the helper
//!   and blocks on a pipe whose other end only the launcher holds; when the run ends, or the
//!   launcher dies even by SIGKILL, the pipe closes and the guard kills the helper and
//!   removes its temporary directory. slirp4netns also gets `--exit-fd` on the same pipe.
//!   The launcher never waits for the helper's exit (slirp4netns takes ~25 ms to tear down).

use crate::error::{Error, NetError, Result};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::policy::net::{NetPolicy, Proto, Publish, MTU, SLIRP_GUEST};
use crate::request::NetMode;

/// The arguments of the helper (pure, unit tested). `ready_fd`/`exit_fd` are the fd numbers
/// the helper inherits; `api` the slirp4netns API socket path.
/// `ns_fds`: the sandbox's user and network namespaces as inherited fds, for pasta started
/// by root (it then joins them through its own fds instead of init's /proc files).
pub fn helper_args(p: &NetPolicy, pid: i32, ready_fd: i32, exit_fd: i32, api: Option<&str>, ns_fds: Option<(i32, i32)>) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    match p.mode {
        NetMode::Slirp4netns => {
            a.extend(["--configure".into(), format!("--mtu={MTU}"), format!("--ready-fd={ready_fd}"), format!("--exit-fd={exit_fd}")]);
            if !p.allow_host_loopback {
                a.push("--disable-host-loopback".into());
            }
            if let Some(api) = api {
                a.push(format!("--api-socket={api}"));
            }
            a.extend([pid.to_string(), "tap0".into()]);
        }
        _ => {
            a.extend(["--config-net".into(), "--quiet".into(), "--foreground".into(), "--mtu".into(), MTU.to_string()]);
            a.extend(["--pid".into(), format!("/dev/fd/{ready_fd}")]);
            if !p.allow_host_loopback {
                a.push("--no-map-gw".into()); // the gateway address does not lead to the host
            }
            // Never forward the sandbox's own loopback ports to the host's (pasta's default):
            // the host is reached, when allowed, only through the gateway address.
            a.extend(["-T".into(), "none".into(), "-U".into(), "none".into()]);
            let spec = |proto: Proto| -> Vec<String> {
                p.publish.iter().filter(|x| x.proto == proto).map(|x| format!("{}/{}:{}", x.host_ip, x.host_port, x.port)).collect()
            };
            for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
                let s = spec(proto);
                a.push(flag.into());
                a.push(if s.is_empty() { "none".into() } else { s.join(",") });
            }
            if let Some(g) = p.gateway {
                a.extend(["--dns-forward".into(), g.to_string()]);
            }
            match ns_fds {
                // Started by root, pasta would change to nobody and then could neither open
                // init's /proc files (init has taken the sandbox's ids, so it is not
                // dumpable) nor enter a namespace root owns: it stays root, as slirp4netns
                // does for a root caller, and joins through fds the launcher opened.
                Some((user, net)) => a.extend([
                    "--runas".into(),
                    "0:0".into(),
                    "--userns".into(),
                    format!("/proc/self/fd/{user}"),
                    "--netns".into(),
                    format!("/proc/self/fd/{net}"),
                ]),
                None => a.push(pid.to_string()),
            }
        }
    }
    a
}

/// A running helper and its guard.
#[derive(Debug)]
pub struct Helper {
    pub child: std::process::Child,
    pub guard: Pid,
    /// The launcher's end of the guard pipe: dropping it ends the helper.
    guard_pipe: Option<OwnedFd>,
    pub args: Vec<String>,
}

impl Helper {
    /// End the helper without waiting for it; its pid and the guard's are reaped later.
    pub fn finish(mut self) {
        self.guard_pipe = None;
        crate::sys::remember_to_reap(Pid::from_raw(self.child.id() as i32));
        crate::sys::remember_to_reap(self.guard);
    }
}

fn inheritable(fd: &OwnedFd) -> Result<()> {
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).map(drop).map_err(|e| Error::sys("fcntl(F_SETFD, 0)", e))
}

fn install_fix(mode: NetMode) -> &'static str {
    if mode == NetMode::Pasta { "as root: apt-get install passt" } else { "as root: apt-get install slirp4netns" }
}

/// Start the helper for the sandbox whose init is `pid`, and wait until its interface is up.
pub fn start(p: &NetPolicy, pid: Pid) -> Result<Helper> {
    let name = if p.mode == NetMode::Slirp4netns { "slirp4netns" } else { "pasta" };
    crate::host::probe::tun_usable().map_err(|why| NetError::Tun { helper: name, why })?;
    for pb in p.publish.iter().filter(|x| x.proto == Proto::Tcp) {
        std::net::TcpListener::bind((pb.host_ip, pb.host_port)).map_err(|e| {
            NetError::Port { host_ip: pb.host_ip, host_port: pb.host_port, port: pb.port, why: format!("{}:{} cannot be used: {e}", pb.host_ip, pb.host_port) }
        })?;
    }
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    let (exit_r, exit_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe2", e))?;
    let api_dir = if p.mode == NetMode::Slirp4netns && !p.publish.is_empty() {
        Some(tempfile::Builder::new().prefix("ward-net-").tempdir().map_err(|e| Error::io("create a directory for slirp4netns' API socket", e))?)
    } else {
        None
    };
    let api = api_dir.as_ref().map(|d| d.path().join("api.sock").display().to_string());
    let ns = if p.mode == NetMode::Pasta && nix::unistd::Uid::effective().is_root() {
        let open_ns = |n: &str| {
            let path = format!("/proc/{pid}/ns/{n}");
            nix::fcntl::open(path.as_str(), nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).map_err(|e| Error::sys(format!("open({path})"), e))
        };
        Some((open_ns("user")?, open_ns("net")?))
    } else {
        None
    };
    if let Some((u, n)) = &ns {
        inheritable(u)?;
        inheritable(n)?;
    }
    let args = helper_args(p, pid.as_raw(), ready_w.as_raw_fd(), exit_r.as_raw_fd(), api.as_deref(), ns.as_ref().map(|(u, n)| (u.as_raw_fd(), n.as_raw_fd())));
    inheritable(&ready_w)?;
    inheritable(&exit_r)?;
    // stderr goes to an anonymous file: read if the helper fails, never a pipe it could
    // block on (or die of SIGPIPE on) later.
    let errfile = tempfile::tempfile().map_err(|e| Error::io("create a file for the helper's messages", e))?;
    let errclone = errfile.try_clone().map_err(|e| Error::io("dup the helper's message file", e))?;
    let spawned = Command::new(&p.helper).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(errclone)).spawn();
    drop(ready_w);
    drop(ns);
    let child = spawned.map_err(|e| NetError::Start { helper: name, path: p.helper.clone(), why: e.to_string(), fix: install_fix(p.mode) })?;
    let pidfd = crate::sys::pidfd_open(Pid::from_raw(child.id() as i32)).map_err(|e| Error::sys("pidfd_open(helper)", e))?;
    // The guard waits on the read end; only the launcher holds the write end.
    let guard = crate::sys::fork_keeping([exit_r.as_fd(), pidfd.as_fd()], api_dir.as_ref().map(|d| d.path().to_path_buf()), guard)
        .map_err(|e| Error::sys("fork(helper guard)", e))?;
    drop(exit_r);
    drop(pidfd);
    // The guard removes the directory when it ends the helper.
    let _ = api_dir.map(tempfile::TempDir::keep);
    let mut helper = Helper { child, guard, guard_pipe: Some(exit_w), args };
    if let Err(e) = wait_ready(&mut helper, ready_r, name, errfile) {
        helper.finish();
        return Err(e);
    }
    if let (Some(api), NetMode::Slirp4netns) = (&api, p.mode) {
        if let Err(e) = publish_slirp(api, &p.publish) {
            helper.finish();
            return Err(e);
        }
        let _ = std::fs::remove_file(api);
    }
    Ok(helper)
}

fn wait_ready(h: &mut Helper, ready: OwnedFd, name: &'static str, mut errfile: std::fs::File) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [nix::poll::PollFd::new(ready.as_fd(), nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {
                let mut b = [0u8; 32];
                let got = nix::unistd::read(&ready, &mut b).unwrap_or(0);
                if got > 0 {
                    return Ok(());
                }
                break; // EOF: the helper closed the pipe without saying it is ready
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll(helper ready)", e)),
        }
        if let Ok(Some(_)) = h.child.try_wait() {
            break;
        }
        if left.is_zero() {
            return Err(NetError::NotReady { helper: name }.into());
        }
    }
    let _ = h.child.kill();
    let _ = h.child.wait();
    let mut err = String::new();
    use std::io::Seek;
    let _ = errfile.rewind();
    let _ = errfile.read_to_string(&mut err);
    let err: String = err.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(NetError::Failed { helper: name, message: if err.is_empty() { "no message".into() } else { err } }.into())
}

fn publish_slirp(api: &str, publish: &[Publish]) -> Result<()> {
    for pb in publish {
        let mut s = std::os::unix::net::UnixStream::connect(api).map_err(|e| NetError::Api { what: format!("connect to slirp4netns' API socket {api}"), source: e })?;
        let req = serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {"proto": match pb.proto { Proto::Tcp => "tcp", Proto::Udp => "udp" }, "host_addr": pb.host_ip.to_string(), "host_port": pb.host_port, "guest_addr": SLIRP_GUEST, "guest_port": pb.port}
        });
        s.write_all(req.to_string().as_bytes()).map_err(|e| NetError::Api { what: "write to slirp4netns' API socket".into(), source: e })?;
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        if resp.contains("\"error\"") {
            return Err(NetError::Port { host_ip: pb.host_ip, host_port: pb.host_port, port: pb.port, why: format!("slirp4netns refused: {}", resp.trim()) }.into());
        }
    }
    Ok(())
}

/// Step "network helper": with networking, start the helper for the sandbox whose init is
/// `init` and tell init it is ready (`NetReady`); init waits for that before the program.
pub fn start_for(p: &crate::policy::Policy, init: Pid, chan: std::os::fd::BorrowedFd<'_>) -> Result<Option<Helper>> {
    let Some(n) = &p.net else { return Ok(None) };
    let h = start(n, init)?;
    if let Err(e) = crate::sync::send_msg(chan, &crate::sync::Msg::NetReady) {
        h.finish();
        return Err(Error::sys("send(NetReady)", e));
    }
    Ok(Some(h))
}

/// End the helper (if any) without waiting for it; its arguments, for the verdict.
pub fn finish(h: Option<Helper>) -> Vec<String> {
    let Some(h) = h else { return Vec::new() };
    let args = h.args.clone();
    h.finish();
    args
}


/// The helper's guard: blocks until `wait` (a pipe's read end, whose write end only the
/// launcher holds) reports EOF, then SIGKILLs the helper behind `helper` (a pidfd), removes
/// `dir` if given, and exits. It holds no other descriptor, so a launcher killed at any
/// point still ends its helper.
fn guard([wait, helper]: [std::os::fd::BorrowedFd<'static>; 2], dir: Option<std::path::PathBuf>) -> ! {
    let mut b = [0u8; 16];
    loop {
        match nix::unistd::read(wait, &mut b) {
            Ok(0) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    let _ = crate::sys::pidfd_kill(helper);
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    crate::sys::exit_now(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::net::SLIRP_DNS;

    fn pol(mode: NetMode) -> NetPolicy {
        NetPolicy {
            mode,
            helper: "/usr/bin/x".into(),
            allow_host_loopback: false,
            publish: vec![Publish::parse("8080:80").unwrap(), Publish::parse("127.0.0.1:5353:53/udp").unwrap()],
            allow_connect: vec![],
            allow_bind: vec![],
            dns: SLIRP_DNS.parse().unwrap(),
            gateway: Some("192.0.2.1".parse().unwrap()),
        }
    }

    #[test]
    fn helpers_never_reach_host_loopback_by_default() {
        let s = helper_args(&pol(NetMode::Slirp4netns), 42, 5, 6, Some("/tmp/a.sock"), None);
        assert!(s.contains(&"--disable-host-loopback".to_string()) && s.contains(&"--exit-fd=6".to_string()) && s.ends_with(&["42".into(), "tap0".into()]));
        let p = helper_args(&pol(NetMode::Pasta), 42, 5, 6, None, None);
        let j = p.join(" ");
        assert!(j.contains("--no-map-gw -T none -U none"), "{j}");
        assert!(j.contains("-t 127.0.0.1/8080:80 -u 127.0.0.1/5353:53"), "{j}");
        assert!(j.contains("--pid /dev/fd/5") && j.ends_with(" 42"), "{j}");
        let mut open = pol(NetMode::Pasta);
        open.allow_host_loopback = true;
        open.publish.clear();
        let j = helper_args(&open, 1, 5, 6, None, None).join(" ");
        assert!(!j.contains("--no-map-gw") && j.contains("-T none -U none -t none -u none"), "{j}");
    }
}
