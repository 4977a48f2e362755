//! `nnblob inspect`: what is in a checkpoint — format, tensors, classes, security notes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint, Options};

const EXAMPLES: &str = "\
Examples:
  nnblob inspect model.pth                  the tensors of a state_dict saved by torch.save
  nnblob inspect last.ckpt                  a Lightning checkpoint (state_dict found automatically)
  nnblob inspect run.pt --key model.ema     a state_dict nested under checkpoint[\"model\"][\"ema\"]
  nnblob inspect model.pth --json | jq '.tensors[].name'
  nnblob inspect model.pt2                  a torch.export archive: ops, inputs, outputs, weights,
                                            and whether nnblob converts it (what it cannot run yet)";

/// Show the format, the tensors (name, dtype, shape, numel, bytes, contiguous), totals, the classes a
/// full-model pickle names and any security notes.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The checkpoint: .pth/.pt/.bin (torch zip or legacy), .ckpt (Lightning), .safetensors; a
    /// torch.export archive (.pt2); or a blob written by `nnblob convert` (.nnb).
    file: PathBuf,
    /// Dotted key path of the state_dict inside a nested checkpoint (default: detected).
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Fail (exit 2) on a warning about the checkpoint (a BatchNorm never run in train mode).
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    dtype: &'static str,
    shape: &'a [usize],
    numel: usize,
    bytes: usize,
    contiguous: bool,
}

#[derive(Serialize)]
struct GlobalJson<'a> {
    name: &'a str,
    entry: &'a str,
    offset: u64,
    verdict: &'static str,
}

#[derive(Serialize)]
struct Report<'a> {
    format: &'static str,
    container: &'static str,
    key: Option<&'a str>,
    byteorder: &'static str,
    tensors: Vec<TensorJson<'a>>,
    tensor_count: usize,
    total_numel: usize,
    total_bytes: usize,
    classes: &'a [String],
    globals: Vec<GlobalJson<'a>>,
    security: Vec<String>,
    /// BatchNorms whose running statistics were never updated (one sentence each).
    warnings: Vec<String>,
    /// Training-only state read past: (key, what it holds).
    ignored: Vec<IgnoredJson<'a>>,
    /// Values outside the state_dict left unbuilt: the top-level keys holding them and the
    /// classes they call.
    skipped: Option<SkippedJson<'a>>,
}

#[derive(Serialize)]
struct SkippedJson<'a> {
    keys: &'a [String],
    globals: &'a [String],
}

#[derive(Serialize)]
struct IgnoredJson<'a> {
    key: &'a str,
    holds: &'static str,
}

/// Run `inspect`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    if super::inspect_blob::is_blob(&args.file) {
        return super::inspect_blob::exec(&args.file, args.json);
    }
    if crate::pt2::is_pt2_file(&args.file) {
        return super::inspect_pt2::exec(&args.file, args.json);
    }
    let options = Options {
        key: args.key.clone(),
    };
    let ckpt =
        checkpoint::open(&args.file, &options).with_context(|| args.file.display().to_string())?;
    let report = report(&ckpt);
    super::diagnostics::report(&ckpt, &args.file, args.deny_warnings)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&args.file.display().to_string(), &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn report(ckpt: &Checkpoint) -> Report<'_> {
    let tensors: Vec<TensorJson<'_>> = ckpt
        .tensors
        .iter()
        .map(|t| TensorJson {
            name: &t.name,
            dtype: t.dtype.code(),
            shape: &t.shape,
            numel: t.numel(),
            bytes: t.bytes().len(),
            contiguous: t.contiguous,
        })
        .collect();
    Report {
        format: ckpt.format.as_str(),
        container: ckpt.container.as_str(),
        key: ckpt.key.as_deref(),
        byteorder: if ckpt.big_endian { "big" } else { "little" },
        tensor_count: tensors.len(),
        total_numel: tensors.iter().map(|t| t.numel).sum(),
        total_bytes: tensors.iter().map(|t| t.bytes).sum(),
        tensors,
        classes: &ckpt.classes,
        globals: ckpt
            .globals
            .iter()
            .map(|g| GlobalJson {
                name: &g.name,
                entry: &g.entry,
                offset: g.offset,
                verdict: super::scan::verdict_word(&g.verdict),
            })
            .collect(),
        security: ckpt.security_notes(),
        warnings: crate::checkpoint::training::untrained_batchnorms(ckpt)
            .iter()
            .map(ToString::to_string)
            .collect(),
        ignored: ckpt
            .training_state
            .iter()
            .map(|(key, holds)| IgnoredJson { key, holds })
            .collect(),
        skipped: ckpt.skipped.as_ref().map(|s| SkippedJson {
            keys: &s.keys,
            globals: &s.globals,
        }),
    }
}

fn print_table(file: &str, r: &Report<'_>) {
    println!("file:      {file}");
    println!(
        "format:    {} (container {}, {}-endian)",
        r.format, r.container, r.byteorder
    );
    println!(
        "state_dict: {}",
        r.key.map_or_else(
            || "the top-level object".to_owned(),
            |k| format!("key {k:?}")
        )
    );
    println!();
    let shape = |s: &[usize]| {
        format!(
            "[{}]",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let name_w = r
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let shape_w = r
        .tensors
        .iter()
        .map(|t| shape(t.shape).len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:name_w$}  {:5}  {:shape_w$}  {:>12}  {:>14}  contiguous",
        "name", "dtype", "shape", "numel", "bytes"
    );
    for t in &r.tensors {
        println!(
            "{:name_w$}  {:5}  {:shape_w$}  {:>12}  {:>14}  {}",
            t.name,
            t.dtype,
            shape(t.shape),
            t.numel,
            t.bytes,
            if t.contiguous { "yes" } else { "no (copied)" }
        );
    }
    println!();
    println!(
        "total:     {} tensors, {} elements, {} bytes",
        r.tensor_count, r.total_numel, r.total_bytes
    );
    if r.classes.is_empty() {
        println!("classes:   none (a plain state_dict)");
    } else {
        println!("classes:   {}", r.classes.join(", "));
    }
    if r.security.is_empty() {
        println!("security:  no findings; every global is on the allowlist");
    } else {
        for note in &r.security {
            println!("security:  {note}");
        }
    }
}
