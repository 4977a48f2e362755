//! `nnblob emit`: a blob in, the files a firmware project compiles out — a Rust module, a C
//! header and source, or the raw blob — each checked by the engine first (`crate::emit`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::emit::{self, Options, Sizes, BLOB_ALIGN, DEFAULT_SECTION};

const EXAMPLES: &str = "\
Examples:
  nnblob emit resnet8.nnb --rust firmware/src/resnet8
      writes mod.rs, model.nnb and nnblob.x there; in the firmware: `mod resnet8;`,
      `Model::from_bytes(&resnet8::BLOB.0)`, `static mut ARENA: [f32; resnet8::ARENA_LEN]`
  nnblob emit resnet8.nnb --rust src/resnet8 --ram-budget 262144
      the same, and the firmware's build fails if the arena needs more than 256 KiB
  nnblob emit kws.nnb --c app/model --name kws
      writes kws.h, kws.c (the blob as an aligned const array) and nnblob.x
  nnblob emit kws.nnb --bin kws.bin
      the raw blob, to flash at an address that is a multiple of 16

The blob goes into a linker section of its own, .nnblob (change with --section): nnblob.x is the
rule that places it (append it to cortex-m-rt's memory.x, or pass it with -T); without a rule,
GNU ld and lld place it after .rodata in flash; --section .rodata.nnblob puts it in .rodata.
See docs/EMIT.md.
Every file is written through a temporary file and a rename: never half-written.";

/// Write a blob as sources a firmware project compiles: Rust, C, or a raw .bin.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group(clap::ArgGroup::new("out").required(true).args(["rust", "c", "bin"])))]
pub struct Args {
    /// The blob (`nnblob convert` writes it).
    blob: PathBuf,
    /// Write a Rust module into this folder: mod.rs, model.nnb, nnblob.x.
    #[arg(long, value_name = "DIR")]
    rust: Option<PathBuf>,
    /// Write a C header and source into this folder: NAME.h, NAME.c, nnblob.x.
    #[arg(long, value_name = "DIR")]
    c: Option<PathBuf>,
    /// Write the raw blob to this file (place it at a 16-byte aligned address).
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
    /// Prefix of the C file and symbol names (default: the model's name as an identifier).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Linker input section of the blob.
    #[arg(long, value_name = "SECTION", default_value = DEFAULT_SECTION)]
    section: String,
    /// RAM budget for the arena, in bytes: refused now if exceeded, and the emitted source
    /// asserts it at compile time.
    #[arg(long, value_name = "BYTES")]
    ram_budget: Option<usize>,
}

/// Run `emit`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.blob.display().to_string();
    let blob = std::fs::read(&args.blob).with_context(|| format!("reading {file}"))?;
    let options = Options {
        name: args.name.clone(),
        section: Some(args.section.clone()),
        ram_budget: args.ram_budget,
    };
    let sizes = Sizes::of(&blob).with_context(|| file.clone())?;
    let (artifacts, dir) = if let Some(dir) = &args.rust {
        (emit::rust_module(&blob, &options), dir)
    } else if let Some(dir) = &args.c {
        (emit::c_sources(&blob, &options), dir)
    } else {
        let path = args
            .bin
            .as_ref()
            .context("give one of --rust, --c, --bin")?;
        options.check_budget(&sizes).with_context(|| file.clone())?;
        emit::write_file(path, &blob)?;
        eprintln!(
            "wrote {} ({} bytes; place it at an address that is a multiple of {BLOB_ALIGN})",
            path.display(),
            blob.len()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let artifacts = artifacts.with_context(|| file.clone())?;
    emit::write_artifacts(dir, &artifacts)?;
    let names: Vec<&str> = artifacts.iter().map(|a| a.file_name.as_str()).collect();
    eprintln!(
        "wrote {} into {}: blob {} bytes, arena {} bytes, RAM besides the stack {} bytes",
        names.join(", "),
        dir.display(),
        sizes.blob_bytes,
        sizes.arena_bytes(),
        sizes.ram_bytes()
    );
    Ok(ExitCode::SUCCESS)
}
