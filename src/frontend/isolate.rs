//! `ward isolate ...` (or ward invoked as `isolate`): a rootless front end with isolate 2.x's
//! command line and meta file, so graders that drive isolate (CMS, Judge0, in-house ones)
//! run unchanged, on ward's own sandbox, profiles and limits.
//!
//! Boxes live under a per-user root (`$WARD_ISOLATE_ROOT`, else `$XDG_RUNTIME_DIR/ward-isolate`,
//! else `/tmp/ward-isolate-UID`; it must be the caller's and writable by nobody else): `--init` creates
//! `ROOT/ID/box` and prints `ROOT/ID`; `--run` binds `ROOT/ID/box` read-write at `/box` (the
//! starting directory) with isolate's default directory rules; `--cleanup` removes `ROOT/ID`.
//! A box in use by another isolate process is refused (a lock per box).
//!
//! Exit status as isolate: 0 when the program ran and ended well, 1 when it failed
//! (RE/SG/TO), 2 on a sandbox error (XX) or a usage error.

use crate::error::{Error, Result};
use crate::request::{BindAccess, Limit, MountSpec, NetMode, Request, Rlim, Size, Workdir};
use crate::verdict::{Status, Verdict, meta, meta_cg};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Init,
    Run,
    Cleanup,
    Version,
    Help,
}

/// `ward isolate --help`: isolate's usage, with what ward supports.
const HELP: &str = "Usage: isolate [<options>] <command>

