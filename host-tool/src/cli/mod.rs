//! The command line: arguments in, one subcommand run, an exit code out.
//!
//! Each subcommand is a module with its arguments (`Args`) and an `exec` that calls the library and
//! prints. Errors travel up as `anyhow::Error` with context naming the file; `main` prints them once
//! as `nnblob: <message>`.

mod archs;
mod bench;
mod convert;
mod demo;
mod diagnostics;
mod emit;
mod export_onnx;
mod extract;
mod footprint;
mod inspect;
mod inspect_blob;
mod inspect_pt2;
mod progress;
mod run;
mod scan;
mod spec;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Success.
pub const EXIT_OK: u8 = 0;
/// `scan` found refused globals.
pub const EXIT_FINDINGS: u8 = 1;
/// `validate`: an output is outside its tolerances.
pub const EXIT_FAILED: u8 = 1;
/// The file could not be read or was refused, or the arguments are wrong.
pub const EXIT_ERROR: u8 = 2;

const AFTER_HELP: &str = "\
Exit codes:
  0  success (scan: every file is clean)
  1  scan: at least one file references a global nnblob refuses;
     validate: an output of the blob is outside its tolerances
  2  error: a file could not be read or was refused (the message says what and where), or bad arguments

nnblob never executes anything inside a checkpoint: pickle globals resolve against an allowlist.";

/// Run PyTorch weights on microcontrollers: read checkpoints safely, compile, write blobs, validate.
#[derive(Debug, Parser)]
#[command(name = "nnblob", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Inspect(inspect::Args),
    Extract(extract::Args),
    Scan(scan::Args),
    Convert(convert::Args),
    Spec(spec::Args),
    Run(run::Args),
    Archs(archs::Args),
    Emit(emit::Args),
    Footprint(footprint::Args),
    ExportOnnx(export_onnx::Args),
    Validate(validate::Args),
    Bench(bench::Args),
    Demo(demo::Args),
}

/// Run the parsed command line; the exit code on success (`scan` may report findings).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect::exec(&args),
        Command::Extract(args) => extract::exec(&args),
        Command::Scan(args) => scan::exec(&args),
        Command::Convert(args) => convert::exec(&args),
        Command::Spec(args) => spec::exec(&args),
        Command::Run(args) => run::exec(&args),
        Command::Archs(args) => archs::exec(&args),
        Command::Emit(args) => emit::exec(&args),
        Command::Footprint(args) => footprint::exec(&args),
        Command::ExportOnnx(args) => export_onnx::exec(&args),
        Command::Validate(args) => validate::exec(&args),
        Command::Bench(args) => bench::exec(&args),
        Command::Demo(args) => demo::exec(&args),
    }
}
