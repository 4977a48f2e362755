//! The `nnblob` command: parse arguments, run one subcommand, print an error once.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = nnblob::cli::Cli::parse();
    match nnblob::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nnblob: {e:#}");
            ExitCode::from(nnblob::cli::EXIT_ERROR)
        }
    }
}

/// `nnblob inspect m.nnb | head`: when the reader of stdout goes away, `println!` panics with
/// "failed printing to stdout: Broken pipe". That is the reader's choice, not an error of ours:
/// end quietly with status 0 (as ripgrep does), instead of a panic message. Any other panic
/// keeps the default report.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The report's text ("panicked at ...: failed printing to stdout: Broken pipe (os error
        // 32)"): the payload of a formatted panic is not a `String` a hook can read on Rust 1.85.
        let report = info.to_string();
        if report.contains("failed printing to stdout") && report.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
