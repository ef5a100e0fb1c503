//! Warm sandboxes, as the unprivileged user: two consecutive runs in one warm sandbox, the
//! first plants and the second looks; the keeper is out of every run's reach; a dead,
//! killed or forged keeper is never joined; the caller's SIGKILL leaves nothing of the run.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Box3 {
    s: Scratch,
    bin: PathBuf,
}

impl Box3 {
    fn new() -> Box3 {
        let s = Scratch::new();
        let bin = s.join("isolate");
        std::os::unix::fs::symlink(ward_bin(), &bin).unwrap();
        s.mkdir("root");
        Box3 { s, bin }
    }
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = as_user(&self.bin, args);
        c.current_dir(self.s.path()).env("WARD_ISOLATE_ROOT", self.s.join("root")).env("WARD_ISOLATE_WARM", "init");
        c
    }
    fn state(&self) -> PathBuf {
        self.s.join("root/4/keeper")
    }
    /// --init, then wait for the keeper the init starts in the background.
    fn init(&self) -> i32 {
        let out = self.cmd(&["-b", "4", "--init"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(eventually(5000, || keeper_pid(&self.state()).is_some()), "no keeper recorded in {}", self.state().display());
        keeper_pid(&self.state()).unwrap()
    }
    /// A run of `script` (sh -c) in the box; stdout and the verdict.
    fn run(&self, extra: &[&str], script: &str) -> (String, Value) {
        let mut args = vec!["-b", "4", "-p50", "-v", "-t", "10", "-w", "20"];
        args.extend(extra);
        args.extend(["--run", "--", "/bin/sh", "-c", script]);
        let out = self.cmd(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = err.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no verdict: {err}"));
        (String::from_utf8_lossy(&out.stdout).into_owned(), serde_json::from_str(json).unwrap())
    }
}

impl Drop for Box3 {
    fn drop(&mut self) {
        let _ = self.cmd(&["-b", "4", "--cleanup"]).output();
    }
}

fn keeper_pid(state: &Path) -> Option<i32> {
    let t = std::fs::read_to_string(state).ok()?;
    t.split_whitespace().find_map(|f| f.strip_prefix("pid="))?.parse().ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

fn warm_used(v: &Value) -> bool {
    v["enforced"]["warm"]["used"] == Value::Bool(true)
}

const PLANT: &str = r#"
import os, socket, ctypes, subprocess
open('/tmp/planted', 'w').write('x')
open('/dev/shm/planted', 'w').write('x')
a = socket.socket(socket.AF_UNIX); a.bind('\0ward-warm-planted'); a.listen()
b = socket.socket(socket.AF_UNIX); b.bind('/tmp/planted.sock'); b.listen()
subprocess.run(['ipcmk', '-M', '4096'], check=True, stdout=subprocess.DEVNULL)
subprocess.run(['ipcmk', '-Q'], check=True, stdout=subprocess.DEVNULL)
rt = ctypes.CDLL('librt.so.1', use_errno=True)
print('mq', rt.mq_open(b'/planted', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0)
libc = ctypes.CDLL(None, use_errno=True)
r = libc.syscall(248, b'user', b'planted', b'v', 1, -4)
print('add_key', r, ctypes.get_errno())
if os.fork() == 0:
    os.setsid()
    os.execv('/bin/sleep', ['sleep', '1000'])
print('planted', os.environ.get('PLANTED'))
"#;

const LOOK: &str = r#"
import os, socket, ctypes, subprocess, sys
keeper = int(sys.argv[1])
print('tmp', sorted(os.listdir('/tmp')), 'shm', sorted(os.listdir('/dev/shm')))
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\0ward-warm-planted'); print('abstract reached')
except OSError as e:
    print('abstract', e.errno)
print('ipcs', subprocess.run(['ipcs', '-m', '-q'], capture_output=True, text=True).stdout.count('0x'))
rt = ctypes.CDLL('librt.so.1', use_errno=True)
print('mq', rt.mq_open(b'/planted', os.O_RDWR), ctypes.get_errno())
libc = ctypes.CDLL(None, use_errno=True)
print('keyctl', libc.syscall(250, 11, -4, None, 0), ctypes.get_errno())
print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
try:
    os.kill(keeper, 0); print('keeper signalled')
except OSError as e:
    print('kill', e.errno)
print('keeper proc', os.path.exists(f'/proc/{keeper}'))
print('env', os.environ.get('PLANTED'))
print('masks', os.statvfs('/proc/sys').f_flag & 1, os.statvfs('/proc/irq').f_flag & 1, len(open('/proc/interrupts').read()), len(open('/proc/keys').read()))
"#;

#[test]
fn nothing_of_one_warm_run_reaches_the_next() {
    let b = Box3::new();
    let keeper = b.init();
    b.s.write("root/4/box/plant.py", PLANT);
    b.s.write("root/4/box/look.py", LOOK);
    chown_user(&b.s.join("root/4/box/plant.py"));
    chown_user(&b.s.join("root/4/box/look.py"));
    let (out, v) = b.run(&["-E", "PLANTED=yes"], "python3 /box/plant.py");
    assert!(warm_used(&v), "{v}");
    assert_eq!(v["enforced"]["warm"]["keeper_pid"], keeper);
    // a POSIX queue cannot be created in any sandbox (EACCES from the ipc namespace's
    // mqueue root, fresh or warm); the look below checks that none is there either way
    assert!(out.contains("planted yes"), "{out}");
    // the user keyring would outlive the run: the filter denies the key calls
    assert!(out.contains("add_key -1 1\n"), "{out}");
    let (out, v) = b.run(&[], &format!("python3 /box/look.py {keeper}"));
    assert!(warm_used(&v), "{v}");
    assert!(out.contains("tmp [] shm []"), "files under /tmp or /dev/shm survived: {out}");
    assert!(out.contains("abstract 111"), "the abstract socket survived (expected ECONNREFUSED): {out}");
    assert!(out.contains("ipcs 0"), "SysV objects survived: {out}");
    assert!(out.contains("mq -1 2") || out.contains("mq -1 13"), "the message queue survived: {out}");
    assert!(out.contains("keyctl -1 1"), "{out}");
    // its own pid namespace: init (1), sh or python, ipcs gone; no sleep 1000 of the first run
    let pids: &str = out.lines().find(|l| l.starts_with("pids")).unwrap();
    assert!(pids.starts_with("pids [1, 2"), "{out}");
    assert!(out.contains("kill 3"), "the keeper was reachable by pid (expected ESRCH): {out}");
    assert!(out.contains("keeper proc False"), "{out}");
    assert!(out.contains("env None"), "{out}");
    // the run's own /proc carries the masks a fresh run's has: /proc/sys and /proc/irq
    // read-only, interrupts and keys empty
    assert!(out.contains("masks 1 1 0 0"), "a warm run's /proc lacks the masks: {out}");
    assert!(pids_matching("sleep 1000").is_empty(), "the first run's process outlived it");
    assert!(alive(keeper));
}

#[test]
fn a_run_cannot_kill_its_init_or_the_keeper_and_the_caller_s_sigkill_ends_the_run() {
    let b = Box3::new();
    let keeper = b.init();
    let (out, v) = b.run(&[], "kill -9 1; echo rc=$?; kill -9 -1; echo still");
    assert!(warm_used(&v), "{v}");
    assert!(out.contains("still"), "{out}");
    assert!(alive(keeper));
    // SIGKILL of the caller in the middle of a warm run
    let child = b.cmd(&["-b", "4", "-w", "60", "--run", "--", "/bin/sleep", "777"]).spawn().unwrap();
    let mut child = KillOnDrop(child);
    assert!(eventually(5000, || !pids_matching("/bin/sleep 777").is_empty()));
    child.0.kill().unwrap();
    let _ = child.0.wait();
    assert!(eventually(5000, || pids_matching("/bin/sleep 777").is_empty()), "the run outlived its launcher");
    assert!(alive(keeper), "the keeper must outlive a killed run");
    let (_, v) = b.run(&[], "true");
    assert!(warm_used(&v), "{v}");
}

#[test]
fn a_dead_or_forged_keeper_is_never_joined() {
    let b = Box3::new();
    let keeper = b.init();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(keeper), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(eventually(3000, || !alive(keeper)));
    let (out, v) = b.run(&[], "echo fresh");
    assert_eq!((out.as_str(), v["status"].as_str()), ("fresh\n", Some("OK")));
    assert!(!warm_used(&v));
    assert!(v["enforced"]["warm"]["why_not"].as_str().unwrap().contains("no warm sandbox"), "{v}");
    // a forged record: a process of the user's own, with its real start time but host
    // namespaces (not owned by the user): never joined and never signalled
    let decoy = KillOnDrop(as_user("/bin/sleep", &["300"]).spawn().unwrap());
    let pid = decoy.0.id() as i32;
    assert!(eventually(2000, || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with("/bin/sleep"))));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().to_string();
    let ino = |n: &str| std::fs::metadata(format!("/proc/{pid}/ns/{n}")).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    let (_, v) = b.run(&[], "true"); // the box asks for this configuration again: a keeper starts
    assert!(!warm_used(&v));
    assert!(eventually(5000, || keeper_pid(&b.state()).is_some()));
    let line = format!("ward-keeper 1 pid={pid} start={start} key={:016x} user={} mnt={} net={}\n", 0u64, ino("user"), ino("mnt"), ino("net"));
    let real = std::fs::read_to_string(b.state()).unwrap();
    let key = real.split_whitespace().find(|f| f.starts_with("key=")).unwrap();
    std::fs::write(b.state(), line.replace("key=0000000000000000", key)).unwrap();
    let (out, v) = b.run(&[], "echo ok");
    assert_eq!(out, "ok\n");
    assert!(!warm_used(&v), "a forged keeper was joined: {v}");
    assert!(alive(pid), "the forged record's process was signalled");
    let real_keeper: i32 = real.split_whitespace().find_map(|f| f.strip_prefix("pid=")).unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(real_keeper), nix::sys::signal::Signal::SIGKILL).unwrap();
}

#[test]
fn cleanup_ends_the_keeper_and_a_removed_box_ends_it_too() {
    let b = Box3::new();
    let keeper = b.init();
    let out = b.cmd(&["-b", "4", "--cleanup"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(eventually(3000, || !alive(keeper)), "--cleanup left the keeper");
    let keeper = b.init();
    std::fs::remove_file(b.state()).unwrap();
    assert!(eventually(8000, || !alive(keeper)), "a keeper whose record is gone must end by itself");
    // one whose record is gone but not its box: ward cleanup ends it
    let keeper = b.init();
    std::fs::remove_file(b.state()).unwrap();
    std::fs::write(b.state(), "").unwrap(); // a new, empty record: the keeper still sees its old one, removed
    let out = ward_cmd(b.s.path(), &["cleanup"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ended "), "{}", String::from_utf8_lossy(&out.stdout));
    // at once, not by its own check (every 5 s)
    assert!(eventually(300, || !alive(keeper)), "ward cleanup left a keeper whose record is gone");
    // one nobody uses ends after the idle time
    let out = b.cmd(&["-b", "4", "--init"]).env("WARD_KEEPER_IDLE", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(eventually(5000, || keeper_pid(&b.state()).is_some()));
    let idle = keeper_pid(&b.state()).unwrap();
    assert!(eventually(8000, || !alive(idle)), "an idle keeper must end by itself");
}

#[test]
fn a_box_s_second_run_of_a_configuration_starts_its_warm_sandbox() {
    let b = Box3::new();
    let run = |n: &str| {
        let out = b.cmd(&["-b", "4", "-v", "--run", "--", "/bin/echo", n]).env("WARD_ISOLATE_WARM", "1").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{n}\n"), "{err}");
        serde_json::from_str::<Value>(err.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap()
    };
    let out = b.cmd(&["-b", "4", "--init"]).env("WARD_ISOLATE_WARM", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(keeper_pid(&b.state()).is_none(), "--init started a keeper without WARD_ISOLATE_WARM=init");
    let first = run("1");
    assert!(first["enforced"]["warm"]["why_not"].as_str().unwrap().contains("yet"), "{first}");
    let second = run("2");
    assert!(second["enforced"]["warm"]["why_not"].as_str().unwrap().contains("being started"), "{second}");
    assert!(eventually(5000, || keeper_pid(&b.state()).is_some()));
    assert!(warm_used(&run("3")));
}

#[test]
fn a_configuration_that_cannot_be_warm_runs_fresh_and_says_why() {
    let b = Box3::new();
    b.init();
    let (out, v) = b.run(&["--share-net"], "echo net");
    assert_eq!(out, "net\n");
    assert!(!warm_used(&v));
    assert!(v["enforced"]["warm"]["why_not"].as_str().unwrap().contains("networking"), "{v}");
}

#[test]
fn a_batch_runs_every_line_in_one_warm_sandbox() {
    let s = Scratch::new();
    let lines = [
        r#"{"argv": ["/bin/sh", "-c", "echo one > /tmp/f; ls /tmp"], "stdout": "OUT/o1"}"#,
        r#"{"argv": ["/bin/sh", "-c", "ls /tmp; echo $X"], "stdout": "OUT/o2", "env": ["X=2"]}"#,
        r#"{"argv": []}"#,
        r#"{"argv": ["/bin/sh", "-c", "exit 3"]}"#,
    ];
    let out = s.mkdir("out");
    let text: String = lines.iter().map(|l| l.replace("OUT", out.to_str().unwrap()) + "\n").collect();
    let input = s.write("in.jsonl", &text);
    let o = ward_cmd(s.path(), &["run", "--workdir", out.to_str().unwrap(), "--batch", input.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let vs: Vec<Value> = String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(vs.len(), 4);
    assert!(warm_used(&vs[0]) && warm_used(&vs[1]) && warm_used(&vs[3]), "{vs:?}");
    assert_eq!(vs[0]["enforced"]["warm"]["keeper_pid"], vs[3]["enforced"]["warm"]["keeper_pid"]);
    let o1 = std::fs::read_to_string(out.join("o1")).unwrap();
    let o2 = std::fs::read_to_string(out.join("o2")).unwrap();
    assert!(o1.lines().any(|l| l == "f"), "{o1}");
    assert!(!o2.lines().any(|l| l == "f") && o2.ends_with("2\n"), "the first run's /tmp file reached the second: {o2}");
    assert_eq!(vs[2]["status"], "XX");
    assert!(vs[2]["message"].as_str().unwrap().contains("\"argv\" is empty"));
    assert_eq!((vs[3]["status"].as_str(), vs[3]["exit_code"].as_i64()), (Some("RE"), Some(3)));
    let keeper = vs[0]["enforced"]["warm"]["keeper_pid"].as_i64().unwrap() as i32;
    assert!(eventually(3000, || !alive(keeper)), "the batch's keeper outlived it");
}

#[test]
fn warm_mode_can_be_turned_off_for_a_batch() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", "{\"argv\": [\"/bin/true\"]}\n");
    let o = ward_cmd(s.path(), &["run", "--no-workdir", "--no-warm", "--batch", input.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    assert_eq!(v["status"], "OK");
    assert!(!warm_used(&v));
    assert!(v["enforced"]["warm"]["why_not"].as_str().unwrap().contains("process.warm = false"), "{v}");
}

#[test]
fn a_root_caller_s_warm_box_runs_as_the_box_s_own_id() {
    if !root_or_skip("a root caller's warm box") {
        return;
    }
    let s = Scratch::new();
    let root = s.mkdir("root");
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    nix::unistd::chown(&root, Some(nix::unistd::Uid::from_raw(0)), Some(nix::unistd::Gid::from_raw(0))).unwrap();
    let iso = |args: &[&str]| {
        let mut c = std::process::Command::new(ward_bin());
        c.arg("isolate").args(args).current_dir(s.path()).env_clear().env("PATH", "/usr/bin:/bin").env("WARD_ISOLATE_ROOT", &root).env("WARD_ISOLATE_WARM", "init");
        c.output().unwrap()
    };
    assert_eq!(iso(&["-b", "5", "--init"]).status.code(), Some(0));
    let state = root.join("5/keeper");
    assert!(eventually(5000, || keeper_pid(&state).is_some()), "no keeper for root's box");
    let script = "id -u; id -G; ls /tmp; touch /tmp/x /box/made; cat /proc/self/uid_map";
    let mut seen = Vec::new();
    for _ in 0..2 {
        let out = iso(&["-b", "5", "-p10", "-v", "--run", "--", "/bin/sh", "-c", script]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let v: Value = serde_json::from_str(err.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
        assert!(warm_used(&v), "{v}");
        assert_eq!(v["enforced"]["id_map"]["caller_is_root"], true);
        seen.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    for out in &seen {
        let mut l = out.lines();
        assert_eq!(l.next(), Some("60005"), "{out}");
        assert_eq!(l.next(), Some("60005"), "supplementary groups of root's: {out}");
        assert!(out.contains(" 60005 "), "uid_map: {out}");
        assert!(!out.contains("\nx\n"), "the first run's /tmp reached the second: {out}");
    }
    let made = std::fs::metadata(root.join("5/box/made")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&made), 60005);
    let keeper = keeper_pid(&state).unwrap();
    assert_eq!(iso(&["-b", "5", "--cleanup"]).status.code(), Some(0));
    assert!(eventually(3000, || !alive(keeper)));
}

/// `ward run --batch` lines, as the test user, in `s`; the verdicts.
fn batch(s: &Scratch, opts: &[&str], lines: &[Value]) -> Vec<Value> {
    let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    let input = s.write("batch.jsonl", &text);
    let mut args = vec!["run"];
    args.extend(opts);
    args.extend(["--batch", input.to_str().unwrap()]);
    let o = ward_cmd(s.path(), &args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A batch read from a file is pipelined: each run after the first was cloned while the one
/// before it ran, in a user namespace of its own; yet every run sees what the runs before it
/// wrote (its stdio files are opened only when it is due) and nothing of what they left
/// behind in the sandbox, exactly as the box test above.
#[test]
fn a_pipelined_batch_keeps_each_run_to_itself_and_in_order() {
    let s = Scratch::new();
    let out = s.mkdir("out");
    let o = |n: &str| out.join(n).to_str().unwrap().to_string();
    let lines = [
        serde_json::json!({"argv": ["/bin/sh", "-c", "echo carried > seq.txt"]}),
        serde_json::json!({"argv": ["/bin/cat"], "stdin": o("seq.txt"), "stdout": o("o2")}),
        serde_json::json!({"argv": ["/usr/bin/python3", "-c", PLANT], "stdout": o("plant"), "env": ["PLANTED=yes"]}),
        serde_json::json!({"argv": ["/usr/bin/python3", "-c", LOOK, "999999"], "stdout": o("look")}),
    ];
    let vs = batch(&s, &["--workdir", out.to_str().unwrap()], &lines);
    assert_eq!(vs.len(), 4);
    for (i, v) in vs.iter().enumerate() {
        assert_eq!(v["status"], "OK", "line {i}: {v}");
        assert!(warm_used(v), "{v}");
        assert_eq!(v["enforced"]["warm"]["cloned_ahead"] == Value::Bool(true), i > 0, "line {i}: {v}");
        assert!(v["enforced"]["warm"]["fresh"][0].as_str().unwrap().starts_with("user namespace"), "{v}");
    }
    assert_eq!(std::fs::read_to_string(o("o2")).unwrap(), "carried\n", "the second run's stdin was opened before the first run wrote it");
    let plant = std::fs::read_to_string(o("plant")).unwrap();
    assert!(plant.contains("planted yes"), "{plant}");
    let look = std::fs::read_to_string(o("look")).unwrap();
    assert!(!look.contains("planted"), "files under /tmp or /dev/shm survived: {look}");
    assert!(look.contains("shm []"), "{look}");
    assert!(look.contains("abstract 111"), "the abstract socket survived (expected ECONNREFUSED): {look}");
    assert!(look.contains("ipcs 0"), "SysV objects survived: {look}");
    assert!(look.contains("keyctl -1 1"), "{look}");
    let pids: &str = look.lines().find(|l| l.starts_with("pids")).unwrap();
    assert!(pids.starts_with("pids [1, 2"), "{look}");
    assert!(look.contains("env None"), "{look}");
    assert!(look.contains("masks 1 1 0 0"), "a pipelined run's /proc lacks the masks: {look}");
    assert!(pids_matching("sleep 1000").is_empty(), "the planting run's process outlived it");
}

/// The next run's init and program wait beside a pipelined run, and the run before it may
/// still be ending: none of them counts against the run's process limit (--procs 4: the
/// program and three children, in every line).
#[test]
fn every_run_of_a_pipelined_batch_has_the_same_process_limit() {
    let s = Scratch::new();
    let fork8 = "import os,time\nok=0\nfor i in range(8):\n  try:\n    if os.fork()==0:\n      time.sleep(1); os._exit(0)\n    ok+=1\n  except BlockingIOError: pass\nprint(ok, flush=True)\nos._exit(0)";
    let out = s.mkdir("out");
    let lines: Vec<Value> = (0..4).map(|i| serde_json::json!({"argv": ["/usr/bin/python3", "-c", fork8], "stdout": out.join(format!("n{i}")).to_str().unwrap()})).collect();
    let vs = batch(&s, &["--no-workdir", "--procs", "4"], &lines);
    for (i, v) in vs.iter().enumerate() {
        assert_eq!(v["status"], "OK", "{v}");
        assert_eq!(v["enforced"]["warm"]["cloned_ahead"] == Value::Bool(true), i > 0, "line {i}: {v}");
        assert_eq!(std::fs::read_to_string(out.join(format!("n{i}"))).unwrap(), "3\n", "line {i}");
    }
}

/// A grader that writes a request and waits for its verdict before the next one is never
/// blocked: a batch on a pipe reads ahead only what is already there.
#[test]
fn a_batch_on_a_pipe_answers_each_request_before_the_next_is_written() {
    use std::io::{BufRead, Write};
    let s = Scratch::new();
    let mut c = ward_cmd(s.path(), &["run", "--no-workdir", "--batch", "-"]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = KillOnDrop(c.spawn().unwrap());
    let mut stdin = child.0.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    for code in [3, 4, 5] {
        writeln!(stdin, "{}", serde_json::json!({"argv": ["/bin/sh", "-c", format!("exit {code}")]})).unwrap();
        stdin.flush().unwrap();
        let line = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap_or_else(|_| panic!("no verdict for the request exiting {code} while the next was not written"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!((v["status"].as_str(), v["exit_code"].as_i64()), (Some("RE"), Some(code)), "{v}");
    }
    drop(stdin);
    assert_eq!(child.wait_with_output_owned().status.code(), Some(0));
}

/// Limits hold for a pipelined run as for any: a sleeper over its wall time is WLE and a
/// spinner over its CPU time TLE while the next run waits beside it, and the runs after them
/// are unaffected.
#[test]
fn limits_hold_for_pipelined_runs() {
    let s = Scratch::new();
    let lines = [
        serde_json::json!({"argv": ["/bin/sleep", "30"], "wall_time": 0.5}),
        serde_json::json!({"argv": ["/usr/bin/python3", "-c", "while 1: pass"], "time": 0.3}),
        serde_json::json!({"argv": ["/bin/sh", "-c", "exit 4"]}),
    ];
    let t = std::time::Instant::now();
    let vs = batch(&s, &["--no-workdir"], &lines);
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "the batch took {:?}", t.elapsed());
    let st: Vec<(&str, Option<i64>)> = vs.iter().map(|v| (v["status"].as_str().unwrap(), v["exit_code"].as_i64())).collect();
    assert_eq!(st, [("WLE", None), ("TLE", None), ("RE", Some(4))], "{vs:?}");
    assert!(vs[0]["wall_time_ms"].as_f64().unwrap() >= 500.0, "{}", vs[0]);
    assert!(vs[1]["cpu_time_ms"].as_f64().unwrap() >= 300.0, "{}", vs[1]);
    assert!(vs[1..].iter().all(|v| v["enforced"]["warm"]["cloned_ahead"] == Value::Bool(true)), "{vs:?}");
    assert!(pids_matching("/bin/sleep 30").is_empty());
}
