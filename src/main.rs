//! The `ward` binary: parse the command line, call the library, write the verdict, map the
//! outcome to the documented exit codes.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use std::io::Write;
use ward::cli::{Cli, Command, check_verdict_fd};
use ward::verdict::{EXIT_SANDBOX_FAILED, Ending, Verdict};

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    // isolate's command line: invoked as `isolate` (a symlink) or as `ward isolate ...`
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args.first().and_then(|a| std::path::Path::new(a).file_name()).map(|n| n.to_os_string());
    if invoked_as.as_deref() == Some(std::ffi::OsStr::new("isolate")) {
        return ward::isolate::main(&args[1..]);
    }
    if args.get(1).map(|a| a == "isolate").unwrap_or(false) {
        return ward::isolate::main(&args[2..]);
    }
    let matches = match Cli::command().try_get_matches() {
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
            let report = ward::check::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", report.to_text());
            }
            if report.ok { 0 } else { 1 }
        }
        Command::Cleanup => match ward::cgroup::find() {
            Ok(sub) => {
                let n = ward::cgroup::remove_stale(&sub);
                println!("removed {n} stale cgroup leaves under {}", sub.dir.display());
                0
            }
            Err(why) => {
                println!("nothing to clean: no delegated cgroup ({why})");
                0
            }
        },
        Command::Profile { action } => match action {
            ward::cli::ProfileAction::List => {
                for (name, _) in ward::profile::BUILTIN {
                    let d = ward::profile::Profile::load(name).ok().and_then(|p| p.description).unwrap_or_default();
                    println!("{name:<8} {d}");
                }
                0
            }
            ward::cli::ProfileAction::Show { name } => match ward::profile::Profile::load(&name) {
                Ok(p) => {
                    print!("{}", p.to_toml());
                    0
                }
                Err(e) => {
                    eprintln!("ward: {e}");
                    EXIT_SANDBOX_FAILED
                }
            },
        },
        Command::Run(args) => {
            let sub = matches.subcommand_matches("run");
            match run(&args, sub) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("ward: {e:#}");
                    EXIT_SANDBOX_FAILED
                }
            }
        }
    }
}

fn run(args: &ward::cli::RunArgs, m: Option<&clap::ArgMatches>) -> anyhow::Result<i32> {
    if let Some(fd) = args.verdict_fd {
        check_verdict_fd(fd)?;
    }
    let m = m.context("internal: no matches for 'run'")?;
    let verdict = match ward::cli_options(args, m).and_then(|opts| ward::run(&opts)) {
        Ok(v) => v,
        Err(e) => Verdict::new(&Ending::NotStarted(e), None),
    };
    // XX: ward failed before the program started (exec failures included); say why
    if verdict.status == ward::Status::XX {
        eprintln!("ward: {}", verdict.message);
    }
    write_verdict(args, &verdict)?;
    Ok(verdict.ward_exit_code)
}

fn write_verdict(args: &ward::cli::RunArgs, v: &Verdict) -> anyhow::Result<()> {
    let json = v.to_json() + "\n";
    if let Some(path) = &args.meta {
        let cg = v.enforced.as_ref().is_some_and(|e| e.cgroup.starts_with("leaf "));
        std::fs::write(path, ward::isolate::meta_cg(v, cg)).with_context(|| format!("--meta {}: cannot write the meta file", path.display()))?;
    }
    if let Some(path) = &args.verdict {
        std::fs::write(path, &json).with_context(|| format!("--verdict {}: cannot write the verdict", path.display()))?;
    } else if let Some(fd) = args.verdict_fd {
        let mut f = ward::sys::file_from_fd(fd);
        f.write_all(json.as_bytes()).with_context(|| format!("--verdict-fd {fd}: cannot write the verdict"))?;
    }
    Ok(())
}
