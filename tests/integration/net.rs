//! User-mode networking, for both helpers. Everything stays on this machine's loopback.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

const HELPERS: [&str; 2] = ["slirp4netns", "pasta"];

/// Python that connects to (HOST or the default gateway, PORT) and prints what happened.
const CONNECT: &str = "import socket, struct, sys, errno\nhost, port = sys.argv[1], int(sys.argv[2])\nif host == 'gw':\n    h = open('/proc/net/route').read().split('\\n')[1].split()[2]\n    host = socket.inet_ntoa(struct.pack('<I', int(h, 16)))\ntry:\n    s = socket.socket(); s.settimeout(1.5)\n    s.connect((host, port)); print('connected', s.recv(16).decode())\nexcept socket.timeout: print('blocked timeout')\nexcept OSError as e: print('blocked', errno.errorcode[e.errno])\n";

fn serve_once(l: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        l.set_nonblocking(false).unwrap();
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.write_all(b"hi-from-host");
        }
    })
}

fn helper_cmdline_alive(args: &serde_json::Value) -> bool {
    // the helper's arguments end with the sandbox's pid: look for that exact command line
    let want: Vec<String> = args.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                let parts: Vec<String> = c.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                parts.len() > 1 && parts[1..] == want[..]
            })
            .unwrap_or(false)
    })
}

#[test]
fn host_loopback_only_when_allowed() {
    for helper in HELPERS {
        let s = Scratch::new();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        let t = serve_once(l);
        let r = run_in(&s, &["--net", helper, "--", "python3", "-c", CONNECT, "gw", &port]);
        assert!(r.stdout().starts_with("blocked"), "{helper} without --allow-host-loopback: {} {}", r.stdout(), r.stderr());
        assert_eq!(r.v()["enforced"]["network"]["host_loopback"], false);
        let r = run_in(&s, &["--net", helper, "--allow-host-loopback", "--", "python3", "-c", CONNECT, "gw", &port]);
        assert_eq!(r.stdout(), "connected hi-from-host\n", "{helper}: {}", r.stderr());
        assert_eq!(r.v()["enforced"]["network"]["mode"], helper);
        t.join().unwrap();
        // the sandbox's own 127.0.0.1 is its own, never the host's
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        let r = run_in(&s, &["--net", helper, "--allow-host-loopback", "--", "python3", "-c", CONNECT, "127.0.0.1", &port]);
        assert_eq!(r.stdout(), "blocked ECONNREFUSED\n", "{helper}: {}", r.stderr());
        drop(l);
    }
}

#[test]
fn resolv_conf_points_at_the_forwarder_and_no_helper_remains() {
    for helper in HELPERS {
        let s = Scratch::new();
        let r = run_in(&s, &["--net", helper, "--", "cat", "/etc/resolv.conf"]);
        let dns = r.v()["enforced"]["network"]["dns"].as_str().unwrap().to_string();
        assert_eq!(r.stdout(), format!("nameserver {dns}\n"), "{helper}: {}", r.stderr());
        if helper == "slirp4netns" {
            assert_eq!(dns, "10.0.2.3");
        }
        let args = r.v()["enforced"]["network"]["options"].clone();
        assert!(eventually(1000, || !helper_cmdline_alive(&args)), "{helper} still running after the run");
        // a program killed by a limit
        let r = run_in(&s, &["--net", helper, "--rlimit-cpu", "1", "--", "sh", "-c", "while :; do :; done"]);
        assert_eq!(r.status(), "SG");
        let args = r.v()["enforced"]["network"]["options"].clone();
        assert!(eventually(1000, || !helper_cmdline_alive(&args)), "{helper} still running after a limit killed the program");
    }
}

