//! `nnblob bench`: latency of one inference, firmware engine on the host against tract on the
//! same model, measured side by side in one run.
//!
//! In: a blob and optionally its ONNX reference. Out: per engine the median time of one inference
//! over `--runs` timed runs (after `--warmup` untimed ones) with its spread (min, 10th and 90th
//! percentiles), and the ratio engine / tract. Both engines run the same seeded N(0,1) input; the
//! firmware engine runs on preallocated buffers at the best SIMD level of the CPU (or the one
//! `--simd` allows: the same bits, for comparing its paths), tract on inputs converted once (its
//! plan's own cost).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::validate::FirmwareModel;
use nnblob_firmware::simd;

const EXAMPLES: &str = "\
Examples:
  nnblob bench resnet8.nnb --onnx resnet8.onnx
  nnblob bench resnet8.nnb --runs 1000 --warmup 50
  nnblob bench vgg16.nnb --onnx vgg16.onnx --runs 5 --warmup 1
  nnblob bench resnet8.nnb --onnx resnet8.onnx --simd portable
      the engine's portable loops instead of the CPU's SIMD paths (the same bits)

Figures are only meaningful from a release build (`cargo run --release -p nnblob -- bench ...`)
on an otherwise idle machine; both engines run single-threaded on the same input.";

/// Time one inference of a blob on the host, and of tract on the ONNX reference.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The blob written by `nnblob convert`.
    model: PathBuf,
    /// The ONNX reference to time tract on (`nnblob export-onnx`, or torch.onnx.export).
    #[arg(long, value_name = "REF.onnx")]
    onnx: Option<PathBuf>,
    /// Timed runs per engine.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Untimed runs before timing.
    #[arg(long, value_name = "N", default_value_t = 10)]
    warmup: u32,
    /// The engine's SIMD paths to use at most (default: the best this CPU has; every
    /// level gives the same bits).
    #[arg(long, value_name = "LEVEL")]
    simd: Option<SimdLevel>,
    /// Print the figures as one JSON document.
    #[arg(long)]
    json: bool,
}

/// The engine's kernel levels (`nnblob_firmware::simd::Level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SimdLevel {
    /// The portable loops (what every target without a SIMD path runs).
    Portable,
    /// x86-64 SSE2, 4 lanes.
    Sse2,
    /// x86-64 AVX2 with F16C, 8 lanes.
    Avx2,
}

impl From<SimdLevel> for simd::Level {
    fn from(l: SimdLevel) -> Self {
        match l {
            SimdLevel::Portable => simd::Level::Portable,
            SimdLevel::Sse2 => simd::Level::Sse2,
            SimdLevel::Avx2 => simd::Level::Avx2,
        }
    }
}

/// A level as the report writes it.
fn level_name(l: simd::Level) -> &'static str {
    match l {
        simd::Level::Portable => "portable",
        simd::Level::Sse2 => "sse2",
        simd::Level::Avx2 => "avx2",
    }
}

/// Times of one inference over the timed runs.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Timing {
    pub(super) runs: usize,
    pub(super) median_us: f64,
    pub(super) min_us: f64,
    pub(super) p10_us: f64,
    pub(super) p90_us: f64,
}

/// Runs `f` `warmup` times, then `runs` times timing each call.
pub(super) fn measure(
    warmup: u32,
    runs: u32,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() - 1) as f64 * q).round() as usize;
        times[i].as_secs_f64() * 1e6
    };
    Ok(Timing {
        runs: times.len(),
        median_us: at(0.5),
        min_us: at(0.0),
        p10_us: at(0.1),
        p90_us: at(0.9),
    })
}

/// A duration in microseconds, written with a fitting unit.
pub(super) fn human(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.3} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.3} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    onnx: Option<String>,
    release_build: bool,
    /// The engine's kernel level during the run (`portable`, `sse2`, `avx2`).
    simd: &'static str,
    warmup: u32,
    firmware: Timing,
    tract: Option<Timing>,
    /// Median firmware time over median tract time.
    ratio: Option<f64>,
}

/// Run `bench`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let model_path = args.model.display().to_string();
    let bytes = std::fs::read(&args.model).with_context(|| model_path.clone())?;
    let mut firmware = FirmwareModel::new(&bytes).with_context(|| model_path.clone())?;
    let samples = super::validate::random_samples(firmware.inputs(), 1, 0);
    let sample = samples.sample(0);

    let reference = match &args.onnx {
        Some(path) => Some(super::validate::load_reference(path, firmware.inputs())?),
        None => None,
    };
    if let Some(level) = args.simd {
        simd::set_limit(level.into());
    }
    let level = simd::active();
    if args.simd.is_some_and(|l| simd::Level::from(l) != level) {
        eprintln!(
            "note: this CPU offers the engine at most the {} level",
            level_name(level)
        );
    }
    let mut outputs: Vec<Vec<f32>> = firmware
        .outputs()
        .iter()
        .map(|s| vec![0.0; s.shape.iter().product()])
        .collect();
    let firmware_timing = measure(args.warmup, args.runs, || {
        let mut views: Vec<&mut [f32]> = outputs.iter_mut().map(Vec::as_mut_slice).collect();
        Ok(firmware.run_slices(&sample, &mut views)?)
    })
    .with_context(|| format!("{model_path}: running the firmware engine"))?;

    let tract_timing = match (&reference, &args.onnx) {
        (Some(reference), Some(onnx)) => {
            let mut notes = Vec::new();
            let (pairs, _) = super::validate::pair_inputs(
                firmware.inputs(),
                reference.inputs(),
                None,
                &mut notes,
            )
            .with_context(|| format!("{model_path} and {}", onnx.display()))?;
            let inputs: Vec<_> = pairs
                .iter()
                .map(|&(fw, tr)| super::validate::named(&reference.inputs()[tr], sample[fw]))
                .collect();
            let mut run = reference.runner(&inputs)?;
            Some(measure(args.warmup, args.runs, || Ok(run()?))?)
        }
        _ => None,
    };
    let ratio = tract_timing
        .as_ref()
        .map(|t| firmware_timing.median_us / t.median_us);
    let report = Report {
        model: model_path,
        onnx: args.onnx.as_ref().map(|p| p.display().to_string()),
        release_build: !cfg!(debug_assertions),
        simd: level_name(level),
        warmup: args.warmup,
        firmware: firmware_timing,
        tract: tract_timing,
        ratio,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Report) {
    if !r.release_build {
        println!(
            "note: this is a debug build of nnblob; build with --release for meaningful figures"
        );
    }
    println!(
        "{}: one inference, {} timed runs after {} warm-up runs",
        r.model, r.firmware.runs, r.warmup
    );
    println!();
    let engine = format!("firmware engine ({})", r.simd);
    let mut rows = vec![(engine.as_str(), &r.firmware)];
    if let Some(t) = &r.tract {
        rows.push(("tract (optimized)", t));
    }
    println!(
        "{:<24}  {:>11}  {:>11}  {:>11}  {:>11}",
        "engine", "median", "min", "p10", "p90"
    );
    for (name, t) in rows {
        println!(
            "{name:<24}  {:>11}  {:>11}  {:>11}  {:>11}",
            human(t.median_us),
            human(t.min_us),
            human(t.p10_us),
            human(t.p90_us)
        );
    }
    if let Some(ratio) = r.ratio {
        println!();
        println!("ratio firmware engine / tract (medians): {ratio:.2}x");
    }
}