Options:
-b, --box-id=<id>\tWhen multiple sandboxes are used in parallel, each must get a unique ID
    --cg\t\tEnable use of control groups (a cgroup v2 leaf in a delegated subtree)
    --cg-mem=<size>\tLimit memory usage of the control group to <size> KB
    --cg-timing\t\tAccepted (time is always the whole run's CPU time)
-c, --chdir=<dir>\tChange directory to <dir> before executing the program
-d, --dir=<dir>\t\tMake a directory <dir> visible inside the sandbox
    --dir=<in>=<out>\tMake a directory <out> outside visible as <in> inside
    --dir=<in>=\t\tDelete a previously defined directory rule (even a default one)
    --dir=...:<opt>\tSpecify options for a rule:
\t\t\t\tdev\tAllow access to special files
\t\t\t\tfs\tMount a filesystem (proc is always mounted; others are not offered)
\t\t\t\tmaybe\tSkip this rule if <out> does not exist
\t\t\t\tnoexec\tDo not allow execution of binaries
\t\t\t\trw\tAllow read-write access
\t\t\t\ttmp\tCreate as a temporary directory (implies rw)
\t\t\t(norec is refused: ward's binds include submounts)
-E, --env=<var>\t\tInherit the environment variable <var> from the parent process
-E, --env=<var>=<val>\tSet the environment variable <var> to <val>
-x, --extra-time=<time>\tSet extra timeout, before which a timing-out program is not yet killed
-e, --full-env\t\tInherit full environment of the parent process
-f, --fsize=<size>\tMax size (in KB) of files that can be created
-k, --stack=<size>\tLimit stack size to <size> KB (default: 0=unlimited)
-m, --mem=<size>\tLimit address space to <size> KB
-M, --meta=<file>\tOutput process information to <file> (name:value)
-p, --processes[=<max>]\tEnable multiple processes (at most <max> of them, threads included); default: 1
-q, --quota=<blk>,<ino>\tAccepted (boxes have no quotas)
-r, --stderr=<file>\tRedirect stderr to <file> (a path inside the sandbox)
    --stderr-to-stdout\tRedirect stderr to stdout
-i, --stdin=<file>\tRedirect stdin from <file> (a path inside the sandbox)
-o, --stdout=<file>\tRedirect stdout to <file> (a path inside the sandbox)
    --share-net\t\tShare network with the parent (user-mode NAT, host loopback reachable)
-s, --silent\t\tDo not print status messages except for fatal errors
-t, --time=<time>\tSet run time limit (seconds, fractions allowed)
-v, --verbose\t\tBe verbose (prints ward's verdict as JSON)
-w, --wall-time=<time>\tSet wall clock time limit (seconds, fractions allowed)
    --inherit-fds, --no-default-dirs, --no-cg-timing\tAccepted

Commands:
    --init\t\tInitialize sandbox (and print its name)
    --run -- <cmd>\tRun given command within sandbox
    --cleanup\t\tClean up sandbox
    --version\t\tDisplay program version and configuration
    --help\t\tThis text

ward runs isolate's interface without root: boxes live under $WARD_ISOLATE_ROOT, else
$XDG_RUNTIME_DIR/ward-isolate, else /tmp/ward-isolate-UID. Exit status: 0 ok, 1 the program
failed (RE, SG, TO), 2 a sandbox or usage error (XX).

Warm boxes: a box's second run of one configuration starts a keeper that holds its
namespaces and tree; later runs of that configuration join it, each with fresh /tmp,
/proc, pid, ipc and uts namespaces (-v shows enforced.warm). --cleanup ends it.
WARD_ISOLATE_WARM=0: off; =init: --init starts one. WARD_KEEPER_IDLE: idle seconds (600).

In a container that masks /proc (the kernel then refuses a box its own), unmask it (ward check
says how); failing that, WARD_ISOLATE_NO_PROC=1 runs boxes with an empty /proc (-v shows
enforced.root.proc: none).
";

/// isolate's command line, parsed.
#[derive(Debug, Default)]
struct Args {
    mode: Option<Mode>,
    box_id: u32,
    cg: bool,
    cg_mem: Option<u64>,
    time: Option<f64>,
    extra_time: Option<f64>,
    wall_time: Option<f64>,
    stack_kb: Option<u64>,
    mem_kb: Option<u64>,
    fsize_kb: Option<u64>,
    processes: Option<Option<u64>>,
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    stderr_to_stdout: bool,
    meta: Option<PathBuf>,
    chdir: Option<String>,
    dirs: Vec<String>,
    env: Vec<String>,
    full_env: bool,
    share_net: bool,
    silent: bool,
    verbose: u32,
    argv: Vec<OsString>,
}

fn usage(msg: &str) -> Error {
    Error::invalid(format!("{msg}\nUsage: isolate [<options>] <command>\n\nCommands: --init, --run -- <program> <arguments>, --cleanup, --version\nRun `ward isolate --help` for the options."), "")
}

fn num<T: std::str::FromStr>(opt: &str, v: &str) -> Result<T> {
    v.trim().parse::<T>().map_err(|_| usage(&format!("Invalid value for {opt}: {v:?}")))
}

/// Parse isolate's options (getopt style: `-b5`, `-b 5`, `--box-id=5`, `--box-id 5`).
fn parse(raw: &[OsString]) -> Result<Args> {
    let mut a = Args::default();
    let mut i = 0;
    let s = |o: &OsString| o.to_str().map(str::to_string).ok_or_else(|| usage("Arguments must be UTF-8"));
    while i < raw.len() {
        let arg = s(&raw[i])?;
        i += 1;
        if arg == "--" {
            a.argv = raw[i..].to_vec();
            break;
        }
        // (canonical long name, value if attached)
        let (name, attached): (String, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            }
        } else if arg.starts_with('-') && arg.len() >= 2 {
            let c = &arg[1..2];
            let rest = &arg[2..];
            let long = match c {
                "b" => "box-id",
                "t" => "time",
                "x" => "extra-time",
                "w" => "wall-time",
                "k" => "stack",
                "m" => "mem",
                "f" => "fsize",
                "q" => "quota",
                "p" => "processes",
                "i" => "stdin",
                "o" => "stdout",
                "r" => "stderr",
                "M" => "meta",
                "c" => "chdir",
                "d" => "dir",
                "E" => "env",
                "e" => "full-env",
                "s" => "silent",
                "v" => "verbose",
                "h" => "help",
                _ => return Err(usage(&format!("Unknown option {arg}"))),
            };
            (long.to_string(), if rest.is_empty() { None } else { Some(rest.to_string()) })
        } else {
            return Err(usage(&format!("Unexpected argument {arg:?} (the program goes after --run --)")));
        };
        let takes_value = matches!(
            name.as_str(),
            "box-id" | "time" | "extra-time" | "wall-time" | "stack" | "mem" | "fsize" | "quota" | "stdin" | "stdout" | "stderr" | "meta" | "chdir" | "dir" | "env" | "cg-mem"
        );
        let mut value = || -> Result<String> {
            if let Some(v) = attached.clone() {
                return Ok(v);
            }
            let v = raw.get(i).ok_or_else(|| usage(&format!("Option --{name} needs a value")))?;
            i += 1;
            s(v)
        };
        match name.as_str() {
            "init" => a.mode = Some(Mode::Init),
            "run" => a.mode = Some(Mode::Run),
            "cleanup" => a.mode = Some(Mode::Cleanup),
            "version" => a.mode = Some(Mode::Version),
            "help" => a.mode = Some(Mode::Help),
            "box-id" => a.box_id = num(&name, &value()?)?,
            "time" => a.time = Some(num(&name, &value()?)?),
            "extra-time" => a.extra_time = Some(num(&name, &value()?)?),
            "wall-time" => a.wall_time = Some(num(&name, &value()?)?),
            "stack" => a.stack_kb = Some(num(&name, &value()?)?),
            "mem" => a.mem_kb = Some(num(&name, &value()?)?),
            "fsize" => a.fsize_kb = Some(num(&name, &value()?)?),
            "quota" => {
                value()?; // accepted; the box is a plain directory without quotas
            }
            "processes" => a.processes = Some(attached.as_deref().map(|v| num(&name, v)).transpose()?),
            "stdin" => a.stdin = Some(value()?),
            "stdout" => a.stdout = Some(value()?),
            "stderr" => a.stderr = Some(value()?),
            "stderr-to-stdout" => a.stderr_to_stdout = true,
            "meta" => a.meta = Some(PathBuf::from(value()?)),
            "chdir" => a.chdir = Some(value()?),
            "dir" => a.dirs.push(value()?),
            "env" => a.env.push(value()?),
            "full-env" => a.full_env = true,
            "share-net" => a.share_net = true,
            "silent" => a.silent = true,
            "verbose" => a.verbose += 1,
            "cg" => a.cg = true,
            "cg-mem" => a.cg_mem = Some(num(&name, &value()?)?),
            "cg-timing" | "no-cg-timing" | "inherit-fds" | "no-default-dirs" => {}
            other if takes_value => return Err(usage(&format!("Unknown option --{other}"))),
            other => return Err(usage(&format!("Unknown option --{other}"))),
        }
    }
    if a.mode.is_none() {
        return Err(usage("Please specify an isolate command (e.g. --init, --run)."));
    }
    if a.mode == Some(Mode::Run) && a.argv.is_empty() {
        return Err(usage("--run needs a program: --run -- <program> <arguments>"));
    }
    Ok(a)
}

/// Where boxes live.
pub fn box_root() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = nix::unistd::Uid::effective().as_raw();
    let root = match std::env::var_os("WARD_ISOLATE_ROOT") {
        Some(r) => {
            let r = PathBuf::from(r);
            if !r.is_absolute() {
                return Err(Error::invalid(format!("WARD_ISOLATE_ROOT={}: not an absolute path", r.display()), "give an absolute path"));
            }
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&r).map_err(|e| Error::io(format!("create the box root {}", r.display()), e))?;
            r
        }
        None => {
            let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute() && p.is_dir());
            let root = match base {
                Some(b) => b.join("ward-isolate"),
                None => PathBuf::from(format!("/tmp/ward-isolate-{uid}")),
            };
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&root);
            root
        }
    };
    // whoever else could write here could swap a box for a link to the caller's files
    let m = std::fs::symlink_metadata(&root).map_err(|e| Error::io(format!("the box root {}", root.display()), e))?;
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o022 != 0 {
        return Err(Error::host(
            format!("the box root {} is not a directory of yours that only you can write (owner {}, mode {:o})", root.display(), m.uid(), m.mode() & 0o7777),
            "remove it or chmod 0700 it, or set WARD_ISOLATE_ROOT to a directory of yours",
        ));
    }
    Ok(root)
}

