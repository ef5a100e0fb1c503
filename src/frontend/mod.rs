//! The front ends: each turns its input into a `Request` (or prints a report) and maps the
//! outcome to its exit codes. `ward run`, `ward profile`, `ward cleanup` and `ward check`
//! (`cli`, `check`), and isolate's command line (`isolate`, when ward is invoked as
//! `isolate` or as `ward isolate`). Not library API: the binary calls `ward::cli_main`.

pub mod check;
pub mod cli;
pub mod isolate;

use crate::verdict::{EXIT_SANDBOX_FAILED, Ending, Verdict};
use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command, ProfileAction, RunArgs};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;

/// The whole command line; returns the process's exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    // isolate's command line: invoked as `isolate` (a symlink) or as `ward isolate ...`
    let invoked_as = args.first().and_then(|a| Path::new(a).file_name()).map(|n| n.to_os_string());
    if invoked_as.as_deref() == Some(OsStr::new("isolate")) {
        return isolate::main(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "isolate") {
        return isolate::main(&args[2..]);
    }
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    match cli.command {
        Command::Check { json } => {
            let report = check::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", report.to_text());
            }
            if report.ok { 0 } else { 1 }
        }
        Command::Cleanup => {
            let k = crate::launcher::warm::end_stale();
            println!("ended {k} stale warm sandbox keepers");
            match isolate::remove_stale_boxes() {
                (n, Some(root)) => println!("removed {n} isolate boxes left from before this boot or container start under {}", root.display()),
                (_, None) => println!("no isolate boxes to clean: no box root of yours"),
            }
            match crate::host::find_cgroup() {
                Ok(sub) => {
                    let n = crate::launcher::cgroup::remove_stale(&sub);
                    println!("removed {n} stale cgroup leaves under {}", sub.dir.display());
                }
                Err(why) => println!("no cgroup leaves to clean: no delegated cgroup ({why})"),
            }
            0
        }
        Command::Profile { action } => match action {
            ProfileAction::List => {
                for (name, _) in crate::request::profile::BUILTIN {
                    let d = crate::request::profile::load(name).ok().and_then(|p| p.description).unwrap_or_default();
                    println!("{name:<8} {d}");
                }
                0
            }
            ProfileAction::Show { name } => match crate::request::profile::load(&name) {
                Ok(p) => {
                    print!("{}", crate::request::profile::to_toml(&p));
                    0
                }
                Err(e) => {
                    eprintln!("ward: {e}");
                    EXIT_SANDBOX_FAILED
                }
            },
        },
        Command::Run(args) => match matches.subcommand_matches("run") {
            Some(m) => run(&args, m),
            None => EXIT_SANDBOX_FAILED,
        },
    }
}

fn run(args: &RunArgs, m: &clap::ArgMatches) -> i32 {
    if let Some(file) = &args.batch {
        return batch(args, m, file);
    }
    let verdict_fd = match args.verdict_fd.map(cli::verdict_file).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ward: {e}");
            return EXIT_SANDBOX_FAILED;
        }
    };
    let verdict = match cli::request(args, m).and_then(|r| crate::run(&r)) {
        Ok(v) => v,
        Err(e) => Verdict::new(&Ending::NotStarted(e), None),
    };
    // XX: ward failed before the program started (exec failures included); say why
    if verdict.status == crate::Status::XX {
        eprintln!("ward: {}", verdict.message);
    }
    match write_verdict(args, &verdict, verdict_fd) {
        Ok(()) => verdict.ward_exit_code,
        Err(e) => {
            eprintln!("ward: {e}");
            EXIT_SANDBOX_FAILED
        }
    }
}

/// One line of a batch: a program over the command line's request.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLine {
    argv: Vec<String>,
    stdin: Option<std::path::PathBuf>,
    stdout: Option<std::path::PathBuf>,
    stderr: Option<std::path::PathBuf>,
    #[serde(default)]
    env: Vec<String>,
    time: Option<f64>,
    wall_time: Option<f64>,
    mem: Option<u64>,
}

fn batch_request(base: &crate::Request, line: &str) -> crate::Result<crate::Request> {
    let l: BatchLine = serde_json::from_str(line).map_err(|e| crate::Error::invalid(format!("--batch: a line is not a request: {e}"), "write one JSON object per line, e.g. {\"argv\": [\"/bin/true\"]}"))?;
    if l.argv.is_empty() {
        return Err(crate::Error::invalid("--batch: \"argv\" is empty", "name the program first"));
    }
    let mut r = base.clone();
    r.run.argv = l.argv.into_iter().map(OsString::from).collect();
    r.run.stdin = l.stdin.or(r.run.stdin);
    // the verdicts are on stdout: a program's output goes only where a file is named
    r.run.stdout = l.stdout.or(r.run.stdout).or_else(|| Some("/dev/null".into()));
    r.run.stderr = l.stderr.or(r.run.stderr);
    for kv in l.env {
        let (k, v) = kv.split_once('=').ok_or_else(|| crate::Error::invalid(format!("--batch: env {kv:?} is not K=V"), "write \"NAME=value\""))?;
        r.process.env.push((k.to_string(), v.to_string()));
    }
    r.limits.time = l.time.or(r.limits.time);
    r.limits.wall_time = l.wall_time.or(r.limits.wall_time);
    r.limits.mem = l.mem.map(crate::Size).or(r.limits.mem);
    Ok(r)
}

