//! `nnblob footprint`: a blob (and optionally a device profile) in; flash and RAM for a target,
//! and per layer the MACs and, from the profile, the instructions, out.
//!
//! Flash = blob + the engine's code for the target; RAM = arena + one buffer per input and
//! output + the engine's stack. The engine figures are a committed table (`emit::ENGINE_TARGETS`,
//! measured with the size probe and under QEMU; docs/EMIT.md), not measured at run time: the
//! user's machine need not have the bare-metal targets, and the table is pinned by tests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{ensure, Context};
use nnblob_format::BlobView;
use serde::Serialize;

use super::inspect_blob::{op_row, OpRow};
use crate::emit::{EngineTarget, Profile, Sizes, ENGINE_TARGETS};

const EXAMPLES: &str = "\
Examples:
  nnblob footprint resnet8.nnb
      flash and RAM on a Cortex-M4 (the default target), MACs per layer
  nnblob footprint resnet8.nnb --target cortex-m0plus --json
  nnblob footprint resnet8.nnb --profile resnet8.profile
      also instructions per layer and per MAC, from the example firmware's report under QEMU:
      (cd firmware/qemu && NNBLOB_QEMU_BLOB=resnet8.nnb NNBLOB_QEMU_INPUT=in.bin \\
         cargo run --release) > resnet8.profile

Flash counts the blob and the engine (every op linked, opt-level s); your firmware's own code,
vectors and runtime come on top. RAM counts the arena, one f32 buffer per input and output, and
the engine's deepest stack as measured under QEMU (with --profile: that run's own figure).";

/// Flash and RAM a blob needs on a target, per layer MACs and (with a profile) instructions.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The blob.
    blob: PathBuf,
    /// The core the engine runs on.
    #[arg(long, default_value = "cortex-m4", value_parser = target_names())]
    target: String,
    /// The example firmware's report for this blob (docs/DEVICE.md): instructions per op.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
}

fn target_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(ENGINE_TARGETS.map(|t| t.name))
}

#[derive(Serialize)]
struct Layer {
    #[serde(flatten)]
    op: OpRow,
    insns: Option<u64>,
    insns_per_mac: Option<f64>,
}

#[derive(Serialize)]
struct Flash {
    blob: usize,
    engine_text: usize,
    engine_rodata: usize,
    total: usize,
    /// The same with the C API's library (`libnnblob_capi.a`) in place of the Rust engine.
    c_api_text: usize,
    c_api_rodata: usize,
    c_api_total: usize,
}

#[derive(Serialize)]
struct Ram {
    arena: usize,
    io_buffers: usize,
    /// `None`: no measurement for this target.
    stack: Option<usize>,
    /// `"profile"` or `"table"`.
    stack_source: Option<&'static str>,
    total: usize,
}

#[derive(Serialize)]
struct Report {
    file: String,
    model: String,
    target: &'static str,
    rust_target: &'static str,
    flash_bytes: Flash,
    ram_bytes: Ram,
    macs: u64,
    inference_insns: Option<u64>,
    insns_per_mac: Option<f64>,
    layers: Vec<Layer>,
}

fn ratio(insns: Option<u64>, macs: u64) -> Option<f64> {
    insns.filter(|_| macs > 0).map(|i| i as f64 / macs as f64)
}