/// isolate's box uids: the first is 60000, one per box. Only a root caller maps the program
/// to it (an ordinary caller's program is the caller). Boxes from 5534 on (CMS gives shards
/// ids up to 65999) skip nobody and (uid_t)-1 of 16 bits: 70000+box.
const FIRST_BOX_ID: u32 = 60000;

fn root_box_id(box_id: u32) -> Result<Option<u32>> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    let id = if box_id < 65534 - FIRST_BOX_ID { FIRST_BOX_ID.checked_add(box_id) } else { 70000u32.checked_add(box_id) };
    match id.filter(|id| *id < u32::MAX - 1) {
        Some(id) => Ok(Some(id)),
        None => Err(usage(&format!("Sandbox ID {box_id} out of range"))),
    }
}

/// Remove `dir` and everything in it, whatever modes the program left (directories are
/// made accessible to the caller while walking; nothing is followed through a link).
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(()) => return Ok(()),
        Err(_) => {}
    }
    open_up(dir);
    std::fs::remove_dir_all(dir)
}

fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else { return };
    if !m.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path());
            }
        }
    }
}

/// `ROOT/ID/box`, owned by the caller (by the box's own id when the caller is root, as
/// isolate's box uid, so the program can write there).
fn make_box(dir: &Path, box_id: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let b = dir.join("box");
    std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    std::fs::DirBuilder::new().mode(0o755).create(&b).map_err(|e| Error::io(format!("create {}", b.display()), e))?;
    if let Some(id) = root_box_id(box_id)? {
        std::os::unix::fs::lchown(&b, Some(id), Some(id)).map_err(|e| Error::io(format!("chown {} to the box id {id}", b.display()), e))?;
    }
    let born = dir.join(BORN);
    std::fs::write(&born, life()).map_err(|e| Error::io(format!("write {}", born.display()), e))
}