/// A batch's lines as requests over the command line's (`base`).
struct BatchLines<'a> {
    base: &'a crate::Request,
    input: std::io::BufReader<Box<dyn std::io::Read>>,
    /// Reading never waits for a writer (a regular file).
    file: bool,
    failed: Option<std::io::Error>,
}

impl crate::Requests for BatchLines<'_> {
    fn next(&mut self) -> Option<crate::Result<crate::Request>> {
        loop {
            let mut line = String::new();
            match std::io::BufRead::read_line(&mut self.input, &mut line) {
                Ok(0) => return None,
                Ok(_) if line.trim().is_empty() => continue,
                Ok(_) => return Some(batch_request(self.base, line.trim_end_matches(['\n', '\r']))),
                Err(e) => {
                    self.failed = Some(e);
                    return None;
                }
            }
        }
    }

    fn ready(&mut self) -> bool {
        // a pipe: only a whole line with a request on it, already read
        let read = self.input.buffer();
        self.file || read.iter().rposition(|b| *b == b'\n').is_some_and(|end| read[..end].iter().any(|b| !b.is_ascii_whitespace()))
    }
}

/// `ward run --batch FILE`: every line's verdict on stdout, in order (a program's stdout is
/// /dev/null unless its line or the options name a file); exit 0 when every line
/// got one (their statuses are in them), 125 when the batch itself could not be read.
fn batch(args: &RunArgs, m: &clap::ArgMatches, file: &Path) -> i32 {
    let base = match cli::request(args, m) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ward: {e}");
            return EXIT_SANDBOX_FAILED;
        }
    };
    let (input, regular): (Box<dyn std::io::Read>, bool) = if file == Path::new("-") {
        let regular = nix::sys::stat::fstat(std::io::stdin()).is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG);
        (Box::new(std::io::stdin()), regular)
    } else {
        match std::fs::File::open(file) {
            Ok(f) => {
                let regular = f.metadata().is_ok_and(|m| m.is_file());
                (Box::new(f), regular)
            }
            Err(e) => {
                eprintln!("ward: --batch {}: {e}", file.display());
                return EXIT_SANDBOX_FAILED;
            }
        }
    };
    let mut lines = BatchLines { base: &base, input: std::io::BufReader::new(input), file: regular, failed: None };
    let mut warm = crate::WarmSandbox::new();
    let mut out = std::io::stdout().lock();
    let mut written = true;
    warm.run_batch(&mut lines, &mut |v| {
        let v = v.unwrap_or_else(|e| Verdict::new(&Ending::NotStarted(e), None));
        written = writeln!(out, "{}", v.to_json()).and_then(|_| out.flush()).is_ok();
        written
    });
    if let Some(e) = lines.failed {
        eprintln!("ward: --batch {}: {e}", file.display());
        return EXIT_SANDBOX_FAILED;
    }
    if written { 0 } else { EXIT_SANDBOX_FAILED }
}

/// Write `path` as a new file renamed over the name: whatever a sandboxed program planted
/// there (a symbolic link to another file, a FIFO) is replaced, never written through.
pub(crate) fn write_replacing(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"));
    }
    let mut tmp = tempfile::Builder::new().prefix(".ward-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

fn write_verdict(args: &RunArgs, v: &Verdict, fd: Option<std::fs::File>) -> Result<(), String> {
    let json = v.to_json() + "\n";
    if let Some(path) = &args.meta {
        let cg = v.enforced.as_ref().is_some_and(|e| e.cgroup_leaf);
        write_replacing(path, crate::verdict::meta_cg(v, cg).as_bytes()).map_err(|e| format!("--meta {}: cannot write the meta file: {e}", path.display()))?;
    }
    if let Some(path) = &args.verdict {
        write_replacing(path, json.as_bytes()).map_err(|e| format!("--verdict {}: cannot write the verdict: {e}", path.display()))?;
    } else if let (Some(mut f), Some(n)) = (fd, args.verdict_fd) {
        f.write_all(json.as_bytes()).map_err(|e| format!("--verdict-fd {n}: cannot write the verdict: {e}"))?;
    }
    Ok(())
}
