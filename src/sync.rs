//! Parent <-> child messages over one SOCK_SEQPACKET socketpair. Every message is one
//! fixed-size datagram, encoded without allocation, so the child can send it between clone
//! and exec. The launcher (parent) sends `Go` once the id maps are written; the sandbox's
//! init and the program child report `Failed` (which step, errno, what) and `Exited`.

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv, send};
use std::fmt::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The steps of the child pipeline, in order (see `child::run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    UserNs = 1,
    Mount,
    Net,
    Hostname,
    Keyring,
    Init,
    Session,
    Bounding,
    Ids,
    Caps,
    Stdio,
    Landlock,
    Chdir,
    Rlimits,
    Fds,
    Seccomp,
    Exec,
}

/// Every stage with its name, in pipeline order: the one table `name` and the decoder read.
const STAGES: [(Stage, &str); 17] = [
    (Stage::UserNs, "user namespace"),
    (Stage::Mount, "mount"),
    (Stage::Net, "network"),
    (Stage::Hostname, "hostname"),
    (Stage::Keyring, "keyring"),
    (Stage::Init, "init"),
    (Stage::Session, "session"),
    (Stage::Bounding, "capability bounding set"),
    (Stage::Ids, "ids"),
    (Stage::Caps, "capabilities"),
    (Stage::Stdio, "stdio"),
    (Stage::Landlock, "landlock"),
    (Stage::Chdir, "chdir"),
    (Stage::Rlimits, "rlimits"),
    (Stage::Fds, "file descriptors"),
    (Stage::Seccomp, "seccomp"),
    (Stage::Exec, "exec"),
];

impl Stage {
    pub fn name(self) -> &'static str {
        STAGES.iter().find(|(s, _)| *s == self).map(|(_, n)| *n).unwrap_or("?")
    }

    fn from_u32(v: u32) -> Option<Stage> {
        STAGES.iter().map(|(s, _)| *s).find(|s| *s as u32 == v)
    }
}

pub const NOTE_LEN: usize = 400;

/// A fixed-size text buffer (formatted without allocation; longer text is cut).
#[derive(Clone)]
pub struct Note {
    buf: [u8; NOTE_LEN],
    len: usize,
}

impl Note {
    pub fn new() -> Note {
        Note { buf: [0; NOTE_LEN], len: 0 }
    }
    pub fn from_args(args: fmt::Arguments<'_>) -> Note {
        let mut n = Note::new();
        let _ = n.write_fmt(args);
        n
    }
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 chars are ever appended (see write_str).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Default for Note {
    fn default() -> Self {
        Note::new()
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Write for Note {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            let mut tmp = [0u8; 4];
            let enc = ch.encode_utf8(&mut tmp).as_bytes();
            if self.len + enc.len() > NOTE_LEN {
                return Ok(());
            }
            self.buf[self.len..self.len + enc.len()].copy_from_slice(enc);
            self.len += enc.len();
        }
        Ok(())
    }
}

/// What the sandbox's init measured for the program and everything it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitReport {
    /// Raw wait status of the program (as from waitpid).
    pub wait_status: i32,
    pub wall_ns: u64,
    pub utime_us: u64,
    pub stime_us: u64,
    pub maxrss_kib: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // fixed-size datagrams, no allocation
pub enum Msg {
    /// parent -> child: the id maps are written, go on.
    Go,
    /// child -> parent: a step failed; the child exits right after.
    Failed { stage: Stage, errno: i32, what: Note },
    /// init -> parent: the program ended and everything else in the sandbox was killed.
    Exited(ExitReport),
    /// program -> parent: the seccomp notification listener, passed as SCM_RIGHTS.
    Listener,
    /// parent -> init: the networking helper has configured the interface.
    NetReady,
    /// init -> parent: the program's process has exec'd the program, or ended trying (its
    /// clock starts; init sends it once the process no longer shares its memory).
    Started,
    /// program -> parent: the CPU time (ns) its process used before execve (ward's last
    /// steps), which the verdict does not charge to the program.
    PreExec(u64),
    /// parent -> a warm run's program: its stdin (0), stdout (1) or stderr (2), passed as
    /// SCM_RIGHTS before `Go` (opened when the run is due, not when its init was cloned).
    Stdio(u32),
}

const MSG_LEN: usize = 4 + 4 + 4 + 2 + NOTE_LEN + 8 * 7;

impl Msg {
    fn encode(&self, out: &mut [u8; MSG_LEN]) {
        let mut w = Writer { out, pos: 0 };
        match self {
            Msg::Go => w.u32(1),
            Msg::Failed { stage, errno, what } => {
                w.u32(2);
                w.u32(*stage as u32);
                w.u32(*errno as u32);
                w.u16(what.len as u16);
                w.bytes(&what.buf);
            }
            Msg::Listener => w.u32(4),
            Msg::NetReady => w.u32(5),
            Msg::Started => w.u32(6),
            Msg::PreExec(ns) => {
                w.u32(7);
                w.u64(*ns);
            }
            Msg::Stdio(n) => {
                w.u32(8);
                w.u32(*n);
            }
            Msg::Exited(r) => {
                w.u32(3);
                for v in [
                    r.wait_status as u32 as u64,
                    r.wall_ns,
                    r.utime_us,
                    r.stime_us,
                    r.maxrss_kib,
                    r.nvcsw,
                    r.nivcsw,
                ] {
                    w.u64(v);
                }
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        let mut r = Reader { b, pos: 0 };
        match r.u32()? {
            1 => Some(Msg::Go),
            2 => {
                let stage = Stage::from_u32(r.u32()?)?;
                let errno = r.u32()? as i32;
                let len = (r.u16()? as usize).min(NOTE_LEN);
                let raw = r.take(NOTE_LEN)?;
                let mut what = Note::new();
                let _ = what.write_str(std::str::from_utf8(&raw[..len]).unwrap_or("?"));
                Some(Msg::Failed { stage, errno, what })
            }
            3 => {
                let mut v = [0u64; 7];
                for slot in v.iter_mut() {
                    *slot = r.u64()?;
                }
                Some(Msg::Exited(ExitReport {
                    wait_status: v[0] as u32 as i32,
                    wall_ns: v[1],
                    utime_us: v[2],
                    stime_us: v[3],
                    maxrss_kib: v[4],
                    nvcsw: v[5],
                    nivcsw: v[6],
                }))
            }
            4 => Some(Msg::Listener),
            5 => Some(Msg::NetReady),
            6 => Some(Msg::Started),
            7 => Some(Msg::PreExec(r.u64()?)),
            8 => Some(Msg::Stdio(r.u32()?)).filter(|m| matches!(m, Msg::Stdio(0..=2))),
            _ => None,
        }
    }
}

struct Writer<'a> {
    out: &'a mut [u8; MSG_LEN],
    pos: usize,
}
impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_ne_bytes())
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_ne_bytes())
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_ne_bytes())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Send one message (blocking; retried on EINTR).
pub fn send_msg(fd: BorrowedFd<'_>, msg: &Msg) -> nix::Result<()> {
    let mut buf = [0u8; MSG_LEN];
    msg.encode(&mut buf);
    loop {
        match send(fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// Send one message with an fd attached (SCM_RIGHTS).
pub fn send_msg_fd(fd: BorrowedFd<'_>, msg: &Msg, pass: BorrowedFd<'_>) -> nix::Result<()> {
    let mut buf = [0u8; MSG_LEN];
    msg.encode(&mut buf);
    crate::sys::send_with_fd(fd, &buf, pass)
}

/// Receive one message and the fd it carries, if any (close-on-exec). `Ok(None)` as in
/// `recv_msg`.
pub fn recv_msg_fd(fd: BorrowedFd<'_>, nonblock: bool) -> nix::Result<Option<(Msg, Option<std::os::fd::OwnedFd>)>> {
    let mut buf = [0u8; MSG_LEN];
    let (n, passed) = crate::sys::recv_with_fd(fd, &mut buf, nonblock)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Msg::decode(&buf[..n]).map(|m| (m, passed)))
}

/// Receive one message. `Ok(None)` means the other side closed the channel (EOF) or sent
/// something that is not a message; with `nonblock`, EAGAIN is returned as an error.
pub fn recv_msg(fd: BorrowedFd<'_>, nonblock: bool) -> nix::Result<Option<Msg>> {
    let mut buf = [0u8; MSG_LEN];
    let flags = if nonblock { MsgFlags::MSG_DONTWAIT } else { MsgFlags::empty() };
    loop {
        match recv(fd.as_raw_fd(), &mut buf, flags) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Msg::decode(&buf[..n])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut buf = [0u8; MSG_LEN];
        let f = Msg::Failed {
            stage: Stage::Mount,
            errno: 1,
            what: Note::from_args(format_args!("mount({} -> {})", "/usr", "/usr")),
        };
        f.encode(&mut buf);
        match Msg::decode(&buf) {
            Some(Msg::Failed { stage, errno, what }) => {
                assert_eq!(stage, Stage::Mount);
                assert_eq!(errno, 1);
                assert_eq!(what.as_str(), "mount(/usr -> /usr)");
            }
            other => panic!("decoded {other:?}"),
        }
        let r = ExitReport { wait_status: 0x8b, wall_ns: 5, utime_us: 6, stime_us: 7, maxrss_kib: 8, nvcsw: 9, nivcsw: 10 };
        Msg::Exited(r).encode(&mut buf);
        assert!(matches!(Msg::decode(&buf), Some(Msg::Exited(x)) if x == r));
        Msg::Stdio(2).encode(&mut buf);
        assert!(matches!(Msg::decode(&buf), Some(Msg::Stdio(2))));
        Msg::Stdio(3).encode(&mut buf);
        assert!(Msg::decode(&buf).is_none(), "only 0, 1 and 2 are stdio");
        assert!(Msg::decode(&[9, 0, 0, 0]).is_none());
        assert!(Msg::decode(&[2, 0]).is_none());
    }

    #[test]
    fn every_stage_is_in_the_table_in_order() {
        for (i, (s, _)) in STAGES.iter().enumerate() {
            assert_eq!(*s as usize, i + 1);
            assert_eq!(Stage::from_u32(*s as u32), Some(*s));
        }
        assert_eq!(Stage::from_u32(0), None);
        assert_eq!(Stage::from_u32(STAGES.len() as u32 + 1), None);
    }

    #[test]
    fn note_cuts_long_text_on_char_boundaries() {
        let long = "é".repeat(NOTE_LEN);
        let n = Note::from_args(format_args!("{long}"));
        assert_eq!(n.as_str().len(), NOTE_LEN);
        assert!(n.as_str().chars().all(|c| c == 'é'));
    }
}