/// The box's record of when it was made: the boot and this pid namespace's init.
const BORN: &str = "born";

/// This machine's boot and the start of PID 1 as this process sees it: a container's own init
/// in a container (a new one at each start), the host's init otherwise.
fn life() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap_or_default();
    // field 22, after the command in parentheses (which may hold spaces)
    let start = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(19)).unwrap_or("?");
    format!("{} {start}\n", boot.trim())
}

/// `ward cleanup`: remove the caller's boxes made before this boot or this container's start
/// (the processes that used them are gone with it), unless one is locked. Boxes of this life
/// are left alone: a grader may hold them between --init and --cleanup.
pub fn remove_stale_boxes() -> (usize, Option<PathBuf>) {
    let Ok(root) = box_root() else { return (0, None) };
    let now = life();
    let mut n = 0;
    for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let dir = e.path();
        match std::fs::read_to_string(dir.join(BORN)) {
            Ok(born) if born != now => {}
            _ => continue,
        }
        let Ok(_lock) = lock_box(&root, id) else { continue };
        crate::launcher::warm::Keeper::end_recorded(&dir.join(KEEPER));
        if remove_tree(&dir).is_ok() {
            let _ = std::fs::remove_file(root.join(format!("{id}.lock")));
            n += 1;
        }
    }
    (n, Some(root))
}

/// Lock a box against concurrent use (released when the returned file closes).
fn lock_box(root: &Path, id: u32) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = root.join(format!("{id}.lock"));
    let f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| Error::host(format!("box {id} is in use by another isolate process"), "use a different --box-id for concurrent runs"))
}

fn is_bind_at(m: &MountSpec, at: &Path) -> bool {
    matches!(m, MountSpec::Bind { dst, .. } if dst == at)
}

/// Apply isolate's directory rule `IN[=OUT][:opts]` to the request.
fn dir_rule(o: &mut Request, rule: &str) -> Result<()> {
    let mounts = &mut o.tree.mounts;
    let (spec, opts) = match rule.split_once(':') {
        Some((a, b)) => (a, b),
        None => (rule, ""),
    };
    let (inside, outside) = match spec.split_once('=') {
        Some((i, "")) => {
            let i = Path::new("/").join(i.trim_start_matches('/'));
            mounts.retain(|m| !is_bind_at(m, &i));
            return Ok(());
        }
        Some((i, out)) => (i.to_string(), PathBuf::from(out)),
        None => (spec.to_string(), Path::new("/").join(spec.trim_start_matches('/'))),
    };
    let dst = Path::new("/").join(inside.trim_start_matches('/'));
    let opts: Vec<&str> = opts.split(',').filter(|x| !x.is_empty()).collect();
    for x in &opts {
        if *x == "norec" {
            // ward binds recursively; showing submounts the grader asked to hide would be
            // quietly weaker, so say so instead
            return Err(usage(&format!("Directory option \"norec\" in --dir={rule} is not supported by ward (binds include submounts); bind the submount-free directory instead")));
        }
        if !["rw", "noexec", "maybe", "dev", "tmp", "fs"].contains(x) {
            return Err(usage(&format!("Unknown directory option {x:?} in --dir={rule}")));
        }
    }
    if opts.contains(&"fs") {
        return Ok(()); // proc is already mounted; other file systems are not offered
    }
    if opts.contains(&"tmp") {
        mounts.push(MountSpec::Tmpfs { dst, size: None });
        return Ok(());
    }
    if opts.contains(&"maybe") && !outside.exists() {
        return Ok(());
    }
    mounts.retain(|m| !is_bind_at(m, &dst));
    let access = if opts.contains(&"dev") {
        BindAccess::Device
    } else if opts.contains(&"rw") {
        BindAccess::ReadWrite
    } else {
        BindAccess::ReadOnly
    };
    mounts.push(MountSpec::Bind { src: outside, dst: dst.clone(), access, optional: false });
    if opts.contains(&"noexec") {
        mounts.push(MountSpec::NoExec { dst });
    }
    Ok(())
}

