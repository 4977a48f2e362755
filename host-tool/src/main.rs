//! The `nnblob` command: parse arguments, run one subcommand, print an error once.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nnblob::cli::Cli::parse();
    match nnblob::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nnblob: {e:#}");
            ExitCode::from(nnblob::cli::EXIT_ERROR)
        }
    }
}
