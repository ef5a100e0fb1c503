//! Networking, declared: a user-mode stack from slirp4netns or pasta only when asked, the
//! ports published into the sandbox, and what /etc/resolv.conf names. The launcher starts
//! the helper (`launcher::net`); init brings up loopback (`child::init::net`).

use crate::error::{Error, Result};
use crate::request::NetMode;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// `--publish [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]`: a host port forwarded into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Publish {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

impl Publish {
    pub fn parse(s: &str) -> Result<Publish> {
        let bad = || Error::invalid(format!("--publish {s:?}: not [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]"), "e.g. --publish 8080:80 or --publish 127.0.0.1:5353:53/udp");
        let (spec, proto) = match s.rsplit_once('/') {
            Some((a, "tcp")) => (a, Proto::Tcp),
            Some((a, "udp")) => (a, Proto::Udp),
            Some(_) => return Err(bad()),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let port_of = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
        let (host_ip, host_port, port) = match parts.as_slice() {
            [port, host_port] => ("127.0.0.1".parse().map_err(|_| bad())?, port_of(host_port)?, port_of(port)?),
            [port, host_port, ip] => (ip.trim_matches(|c| c == '[' || c == ']').parse().map_err(|_| bad())?, port_of(host_port)?, port_of(port)?),
            _ => return Err(bad()),
        };
        Ok(Publish { host_ip, host_port, port, proto })
    }
}

/// The networking part of a policy (only when the mode is not `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    pub mode: NetMode,
    pub helper: PathBuf,
    pub allow_host_loopback: bool,
    pub publish: Vec<Publish>,
    pub allow_connect: Vec<u16>,
    pub allow_bind: Vec<u16>,
    /// The nameserver the sandbox's /etc/resolv.conf names.
    pub dns: IpAddr,
    /// pasta: the gateway it copies from the host (DNS queries to it are forwarded).
    pub gateway: Option<IpAddr>,
}

pub const SLIRP_DNS: &str = "10.0.2.3";
pub const SLIRP_GUEST: &str = "10.0.2.100";
pub const MTU: u32 = 65520;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        assert_eq!(Publish::parse("8080:80").unwrap(), Publish { host_ip: "127.0.0.1".parse().unwrap(), host_port: 8080, port: 80, proto: Proto::Tcp });
        assert_eq!(Publish::parse("0.0.0.0:53:53/udp").unwrap().proto, Proto::Udp);
        assert!(Publish::parse("[::1]:8080:80").unwrap().host_ip.is_ipv6());
        for bad in ["80", "a:80", "8080:0", "8080:80/sctp", "1.2.3:8080:80", "70000:80"] {
            assert!(Publish::parse(bad).is_err(), "{bad}");
        }
    }

}
