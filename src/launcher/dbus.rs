//! A minimal, blocking D-Bus client: just enough to ask the systemd user manager for a
//! delegated scope (`StartTransientUnit`) and wait for its job, from the single-threaded
//! launcher before it forks (no threads, no async runtime). Little-endian wire format,
//! SASL EXTERNAL authentication over the session bus's unix socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A value to marshal.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    U32(u32),
    Bool(bool),
    Str(String),
    Path(String),
    Sig(String),
    /// Element signature and elements.
    Array(String, Vec<Val>),
    Struct(Vec<Val>),
    /// A variant: the value's signature and the value.
    Variant(String, Box<Val>),
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    while buf.len() % align != 0 {
        buf.push(0);
    }
}

fn align_of(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => 4,
    }
}

/// Marshal `v` into `buf` (offsets are relative to the start of the message).
pub fn put(buf: &mut Vec<u8>, v: &Val) {
    match v {
        Val::U32(x) => {
            pad(buf, 4);
            buf.extend_from_slice(&x.to_le_bytes());
        }
        Val::Bool(b) => put(buf, &Val::U32(u32::from(*b))),
        Val::Str(s) | Val::Path(s) => {
            pad(buf, 4);
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Val::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Val::Array(elem, items) => {
            pad(buf, 4);
            let len_at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            pad(buf, align_of(elem));
            let start = buf.len();
            for it in items {
                put(buf, it);
            }
            let len = (buf.len() - start) as u32;
            buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        Val::Struct(fields) => {
            pad(buf, 8);
            for f in fields {
                put(buf, f);
            }
        }
        Val::Variant(sig, inner) => {
            put(buf, &Val::Sig(sig.clone()));
            put(buf, inner);
        }
    }
}

/// A method call message.
pub fn method_call(serial: u32, dest: &str, path: &str, iface: &str, member: &str, sig: &str, args: &[Val]) -> Vec<u8> {
    let mut body = Vec::new();
    for a in args {
        put(&mut body, a);
    }
    let mut fields = vec![
        Val::Struct(vec![Val::U32(1), Val::Variant("o".into(), Box::new(Val::Path(path.into())))]),
        Val::Struct(vec![Val::U32(2), Val::Variant("s".into(), Box::new(Val::Str(iface.into())))]),
        Val::Struct(vec![Val::U32(3), Val::Variant("s".into(), Box::new(Val::Str(member.into())))]),
        Val::Struct(vec![Val::U32(6), Val::Variant("s".into(), Box::new(Val::Str(dest.into())))]),
    ];
    if !sig.is_empty() {
        fields.push(Val::Struct(vec![Val::U32(8), Val::Variant("g".into(), Box::new(Val::Sig(sig.into())))]));
    }
    let mut m = vec![b'l', 1, 0, 1];
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&serial.to_le_bytes());
    // header fields: array of struct (byte code, variant); the code is a byte, not a u32
    let mut arr = Vec::new();
    for f in fields {
        if let Val::Struct(parts) = f {
            pad_abs(&mut arr, 8, m.len() + 4);
            if let Val::U32(code) = parts[0] {
                arr.push(code as u8);
            }
            // the variant's content alignment is relative to the whole message
            let base = m.len() + 4 + arr.len();
            arr.extend(realign(&parts[1], base));
        }
    }
    m.extend_from_slice(&(arr.len() as u32).to_le_bytes());
    m.extend(arr);
    pad(&mut m, 8);
    m.extend(body);
    m
}

fn pad_abs(buf: &mut Vec<u8>, align: usize, base: usize) {
    while (base + buf.len()) % align != 0 {
        buf.push(0);
    }
}

/// Marshal `v` as if it started at absolute offset `base`.
fn realign(v: &Val, base: usize) -> Vec<u8> {
    let mut full = vec![0u8; base];
    put(&mut full, v);
    full.split_off(base)
}

/// A parsed incoming message: type, reply serial, member, signature, body.
#[derive(Debug, Default, Clone)]
pub struct Msg {
    pub kind: u8,
    pub reply_serial: Option<u32>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub signature: String,
    pub body: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse one whole message from `b` (which must start at a message boundary); returns the
/// message and its length.
pub fn parse(b: &[u8]) -> Option<(Msg, usize)> {
    if b.len() < 16 || b[0] != b'l' {
        return None;
    }
    let body_len = u32_at(b, 4)? as usize;
    let fields_len = u32_at(b, 12)? as usize;
    let fields_end = 16 + fields_len;
    let body_start = fields_end.div_ceil(8) * 8;
    let total = body_start + body_len;
    if b.len() < total {
        return None;
    }
    let mut m = Msg { kind: b[1], body: b[body_start..total].to_vec(), ..Msg::default() };
    let mut i = 16;
    while i < fields_end {
        i = i.div_ceil(8) * 8;
        if i >= fields_end {
            break;
        }
        let code = b[i];
        let sig_len = b[i + 1] as usize;
        let sig = std::str::from_utf8(b.get(i + 2..i + 2 + sig_len)?).ok()?.to_string();
        let mut j = i + 2 + sig_len + 1;
        match sig.as_str() {
            "s" | "o" => {
                j = j.div_ceil(4) * 4;
                let n = u32_at(b, j)? as usize;
                let s = std::str::from_utf8(b.get(j + 4..j + 4 + n)?).ok()?.to_string();
                j += 4 + n + 1;
                match code {
                    3 => m.member = Some(s),
                    4 => m.error_name = Some(s),
                    _ => {}
                }
            }
            "u" => {
                j = j.div_ceil(4) * 4;
                if code == 5 {
                    m.reply_serial = u32_at(b, j);
                }
                j += 4;
            }
            "g" => {
                let n = *b.get(j)? as usize;
                if code == 8 {
                    m.signature = std::str::from_utf8(b.get(j + 1..j + 1 + n)?).ok()?.to_string();
                }
                j += 1 + n + 1;
            }
            _ => return None,
        }
        i = j;
    }
    Some((m, total))
}

/// Read the strings/paths of a body whose signature is only made of `s`, `o` and `u`.
pub fn simple_body(m: &Msg) -> Vec<String> {
    let b = &m.body;
    let mut out = Vec::new();
    let mut j: usize = 0;
    for c in m.signature.chars() {
        j = j.div_ceil(4) * 4;
        match c {
            's' | 'o' => {
                let Some(n) = u32_at(b, j) else { break };
                let n = n as usize;
                out.push(b.get(j + 4..j + 4 + n).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default());
                j += 4 + n + 1;
            }
            'u' => {
                out.push(u32_at(b, j).map(|v| v.to_string()).unwrap_or_default());
                j += 4;
            }
            _ => break,
        }
    }
    out
}

/// A connection to the session bus.
pub struct Bus {
    sock: UnixStream,
    buf: Vec<u8>,
    serial: u32,
}

impl Bus {
    /// Connect to $DBUS_SESSION_BUS_ADDRESS (unix:path=...) and authenticate.
    pub fn session() -> Result<Bus, String> {
        let addr = std::env::var("DBUS_SESSION_BUS_ADDRESS").map_err(|_| "DBUS_SESSION_BUS_ADDRESS is not set (no session bus)".to_string())?;
        let path = addr
            .split(';')
            .filter_map(|a| a.strip_prefix("unix:"))
            .flat_map(|a| a.split(','))
            .find_map(|kv| kv.strip_prefix("path="))
            .ok_or_else(|| format!("the session bus address {addr:?} has no unix:path="))?;
        let mut sock = UnixStream::connect(path).map_err(|e| format!("connect to the session bus {path}: {e}"))?;
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let uid = nix::unistd::Uid::current().as_raw().to_string();
        let hex: String = uid.bytes().map(|c| format!("{c:02x}")).collect();
        sock.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes()).map_err(|e| format!("session bus: {e}"))?;
        let mut line = [0u8; 256];
        let n = sock.read(&mut line).map_err(|e| format!("session bus authentication: {e}"))?;
        if !line[..n].starts_with(b"OK ") {
            return Err(format!("session bus refused authentication: {}", String::from_utf8_lossy(&line[..n]).trim()));
        }
        sock.write_all(b"BEGIN\r\n").map_err(|e| format!("session bus: {e}"))?;
        let mut bus = Bus { sock, buf: Vec::new(), serial: 0 };
        bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", &[])?;
        Ok(bus)
    }

    fn send(&mut self, dest: &str, path: &str, iface: &str, member: &str, sig: &str, args: &[Val]) -> Result<u32, String> {
        self.serial += 1;
        let m = method_call(self.serial, dest, path, iface, member, sig, args);
        self.sock.write_all(&m).map_err(|e| format!("session bus: {e}"))?;
        Ok(self.serial)
    }

    /// The next message from the bus.
    pub fn receive(&mut self) -> Result<Msg, String> {
        loop {
            if let Some((m, n)) = parse(&self.buf) {
                self.buf.drain(..n);
                return Ok(m);
            }
            let mut chunk = [0u8; 4096];
            let n = self.sock.read(&mut chunk).map_err(|e| format!("session bus: {e}"))?;
            if n == 0 {
                return Err("the session bus closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Call a method and wait for its reply (other messages are skipped).
    pub fn call(&mut self, dest: &str, path: &str, iface: &str, member: &str, sig: &str, args: &[Val]) -> Result<Msg, String> {
        let serial = self.send(dest, path, iface, member, sig, args)?;
        loop {
            let m = self.receive()?;
            if m.reply_serial == Some(serial) {
                if m.kind == 3 {
                    let detail = simple_body(&m).join(" ");
                    return Err(format!("{member}: {} {detail}", m.error_name.unwrap_or_default()));
                }
                return Ok(m);
            }
        }
    }
}

/// Ask the systemd user manager to put `pid` in a new transient scope with Delegate=yes, and
/// wait until it is there. Returns the unit's name.
pub fn start_delegated_scope(pid: u32) -> Result<String, String> {
    let mut bus = Bus::session()?;
    let sd = ("org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager");
    bus.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        "s",
        &[Val::Str("type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'".into())],
    )?;
    let unit = format!("ward-{pid}.scope");
    let props = Val::Array(
        "(sv)".into(),
        vec![
            Val::Struct(vec![Val::Str("PIDs".into()), Val::Variant("au".into(), Box::new(Val::Array("u".into(), vec![Val::U32(pid)])))]),
            Val::Struct(vec![Val::Str("Delegate".into()), Val::Variant("b".into(), Box::new(Val::Bool(true)))]),
            Val::Struct(vec![Val::Str("CollectMode".into()), Val::Variant("s".into(), Box::new(Val::Str("inactive-or-failed".into())))]),
        ],
    );
    let aux = Val::Array("(sa(sv))".into(), vec![]);
    let reply = bus.call(sd.0, sd.1, sd.2, "StartTransientUnit", "ssa(sv)a(sa(sv))", &[Val::Str(unit.clone()), Val::Str("fail".into()), props, aux])?;
    let job = simple_body(&reply).into_iter().next().ok_or("StartTransientUnit: no job in the reply")?;
    loop {
        let m = bus.receive()?;
        if m.member.as_deref() == Some("JobRemoved") {
            let args = simple_body(&m); // u id, o job, s unit, s result
            if args.get(1) == Some(&job) {
                return match args.get(3).map(String::as_str) {
                    Some("done") => Ok(unit),
                    other => Err(format!("the scope {unit} did not start: {}", other.unwrap_or("?"))),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_and_parses_a_call() {
        let m = method_call(7, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", &[Val::Str("x".into())]);
        assert_eq!(&m[..4], &[b'l', 1, 0, 1]);
        assert_eq!(u32_at(&m, 8), Some(7));
        let (p, n) = parse(&m).unwrap();
        assert_eq!(n, m.len());
        assert_eq!(p.member.as_deref(), Some("AddMatch"));
        assert_eq!(p.signature, "s");
        assert_eq!(simple_body(&p), ["x"]);
        // an array of structs starts 8-aligned after its length
        let mut b = Vec::new();
        put(&mut b, &Val::Array("(sv)".into(), vec![Val::Struct(vec![Val::Str("a".into()), Val::Variant("b".into(), Box::new(Val::Bool(true)))])]));
        assert_eq!(&b[..4], &(b.len() as u32 - 8).to_le_bytes());
        assert!(parse(&m[..m.len() - 1]).is_none());
    }
}