fn request(a: &Args, boxdir: &Path) -> Result<Request> {
    let mut o = Request::new(a.argv.clone());
    o.tree.workdir = Some(Workdir::None);
    // a container that masks /proc, where its fix cannot be applied: boxes without /proc
    if std::env::var_os("WARD_ISOLATE_NO_PROC").is_some_and(|v| v == "1") {
        o.tree.no_proc = Some(true);
    }
    o.process.hostname = Some("box".into());
    o.tree.mounts.push(MountSpec::Bind { src: boxdir.to_path_buf(), dst: "/box".into(), access: BindAccess::ReadWrite, optional: false });
    for d in &a.dirs {
        dir_rule(&mut o, d)?;
    }
    o.tree.chdir = Some(match &a.chdir {
        Some(c) if c.starts_with('/') => PathBuf::from(c),
        Some(c) => Path::new("/box").join(c),
        None => PathBuf::from("/box"),
    });
    // -i/-o/-r name files inside the sandbox, relative to -c (isolate: "the file has to be
    // accessible inside the sandbox"); the program's process opens them with its rights
    let run = &mut o.run;
    run.stdin = a.stdin.as_deref().map(PathBuf::from);
    run.stdout = a.stdout.as_deref().map(PathBuf::from);
    run.stderr = a.stderr.as_deref().map(PathBuf::from);
    run.stderr_to_stdout = a.stderr_to_stdout;
    run.stdio_inside = true;
    if let Some(id) = root_box_id(a.box_id)? {
        // root: the program is this box's own unprivileged host id, as isolate's box uid
        o.process.uid = Some(id);
        o.process.gid = Some(id);
        o.process.host_ids = Some((id, id));
    }
    let l = &mut o.limits;
    l.time = a.time;
    l.wall_time = a.wall_time;
    l.extra_time = a.extra_time.filter(|_| a.time.is_some());
    l.output = a.fsize_kb.map(|f| Size(f * 1024));
    let rl = &mut o.process.rlimits;
    rl.insert(Limit::Stack, Rlim(a.stack_kb.map(|k| k * 1024)));
    if let Some(m) = a.mem_kb {
        rl.insert(Limit::As, Rlim(Some(m * 1024)));
    }
    rl.insert(Limit::Nofile, Rlim(Some(64)));
    // isolate's environment: only what is asked for, plus LIBC_FATAL_STDERR_=1
    o.process.env.push(("LIBC_FATAL_STDERR_".into(), "1".into()));
    if a.full_env {
        o.process.pass_env.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
    }
    for e in &a.env {
        match e.split_once('=') {
            Some((k, v)) => o.process.env.push((k.to_string(), v.to_string())),
            None => o.process.pass_env.push(e.clone()),
        }
    }
    if a.share_net {
        o.network.mode = Some(NetMode::Auto);
        o.network.allow_host_loopback = Some(true);
    }
    if a.cg {
        // isolate's control-group mode: a cgroup leaf is required (a sandbox error without
        // one), --cg-mem is the leaf's memory.max, -p its pids.max
        o.limits.require_cgroup = Some(true);
        o.limits.mem = a.cg_mem.map(|k| Size(k * 1024));
    }
    // -p N: at most N processes and threads; -p alone: no limit; absent: isolate's default of
    // one. RLIMIT_NPROC in the sandbox's own user namespace (5.14+), pids.max too with --cg.
    o.limits.procs = match a.processes {
        Some(Some(n)) => Some(n),
        Some(None) => None,
        None => Some(1),
    };
    Ok(o)
}

