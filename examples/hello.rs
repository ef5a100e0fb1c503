//! The library API in a few lines: run a program in a strict sandbox and read the verdict.
//! Run it as an ordinary user: `cargo run --example hello`.

fn main() -> Result<(), ward::Error> {
    let verdict = ward::Sandbox::new(["/bin/sh", "-c", "echo hello from the sandbox; id -u"])
        .workdir(ward::Workdir::None, ward::WorkdirMode::ReadOnly)
        .rlimit(ward::Limit::Nofile, Some(64))
        .run()?;
    println!("status {:?}, exit code {:?}, {} ms wall", verdict.status, verdict.exit_code, verdict.wall_time_ms);
    Ok(())
}
