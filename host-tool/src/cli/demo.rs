//! `nnblob demo`: the whole pipeline on the handwritten-digits example, in one command.
//!
//! In: `examples/digits/` (the trained state_dict, its spec, the ONNX export PyTorch wrote, the
//! held-out test set, PyTorch's logits and recorded accuracy). Out: a table of accuracy per engine
//! (PyTorch as recorded, firmware engine with fp16 and with f32 weights, tract on the ONNX), their
//! top-1 agreement with PyTorch and with tract, the largest logit difference from PyTorch, blob and
//! arena sizes, and the time of one inference. The checkpoint is converted in-process; nothing is
//! written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use serde::Deserialize;

use crate::blob::{self, WeightDtype};
use crate::graph::summarize;
use crate::npy::{self, Array};
use crate::validate::metrics::argmax;
use crate::validate::{compare, FirmwareModel, OutputKind, ReferenceModel, Tolerances};

const EXAMPLES: &str = "\
Run from anywhere inside the nnblob repository:
  nnblob demo
or point at an examples directory (the one holding digits/):
  nnblob demo --examples path/to/nnblob/examples

What it does: reads examples/digits/digits.pth safely, binds it to digits.nnspec, compiles it
(Dropout removed, BatchNorm folded, ReLU fused, arena planned) into an fp16 and an f32 blob in
memory, runs the firmware engine on every held-out image, runs tract on digits.onnx (PyTorch's
export), and compares everything with PyTorch's recorded logits and accuracy.
Exit code 0 when every engine makes PyTorch's decision on every image and the f32 blob's logits
are within 1e-5 relative of PyTorch's, 1 otherwise.";

/// Convert the digits example, run it on the firmware engine and on tract, compare with PyTorch.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The examples directory (holding digits/) [default: found from the current directory up].
    #[arg(long, value_name = "DIR")]
    examples: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Metrics {
    torch_accuracy: f64,
    test_count: usize,
}

/// One engine's results on the test set.
struct Row {
    label: String,
    logits: Array<f32>,
    micros_per_inference: f64,
}