fn run_box(a: &Args, root: &Path, lock: &std::fs::File) -> Result<Verdict> {
    if a.cg_mem.is_some() && !a.cg {
        return Err(usage("--cg-mem needs --cg"));
    }
    if a.cg {
        // isolate's words when there are no control groups (the launcher still asks systemd
        // for a scope when the caller's cgroup is merely not delegated)
        let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
        match crate::host::find_cgroup() {
            Ok(_) => {}
            Err(crate::host::NoCgroup::NotDelegated { .. }) if session_bus => {}
            Err(why) => {
                return Err(Error::host(
                    format!("--cg: control groups are not available to ward here: {why}"),
                    "run without --cg, or in a delegated scope (systemd-run --user --scope -p Delegate=yes isolate ...); see 'ward check'",
                ));
            }
        }
    }
    let dir = root.join(a.box_id.to_string());
    let boxdir = dir.join("box");
    if !boxdir.is_dir() {
        return Err(Error::host(format!("box {} is not initialized", a.box_id), "run isolate --init first"));
    }
    match warm_idle() {
        // the box's lock file, open already, records the configuration the last run asked for
        Some(idle) => crate::run_box(&request(a, &boxdir)?, &dir.join(KEEPER), lock, idle),
        None => crate::run(&request(a, &boxdir)?),
    }
}

/// A box's warm sandbox: its keeper's record.
const KEEPER: &str = "keeper";

/// Warm boxes are on unless WARD_ISOLATE_WARM=0: a box's second run of one configuration
/// starts its warm sandbox, and later runs of that configuration join it (with
/// WARD_ISOLATE_WARM=init, --init starts one for isolate's default tree). A keeper nobody
/// used for WARD_KEEPER_IDLE seconds (default 600) ends by itself.
fn warm_idle() -> Option<u64> {
    if std::env::var_os("WARD_ISOLATE_WARM").is_some_and(|v| v == "0") {
        return None;
    }
    Some(std::env::var("WARD_KEEPER_IDLE").ok().and_then(|v| v.parse().ok()).unwrap_or(crate::launcher::warm::DEFAULT_IDLE))
}