/// Run `footprint`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let file = args.blob.display().to_string();
    let bytes = std::fs::read(&args.blob).with_context(|| format!("reading {file}"))?;
    let sizes = Sizes::of(&bytes).with_context(|| file.clone())?;
    let view = BlobView::new_checked(&bytes).with_context(|| file.clone())?;
    let target: &EngineTarget = ENGINE_TARGETS
        .iter()
        .find(|t| t.name == args.target)
        .context("unknown target")?;
    let mut ops = Vec::new();
    for (i, op) in view.ops().enumerate() {
        ops.push(op_row(
            i,
            &op.with_context(|| file.clone())?,
            &view,
            view.dtype(),
        ));
    }
    let profile = match &args.profile {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
            let p = Profile::parse(&text).with_context(|| name.clone())?;
            check_profile(&p, &sizes.name, &ops).with_context(|| {
                format!("{name} is not a profile of {file}; run the firmware on this blob")
            })?;
            Some(p)
        }
        None => None,
    };
    let layers: Vec<Layer> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let insns = profile.as_ref().and_then(|p| p.ops.get(i)).map(|o| o.1);
            Layer {
                insns_per_mac: ratio(insns, op.macs),
                insns,
                op,
            }
        })
        .collect();
    let (stack, stack_source) = match &profile {
        Some(p) => (Some(p.stack_bytes as usize), Some("profile")),
        None => (target.stack_bytes, target.stack_bytes.map(|_| "table")),
    };
    let macs = layers.iter().map(|l| l.op.macs).sum();
    let inference_insns = profile.as_ref().map(|p| p.inference_insns);
    let report = Report {
        file,
        model: sizes.name.clone(),
        target: target.name,
        rust_target: target.rust_target,
        flash_bytes: Flash {
            blob: sizes.blob_bytes,
            engine_text: target.text_bytes,
            engine_rodata: target.rodata_bytes,
            total: sizes.blob_bytes + target.text_bytes + target.rodata_bytes,
            c_api_text: target.capi_text_bytes,
            c_api_rodata: target.capi_rodata_bytes,
            c_api_total: sizes.blob_bytes + target.capi_text_bytes + target.capi_rodata_bytes,
        },
        ram_bytes: Ram {
            arena: sizes.arena_bytes(),
            io_buffers: sizes.io_bytes(),
            stack,
            stack_source,
            total: sizes.ram_bytes() + stack.unwrap_or(0),
        },
        macs,
        inference_insns,
        insns_per_mac: ratio(inference_insns, macs),
        layers,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// A profile belongs to a blob when it names the same model and lists the same ops in order.
fn check_profile(p: &Profile, model: &str, ops: &[OpRow]) -> anyhow::Result<()> {
    ensure!(
        p.model == model,
        "it profiles model '{}', the blob is '{model}'",
        p.model
    );
    ensure!(
        p.ops.len() == ops.len(),
        "it has {} ops, the blob {}",
        p.ops.len(),
        ops.len()
    );
    if let Some((i, ((kind, _), op))) = p
        .ops
        .iter()
        .zip(ops)
        .enumerate()
        .find(|(_, ((kind, _), op))| kind != op.kind)
    {
        anyhow::bail!("op {i} is {kind} there, {} in the blob", op.kind);
    }
    Ok(())
}

fn print(r: &Report) {
    println!(
        "model:   {} ({}), target {} ({})",
        r.model, r.file, r.target, r.rust_target
    );
    let f = &r.flash_bytes;
    println!(
        "flash:   {} bytes = blob {} + engine .text {} + .rodata {}",
        f.total, f.blob, f.engine_text, f.engine_rodata
    );
    println!(
        "from C:  {} bytes = blob {} + C API .text {} + .rodata {} (libnnblob_capi.a; docs/C.md)",
        f.c_api_total, f.blob, f.c_api_text, f.c_api_rodata
    );
    let m = &r.ram_bytes;
    let stack = match (m.stack, m.stack_source) {
        (Some(s), Some("profile")) => format!("stack {s} (measured in the profile's run)"),
        (Some(s), _) => {
            format!("stack {s} (deepest measured under QEMU: catalog models and test networks)")
        }
        (None, _) => "stack not measured on this target".into(),
    };
    println!(
        "RAM:     {} bytes = arena {} + input/output buffers {} + {stack}",
        m.total, m.arena, m.io_buffers
    );
    match (r.inference_insns, r.insns_per_mac) {
        (Some(i), Some(per)) => {
            println!(
                "MACs:    {}; {i} instructions per inference, {per:.2} per MAC",
                r.macs
            );
        }
        (Some(i), None) => println!("MACs:    {}; {i} instructions per inference", r.macs),
        _ => println!("MACs:    {}", r.macs),
    }
    println!();
    let kind = |o: &OpRow| match o.activation {
        Some(a) => format!("{}+{a}", o.kind),
        None => o.kind.to_string(),
    };
    let kind_w = r
        .layers
        .iter()
        .map(|l| kind(&l.op).len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:>4}  {:kind_w$}  {:>12}  {:>12}  {:>14}  {:>14}  {:>9}",
        "op", "kind", "weight bytes", "MACs", "instructions", "share", "per MAC"
    );
    for l in &r.layers {
        let insns = l.insns.map_or_else(|| "-".into(), |i| i.to_string());
        let share = match (l.insns, r.inference_insns) {
            (Some(i), Some(total)) if total > 0 => {
                format!("{:.1}%", 100.0 * i as f64 / total as f64)
            }
            _ => String::new(),
        };
        let per = l
            .insns_per_mac
            .map_or_else(String::new, |p| format!("{p:.2}"));
        println!(
            "{:>4}  {:kind_w$}  {:>12}  {:>12}  {:>14}  {:>14}  {:>9}",
            l.op.index,
            kind(&l.op),
            l.op.weight_bytes,
            l.op.macs,
            insns,
            share,
            per
        );
    }
}
