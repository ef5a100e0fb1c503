//! The program's command line and environment, declared: argv within the kernel's limits,
//! the environment (only PATH, HOME and the caller's TERM and LANG unless asked), and where
//! execve will look for the program (the PATH search is done ahead of time).

use crate::error::{Error, Result};
use crate::host::Host;
use crate::request::Process;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest single argument the kernel accepts (MAX_ARG_STRLEN).
pub const MAX_ARG_LEN: usize = 128 * 1024;
/// Cap on argv + environment together; the kernel allows about a quarter of the stack limit.
pub const MAX_ARGS_TOTAL: usize = 2 * 1024 * 1024;
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn check_argv(argv: &[OsString]) -> Result<Vec<OsString>> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Error::invalid("no program given", "put the program and its arguments after --, e.g. ward run -- /bin/echo hi"));
    }
    let mut total = 0usize;
    for (i, a) in argv.iter().enumerate() {
        let b = a.as_bytes();
        if b.contains(&0) {
            return Err(Error::invalid(format!("argument {i} contains a NUL byte"), "remove it"));
        }
        if b.len() >= MAX_ARG_LEN {
            return Err(Error::invalid(
                format!("argument {i} is {} bytes; the kernel accepts at most {} bytes in one argument", b.len(), MAX_ARG_LEN - 1),
                "pass large data through --stdin or a bound file",
            ));
        }
        total += b.len() + 1;
    }
    if total > MAX_ARGS_TOTAL {
        return Err(Error::invalid(format!("the arguments take {total} bytes; ward accepts at most {MAX_ARGS_TOTAL}"), "pass large data through --stdin or a bound file"));
    }
    Ok(argv.to_vec())
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

/// PATH and HOME=/tmp, the caller's TERM and LANG, then the variables passed, then those set
/// (later wins).
pub fn build(p: &Process, host: &Host) -> Result<Vec<(String, OsString)>> {
    let from_host = |k: &str| host.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut env: Vec<(String, OsString)> = vec![("PATH".into(), DEFAULT_PATH.into()), ("HOME".into(), "/tmp".into())];
    for k in ["TERM", "LANG"] {
        if let Some(v) = from_host(k) {
            env.push((k.into(), v));
        }
    }
    let mut set = |k: &str, v: OsString| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    };
    for k in &p.pass_env {
        if !is_valid_env_name(k) {
            return Err(Error::invalid(format!("--env {k:?}: not a variable name"), "use NAME or NAME=VALUE"));
        }
        if let Some(v) = from_host(k) {
            set(k, v);
        }
    }
    for (k, v) in &p.env {
        if !is_valid_env_name(k) {
            return Err(Error::invalid(format!("--setenv {k:?}: not a variable name"), "use a name without '=' or NUL"));
        }
        if v.contains('\0') {
            return Err(Error::invalid(format!("--setenv {k}: the value contains a NUL byte"), ""));
        }
        set(k, v.into());
    }
    Ok(env)
}

/// Where execve will look for the program, decided now so the child only tries paths.
pub fn exec_candidates(prog: &OsString, env: &[(String, OsString)]) -> Vec<PathBuf> {
    let p = Path::new(prog);
    if prog.as_bytes().contains(&b'/') {
        return vec![p.to_path_buf()];
    }
    let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
    path.as_bytes()
        .split(|b| *b == b':')
        .map(|d| if d.is_empty() { Path::new(".") } else { Path::new(std::ffi::OsStr::from_bytes(d)) })
        .map(|d| d.join(p))
        .collect()
}