#[test]
fn no_helper_remains_after_sigkill_of_the_launcher() {
    for helper in HELPERS {
        let s = Scratch::new();
        let marker = if helper == "pasta" { "987661" } else { "987662" };
        let mut child = KillOnDrop(ward_cmd(s.path(), &["run", "--net", helper, "--publish", &format!("127.0.0.1:{}:80", free_port()), "--", "sleep", marker]).spawn().unwrap());
        assert!(eventually(5000, || pids_matching(&format!("sleep {marker}")).len() == 1), "{helper}: sandbox did not start");
        let launcher = child.0.id() as i32;
        let helpers: Vec<i32> = pids_matching(&format!("/usr/bin/{helper}"));
        let ours: Vec<i32> = helpers.into_iter().filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).map(|st| st.split_whitespace().nth(3) == Some(&launcher.to_string())).unwrap_or(false)).collect();
        assert_eq!(ours.len(), 1, "{helper}: helper not found");
        // slirp4netns' API socket lives in a temporary directory of this run
        let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{}/cmdline", ours[0])).unwrap()).replace('\0', " ");
        let api_dir = cmdline.split_whitespace().find_map(|a| a.strip_prefix("--api-socket=")).map(|p| std::path::PathBuf::from(p).parent().unwrap().to_path_buf());
        assert_eq!(api_dir.is_some(), helper == "slirp4netns", "{cmdline}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(launcher), nix::sys::signal::Signal::SIGKILL).unwrap();
        child.0.wait().unwrap();
        assert!(eventually(1000, || !std::path::Path::new(&format!("/proc/{}", ours[0])).exists() || std::fs::read_to_string(format!("/proc/{}/stat", ours[0])).map(|st| st.contains(") Z")).unwrap_or(true)), "{helper} survived the launcher");
        assert!(eventually(1000, || pids_matching(&format!("sleep {marker}")).is_empty()));
        if let Some(d) = api_dir {
            assert!(eventually(1000, || !d.exists()), "{} was left behind", d.display());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn publish_reaches_a_server_inside() {
    for helper in HELPERS {
        let s = Scratch::new();
        let port = free_port();
        let server = "import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 8000)); s.listen(1)\nc, _ = s.accept(); c.sendall(b'hi-from-sandbox'); c.close()\n";
        let child = KillOnDrop(
            ward_cmd(s.path(), &["run", "--net", helper, "--publish", &format!("{port}:8000"), "--", "python3", "-c", server])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut got = String::new();
        assert!(
            eventually(8000, || {
                let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                got.clear();
                let _ = c.read_to_string(&mut got);
                got == "hi-from-sandbox"
            }),
            "{helper}: published port {port} never answered ({got:?})"
        );
        let out = child.wait_with_output_owned();
        assert!(out.status.success(), "{helper}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn publish_of_a_taken_port_is_refused() {
    let s = Scratch::new();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let r = run_in(&s, &["--net", "slirp4netns", "--publish", &format!("{port}:80"), "--", "true"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains(&format!("127.0.0.1:{port} cannot be used")) && r.stderr().contains("choose a free host port"), "{}", r.stderr());
}

#[test]
fn allow_connect_limits_tcp_ports() {
    if landlock_abi() < 4 {
        panic!("this host's Landlock lacks TCP rules (ABI 4); ward's CI host has ABI 7");
    }
    for helper in HELPERS {
        let s = Scratch::new();
        let r = run_in(&s, &["--net", helper, "--allow-connect", "5000", "--", "sh", "-c", &format!("python3 -c \"{0}\" 127.0.0.1 5000; python3 -c \"{0}\" 127.0.0.1 5001", CONNECT.replace('"', "\\\""))]);
        assert_eq!(r.stdout(), "blocked ECONNREFUSED\nblocked EACCES\n", "{helper}: {}", r.stderr());
        assert_eq!(r.v()["enforced"]["landlock"]["tcp_connect_ports"], serde_json::json!([5000]));
    }
    // an explicit port allowlist fails closed on a kernel without Landlock TCP rules
    let s = Scratch::new();
    let r = run_with(&s, &["--net", "slirp4netns", "--allow-connect", "443", "--", "true"], |c| {
        c.env("WARD_LANDLOCK_ABI_MAX", "3");
    });
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("--allow-connect/--allow-bind need Landlock TCP rules (ABI 4, Linux 6.7)"), "{}", r.stderr());
}

#[test]
fn no_network_means_no_route() {
    let s = Scratch::new();
    let r = run_in(&s, &["--", "sh", "-c", &format!("wc -l < /proc/net/route; python3 -c \"{}\" 10.0.2.2 80", CONNECT.replace('"', "\\\""))]);
    // no interface but lo, no route, and not even an inet socket (seccomp)
    assert_eq!(r.stdout(), "1\nblocked EAFNOSUPPORT\n", "{}", r.stderr());
    assert_eq!(r.v()["enforced"]["network"]["mode"], "none");
    let r = run_in(&s, &["--allow-host-loopback", "--", "true"]);
    assert_eq!(r.code(), 125);
    assert!(r.stderr().contains("need networking"));
}
