//! The program's last step: execve along the PATH candidates the launcher computed.

use crate::child::{Fail, Plan, fail};
use nix::errno::Errno;

/// execve each candidate in turn, like execvp: ENOENT/ENOTDIR go on to the next; the first
/// other error (EACCES, ENOEXEC...) is remembered. Returns only on failure.
pub fn exec(plan: &Plan) -> Fail {
    let mut first_other: Option<Errno> = None;
    for cand in &plan.candidates {
        let e = match nix::unistd::execve(cand, &plan.argv, &plan.envp) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        match e {
            Errno::ENOENT | Errno::ENOTDIR => {}
            other => {
                if first_other.is_none() {
                    first_other = Some(other);
                }
            }
        }
    }
    let prog = plan.argv.first().and_then(|a| a.to_str().ok()).unwrap_or("?");
    fail(first_other.unwrap_or(Errno::ENOENT), format_args!("execve({prog})"))
}
