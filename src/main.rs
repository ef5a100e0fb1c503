//! The `ward` binary: the library's command line (`ward::cli_main`), exit code and all.

fn main() {
    std::process::exit(ward::cli_main(std::env::args_os().collect()));
}
