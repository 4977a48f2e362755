//! The `nnblob` command: parse arguments, run one subcommand, print errors once.

use clap::Parser;

/// Run PyTorch weights on microcontrollers.
#[derive(Parser)]
#[command(name = "nnblob", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