/// Entry point: `args` are isolate's arguments (without the program name).
pub fn main(args: &[OsString]) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if a.mode == Some(Mode::Help) {
        print!("{HELP}");
        return 0;
    }
    if a.mode == Some(Mode::Version) {
        println!("The process isolator 2.0 (ward {} rootless front end)", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let fail = |e: Error| {
        eprintln!("{e}");
        2
    };
    let root = match box_root() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let _lock = match lock_box(&root, a.box_id) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let dir = root.join(a.box_id.to_string());
    match a.mode {
        Some(Mode::Init) => {
            // an old box is removed completely, or the init fails: never reuse its contents
            crate::launcher::warm::Keeper::end_recorded(&dir.join(KEEPER));
            if let Err(e) = remove_tree(&dir) {
                return fail(Error::io(format!("remove the old box {}", dir.display()), e));
            }
            if let Err(e) = make_box(&dir, a.box_id) {
                return fail(e);
            }
            // WARD_ISOLATE_WARM=init: the box's warm sandbox for runs with isolate's default
            // tree, built in the background (a run before it is ready is fresh). Not by
            // default: a box used once would pay for it (benches/isolate.py)
            if let (Some(idle), true) = (warm_idle(), std::env::var_os("WARD_ISOLATE_WARM").is_some_and(|v| v == "init")) {
                let boxdir = dir.join("box");
                let first = Args { box_id: a.box_id, cg: a.cg, share_net: a.share_net, argv: vec!["/bin/true".into()], ..Default::default() };
                if let Ok(req) = request(&first, &boxdir) {
                    let _ = crate::prepare_box(&req, &dir.join(KEEPER), idle);
                }
            }
            println!("{}", dir.display());
            0
        }
        Some(Mode::Cleanup) => {
            crate::launcher::warm::Keeper::end_recorded(&dir.join(KEEPER));
            if let Err(e) = remove_tree(&dir) {
                return fail(Error::io(format!("remove {}", dir.display()), e));
            }
            let _ = std::fs::remove_file(root.join(format!("{}.lock", a.box_id)));
            0
        }
        _ => {
            let v = run_box(&a, &root, &_lock).unwrap_or_else(|e| Verdict::new(&crate::verdict::Ending::NotStarted(e), None));
            let v = match &v.status {
                // isolate's wording for a program that cannot be executed
                Status::XX if matches!(v.ward_exit_code, crate::verdict::EXIT_NOT_FOUND | crate::verdict::EXIT_NOT_EXECUTABLE) => {
                    let prog = a.argv.first().map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned()).unwrap_or_default();
                    let why = if v.ward_exit_code == crate::verdict::EXIT_NOT_FOUND { "No such file or directory" } else { "Permission denied" };
                    Verdict { message: format!("execve(\"{prog}\"): {why}"), ..v }
                }
                _ => v,
            };
            if let Some(m) = &a.meta {
                if let Err(e) = super::write_replacing(m, meta_cg(&v, a.cg).as_bytes()) {
                    eprintln!("Cannot write the meta file {}: {e}", m.display());
                    return 2;
                }
            }
            if !a.silent {
                match v.status {
                    Status::OK => eprintln!("OK ({:.3} sec real, {:.3} sec wall)", v.cpu_time_ms / 1000.0, v.wall_time_ms / 1000.0),
                    _ => eprintln!("{}", meta(&v).lines().find_map(|l| l.strip_prefix("message:")).unwrap_or("")),
                }
            }
            if a.verbose > 0 {
                eprintln!("{}", v.to_json());
            }
            match v.status {
                Status::OK => 0,
                Status::XX => 2,
                _ => 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn judge0_and_cms_command_lines() {
        let a = p(&["-b", "7", "-i", "stdin.txt", "-o", "stdout.txt", "-r", "stderr.txt", "-M", "/b/meta.txt", "-t", "5.0", "-x", "1.0", "-w", "10.0", "-k", "64000", "-p60", "-m", "128000", "-f", "1024", "-E", "HOME=/b", "-d", "/etc:noexec", "--run", "--", "./a.out", "x"]).unwrap();
        assert_eq!((a.box_id, a.time, a.extra_time, a.wall_time), (7, Some(5.0), Some(1.0), Some(10.0)));
        assert_eq!((a.stack_kb, a.mem_kb, a.fsize_kb, a.processes), (Some(64000), Some(128000), Some(1024), Some(Some(60))));
        assert_eq!(a.dirs, ["/etc:noexec"]);
        assert_eq!(a.argv, [OsString::from("./a.out"), OsString::from("x")]);
        let c = p(&["--cg", "--box-id=3", "--time=1", "--wall-time=3", "--processes", "--dir=/tmp=/x:rw", "--stderr-to-stdout", "--meta=/m", "--run", "--", "/usr/bin/python3"]).unwrap();
        assert!(c.cg && c.stderr_to_stdout);
        assert_eq!(c.processes, Some(None));
        assert!(p(&["--frobnicate", "--init"]).unwrap_err().to_string().contains("Unknown option --frobnicate"));
        assert!(p(&["-b", "1"]).is_err());
        assert!(p(&["--run"]).is_err());
    }

    #[test]
    fn meta_files_read_like_isolate() {
        use crate::sync::ExitReport;
        use crate::verdict::Ending;
        let ok = Verdict::new(&Ending::Ran(ExitReport { wait_status: 0, wall_ns: 12_000_000, utime_us: 4000, ..Default::default() }), None);
        assert_eq!(meta(&ok), "time:0.004\ntime-wall:0.012\nmax-rss:0\ncsw-voluntary:0\ncsw-forced:0\nexitcode:0\n");
        let re = Verdict::new(&Ending::Ran(ExitReport { wait_status: 3 << 8, ..Default::default() }), None);
        assert!(meta(&re).ends_with("exitcode:3\nmessage:Exited with error status 3\nstatus:RE\n"));
        let sg = Verdict::new(&Ending::Ran(ExitReport { wait_status: 11, ..Default::default() }), None);
        assert!(meta(&sg).ends_with("exitsig:11\nmessage:Caught fatal signal 11\nstatus:SG\n"));
        let to = Verdict::new(&Ending::Ran(ExitReport { wait_status: 9, utime_us: 1_100_000, ..Default::default() }), None)
            .with_limits(&crate::policy::limits::TimeLimits::new(Some(1.0), None, None, None, None).unwrap(), Some(crate::policy::limits::Hit::Time));
        assert!(meta(&to).ends_with("killed:1\nmessage:Time limit exceeded\nstatus:TO\n"), "{}", meta(&to));
    }

}