/// `examples/digits`, from `--examples` or searched from the current directory upwards.
fn find_digits(examples: Option<&Path>) -> anyhow::Result<PathBuf> {
    let marker = |dir: &Path| dir.join("digits.pth").is_file();
    if let Some(dir) = examples {
        for candidate in [dir.join("digits"), dir.to_path_buf()] {
            if marker(&candidate) {
                return Ok(candidate);
            }
        }
        bail!(
            "{} holds no digits/digits.pth: give the repository's examples directory",
            dir.display()
        );
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    // Relative to the current directory, so that messages show short paths.
    for (up, dir) in cwd.ancestors().enumerate() {
        if marker(&dir.join("examples/digits")) {
            let mut relative: PathBuf = std::iter::repeat_n("..", up).collect();
            relative.push("examples/digits");
            return Ok(relative);
        }
    }
    bail!(
        "cannot find examples/digits/ in {} or any directory above it: run `nnblob demo` from \
         inside the nnblob repository, or give `--examples PATH/TO/nnblob/examples`",
        cwd.display()
    )
}

/// Runs `run_one` on every row of `images`, timing the whole set.
fn run_set(
    images: &Array<f32>,
    label: &str,
    mut run_one: impl FnMut(&[f32], &mut Vec<f32>) -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    let n = images.rows();
    let bar = super::progress::bar(n, label);
    let mut data = Vec::with_capacity(n * 10);
    let start = Instant::now();
    for k in 0..n {
        let (_, row) = images.row(k).context("reading a test image")?;
        run_one(row, &mut data).with_context(|| format!("{label}: image {k}"))?;
        bar.inc(1);
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(Row {
        label: label.into(),
        logits: Array::new(vec![n, data.len() / n.max(1)], data)
            .context("the engine's outputs have inconsistent sizes")?,
        micros_per_inference: elapsed.as_secs_f64() * 1e6 / n.max(1) as f64,
    })
}

fn classes(logits: &Array<f32>) -> Vec<usize> {
    (0..logits.rows())
        .filter_map(|k| logits.row(k).map(|(_, r)| argmax(r)))
        .collect()
}

/// Run `demo`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = find_digits(args.examples.as_deref())?;
    let file = |name: &str| dir.join(name);
    let metrics: Metrics = serde_json::from_str(
        &std::fs::read_to_string(file("metrics.json"))
            .with_context(|| file("metrics.json").display().to_string())?,
    )
    .with_context(|| file("metrics.json").display().to_string())?;
    let images: Array<f32> = npy::read(&file("test_images.npy"))?;
    let labels: Array<i64> = npy::read(&file("test_labels.npy"))?;
    let torch: Array<f32> = npy::read(&file("torch_outputs.npy"))?;
    let n = metrics.test_count;
    ensure!(
        images.rows() == n && labels.shape == [n] && torch.shape == [n, 10],
        "{}: test_images {:?}, test_labels {:?} and torch_outputs {:?} disagree with test_count {n}",
        dir.display(),
        images.shape,
        labels.shape,
        torch.shape
    );

    // Convert, as `nnblob convert` does, once per weight dtype.
    let weights = file("digits.pth");
    let spec = file("digits.nnspec");
    let arch = spec.display().to_string();
    let graph = super::convert::load_arch(&arch)?;
    let params = summarize(&graph).total_params;
    let bound = super::convert::bind_checkpoint(graph, &weights, &arch, None, false)?;
    let sha = blob::sha256_file(&weights).with_context(|| weights.display().to_string())?;
    let fp16 = blob::build(bound.clone(), sha, WeightDtype::F16).context("compiling (fp16)")?;
    let f32_blob = blob::build(bound.clone(), sha, WeightDtype::F32).context("compiling (f32)")?;
    // int8, calibrated on training images (never the test set), as `convert --dtype int8` does.
    let calibration: Array<f32> = npy::read(&file("calibration.npy"))?;
    let input_shape = bound.shape(bound.inputs[0]).to_vec();
    let samples = crate::quant::calibrate::one_input_samples(&calibration, &input_shape);
    let calibration = blob::Calibration {
        samples: &samples,
        method: crate::quant::RangeMethod::MinMax,
    };
    let (int8, _, _) = blob::build_int8(bound, sha, WeightDtype::F16, &calibration, |_, _| {})
        .context("compiling (int8)")?;

    let mut rows = Vec::new();
    let engines = [
        ("firmware fp16", &fp16),
        ("firmware f32", &f32_blob),
        ("firmware int8", &int8),
    ];
    for (label, built) in engines {
        let mut engine = FirmwareModel::new(&built.bytes).context(label)?;
        let mut out = vec![0.0f32; engine.outputs()[0].shape.iter().product()];
        rows.push(run_set(&images, label, |image, data| {
            engine.run_slices(&[image], &mut [&mut out])?;
            data.extend_from_slice(&out);
            Ok(())
        })?);
    }
    let onnx = file("digits.onnx");
    let reference = ReferenceModel::load(&onnx)?;
    let input = reference.inputs()[0].clone();
    rows.push(run_set(&images, "tract (ONNX)", |image, data| {
        let tensor = crate::validate::NamedTensor::new(
            input.name.clone(),
            Array::new(input.shape.clone(), image.to_vec())
                .context("a test image does not fit the ONNX input")?,
        );
        let out = reference.run(&[tensor])?;
        data.extend(out.into_iter().flat_map(|t| t.array.data));
        Ok(())
    })?);

    // Compare.
    let torch_classes = classes(&torch);
    let tract_classes = classes(&rows[3].logits);
    let label_of: Vec<Option<usize>> = labels
        .data
        .iter()
        .map(|&l| usize::try_from(l).ok())
        .collect();
    let correct = |c: &[usize]| {
        c.iter()
            .zip(&label_of)
            .filter(|(c, l)| Some(**c) == **l)
            .count()
    };
    let torch_correct = (metrics.torch_accuracy * n as f64).round() as usize;
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let same = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x == y).count();

    println!(
        "digits demo: {} held-out 8x8 images, {} parameters, checkpoint {}",
        n,
        params,
        weights.display()
    );
    println!();
    println!(
        "{:<32}  {:>18}  {:>14}  {:>14}  {:>17}  {:>12}",
        "engine", "accuracy", "top-1 = torch", "top-1 = tract", "max |Δ| vs torch", "time/image"
    );
    println!(
        "{:<32}  {:>18}  {:>14}  {:>14}  {:>17}  {:>12}",
        "PyTorch (recorded at training)",
        format!(
            "{:.2}% ({torch_correct}/{n})",
            metrics.torch_accuracy * 100.0
        ),
        "-",
        format!("{}/{n}", same(&torch_classes, &tract_classes)),
        "-",
        "-"
    );
    let mut all_agree = true;
    let mut int8_agrees = true;
    let mut f32_within = true;
    for row in &rows {
        let c = classes(&row.logits);
        let k = correct(&c);
        let metrics = compare(
            "logits",
            &row.logits.shape,
            OutputKind::Classification,
            &row.logits.data,
            &torch.data,
        )?;
        let agree = same(&c, &torch_classes);
        if row.label == "firmware int8" {
            // int8 rounds every layer to 1/255 of its range: near-ties may flip (docs/ACCURACY.md).
            int8_agrees = agree as f64 >= 0.99 * n as f64;
        } else {
            all_agree &= agree == n;
        }
        if row.label == "firmware f32" {
            f32_within = Tolerances::f32().judge(&metrics).passed();
        }
        println!(
            "{:<32}  {:>18}  {:>14}  {:>14}  {:>17}  {:>12}",
            row.label,
            format!("{:.2}% ({k}/{n})", pct(k)),
            format!("{agree}/{n}"),
            format!("{}/{n}", same(&c, &tract_classes)),
            format!("{:.3e}", metrics.max_abs_error),
            super::bench::human(row.micros_per_inference)
        );
    }
    println!();
    let fp32_weight_bytes = 4 * params;
    for (label, built) in [("fp16", &fp16), ("f32", &f32_blob), ("int8", &int8)] {
        println!(
            "blob {label:<4}  {:>7} bytes ({:.3} x the {} bytes of fp32 weights)   arena {} bytes (lower bound {})",
            built.bytes.len(),
            built.bytes.len() as f64 / fp32_weight_bytes as f64,
            fp32_weight_bytes,
            built.plan.arena_bytes(),
            built.plan.lower_bound_bytes()
        );
    }
    if cfg!(debug_assertions) {
        println!(
            "note: a debug build of nnblob; times from a release build are several times shorter"
        );
    }
    println!();
    let passed = all_agree && int8_agrees && f32_within;
    if passed {
        println!("the fp16 and f32 engines make PyTorch's decision on all {n} images, int8 on at least 99%; the f32 blob's logits are within 1e-5 relative of PyTorch's");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "MISMATCH: {}{}{}",
            if all_agree {
                ""
            } else {
                "an engine's top-1 differs from PyTorch's on some image; "
            },
            if int8_agrees {
                ""
            } else {
                "int8 keeps PyTorch's decision on fewer than 99% of the images; "
            },
            if f32_within {
                ""
            } else {
                "the f32 blob's logits are beyond 1e-5 relative of PyTorch's"
            }
        );
        Ok(ExitCode::from(super::EXIT_FAILED))
    }
}
