//! `nnblob validate`: a blob and an ONNX reference in, per-output error metrics and a verdict out.
//!
//! The firmware engine runs the blob on the host (the device's bits) and tract runs the ONNX
//! (optimized), on the same inputs: `.npy` files or seeded N(0,1) samples. Inputs and outputs are
//! paired by name when both sides have the same names, otherwise by position when the counts
//! agree (`--match` forces one), and the input shapes checked before anything runs. Exit code
//! 0 when every output is within its tolerances, 1 when one is not, 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context};
use serde::Serialize;

use crate::graph::random::Rng;
use crate::npy::{self, Array};
use crate::validate::{
    compare_outputs, pair, render_table, stacked_shape, FirmwareModel, NamedTensor, OutputKind,
    OutputReport, Pairing, ReferenceError, ReferenceModel, TensorSpec, Tolerances,
};
use nnblob_firmware::WeightDtype;

const EXAMPLES: &str = "\
Examples:
  nnblob validate resnet8.nnb --onnx resnet8.onnx
      8 random N(0,1) inputs (seed 0), tolerances for the blob's weight dtype
  nnblob validate resnet8.nnb --onnx resnet8.onnx --input inputs.npy
      every sample of a stacked (K, 3, 32, 32) set, run one by one
  nnblob validate ae.nnb --onnx ae.onnx --random 100 --seed 7 --classes none --json
  nnblob validate net.nnb --onnx net.onnx --cosine-min 0.999 --max-rel off

The reference: torch.onnx.export of your model, or `nnblob export-onnx` of the same checkpoint.

Pairing: inputs and outputs pair by name when the blob and the ONNX file have the same names,
otherwise by position when their counts agree (a blob's `b, a` against torch.onnx.export's
`output0, output1`), as the report says; --match name|position forces one.

Inputs: one .npy per model input, in the blob's order (`nnblob inspect MODEL.nnb`), float32 or
float64. For a model input of shape [1, 3, 32, 32], a file of shape (3, 32, 32) or (1, 3, 32, 32)
is one sample and (K, 3, 32, 32) is K samples; all files must hold the same number of samples.

Metrics per output (tested = firmware engine, reference = tract), over all samples:
max abs error (and where), mean abs error, RMSE, L2-relative error, max relative error (the worst
error over the reference's largest magnitude), cosine similarity, top-1 agreement (classification
outputs: --classes auto takes an output of shape (1, C), C >= 2, for a classifier unless it has an
input's size, as an autoencoder's reconstruction does).

Default tolerances (docs/ACCURACY.md says why):
  fp16 weights: cosine similarity >= 0.9999 and top-1 identical
  f32 weights:  max relative error <= 1e-5 and top-1 identical
NaN or infinity in either output always fails.";

/// Whether a check is on (with its limit) or off.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Limit(Option<f64>);

fn parse_limit(text: &str) -> Result<Limit, String> {
    if text == "off" {
        return Ok(Limit(None));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Limit(Some(v))),
        _ => Err(format!("'{text}' is neither a number nor 'off'")),
    }
}

/// What top-1 agreement must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Top1Rule {
    /// Every row of a classification output has the reference's class.
    Identical,
    /// At least 99 % of the rows have the reference's class (int8's default).
    Rate99,
    /// Top-1 agreement is reported, not judged.
    Ignore,
}

/// How `--match` pairs inputs and outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum MatchRule {
    /// By name: both sides must have the same names.
    Name,
    /// By position: both sides must have as many.
    Position,
}

impl MatchRule {
    pub(super) fn pairing(rule: Option<MatchRule>) -> Option<Pairing> {
        rule.map(|r| match r {
            MatchRule::Name => Pairing::Name,
            MatchRule::Position => Pairing::Position,
        })
    }
}

/// Compare a blob run by the firmware engine with an ONNX reference run by tract.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The blob written by `nnblob convert`.
    model: PathBuf,
    /// The reference ONNX file (`nnblob export-onnx`, or torch.onnx.export).
    #[arg(long, value_name = "REF.onnx")]
    onnx: PathBuf,
    /// An input .npy file; repeat for each model input, in the blob's order.
    #[arg(short, long = "input", value_name = "X.npy", conflicts_with = "random")]
    inputs: Vec<PathBuf>,
    /// Run N random N(0,1) samples instead of files [default when no --input: 8].
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Seed of the random samples.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Which outputs are classifications (top-1 checked): auto, none, or output names.
    #[arg(long, value_name = "auto|none|NAME", num_args = 1.., default_value = "auto")]
    classes: Vec<String>,
    /// Largest max relative error allowed, or `off` [default: 1e-5 for f32 weights, off for fp16].
    #[arg(long, value_name = "TOL|off", value_parser = parse_limit)]
    max_rel: Option<Limit>,
    /// Smallest cosine similarity allowed, or `off` [default: 0.9999 for fp16 weights, off for f32].
    #[arg(long, value_name = "MIN|off", value_parser = parse_limit)]
    cosine_min: Option<Limit>,
    /// Top-1 agreement rule for classification outputs [default: identical; for int8 blobs,
    /// at least 99 % of the rows].
    #[arg(long, value_enum)]
    top1: Option<Top1Rule>,
    /// Pair inputs and outputs by name or by position [default: by name when the names agree,
    /// otherwise by position].
    #[arg(long = "match", value_enum, value_name = "RULE")]
    match_rule: Option<MatchRule>,
    /// Print the report as one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// The report, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    model: String,
    onnx: String,
    weight_dtype: &'static str,
    /// Where the inputs came from.
    inputs: String,
    samples: usize,
    tolerances: Tolerances,
    /// How inputs and outputs were paired.
    inputs_paired_by: Pairing,
    outputs_paired_by: Pairing,
    /// Which blob input or output went with which ONNX one, when not by identical names.
    notes: Vec<String>,
    outputs: Vec<OutputReport>,
    passed: bool,
}

/// `f16` or `f32`, or `int8` for a quantized blob (whose f32 ops have `dtype` weights).
pub(super) fn dtype_name(dtype: WeightDtype, int8: bool) -> &'static str {
    match dtype {
        _ if int8 => "int8",
        WeightDtype::F16 => "f16",
        WeightDtype::F32 => "f32",
    }
}

/// Run `validate`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    let model_path = args.model.display().to_string();
    let bytes = std::fs::read(&args.model).with_context(|| model_path.clone())?;
    let mut firmware = FirmwareModel::new(&bytes).with_context(|| model_path.clone())?;
    let reference = load_reference(&args.onnx, firmware.inputs())?;
    let mut notes = Vec::new();
    let rule = MatchRule::pairing(args.match_rule);
    let (pairs, inputs_paired_by) =
        pair_inputs(firmware.inputs(), reference.inputs(), rule, &mut notes)
            .with_context(|| format!("{model_path} and {}", args.onnx.display()))?;

    let (samples, source) = if args.inputs.is_empty() {
        let n = args.random.unwrap_or(8);
        ensure!(n > 0, "--random needs at least one sample");
        (
            random_samples(firmware.inputs(), n, args.seed),
            format!("random N(0,1) values, seed {}", args.seed),
        )
    } else {
        let samples = file_samples(&args.inputs, firmware.inputs())?;
        let names: Vec<String> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (samples, names.join(", "))
    };

    let tested_specs = firmware.outputs().to_vec();
    let reference_specs = reference.outputs().to_vec();
    let stacked_inputs: Vec<&[f32]> = samples.per_input.iter().map(Vec::as_slice).collect();
    let tested = firmware
        .run_samples(&stacked_inputs, samples.count)
        .with_context(|| model_path.clone())?;
    let mut expected: Vec<Vec<f32>> = vec![Vec::new(); reference_specs.len()];
    for k in 0..samples.count {
        let sample = samples.sample(k);
        let ref_inputs: Vec<NamedTensor> = pairs
            .iter()
            .map(|&(fw_ix, ref_ix)| named(&reference.inputs()[ref_ix], sample[fw_ix]))
            .collect();
        let ref_out = reference
            .run(&ref_inputs)
            .with_context(|| format!("sample {k}"))?;
        for (acc, t) in expected.iter_mut().zip(ref_out) {
            acc.extend(t.array.data);
        }
    }
    let stack = |specs: &[TensorSpec], data: Vec<Vec<f32>>| -> Vec<NamedTensor> {
        specs
            .iter()
            .zip(data)
            .map(|(spec, data)| {
                NamedTensor::new(
                    spec.name.clone(),
                    Array {
                        shape: stacked_shape(samples.count, &spec.shape),
                        data,
                    },
                )
            })
            .collect()
    };
    let tested = stack(&tested_specs, tested);
    let expected = stack(&reference_specs, expected);

    let dtype = firmware.dtype();
    let int8 = firmware.is_quantized();
    let tolerances = tolerances(args, dtype, int8);
    let input_sizes: Vec<usize> = firmware
        .inputs()
        .iter()
        .map(|s| s.shape.iter().product())
        .collect();
    let kind_of = |name: &str| {
        let shape = tested_specs
            .iter()
            .chain(&reference_specs)
            .find(|s| s.name == name)
            .map(|s| s.shape.clone())
            .unwrap_or_default();
        output_kind(&args.classes, name, &shape, &input_sizes)
    };
    let (outputs, outputs_paired_by) =
        compare_outputs(&tested, &expected, rule, kind_of, &tolerances)
            .with_context(|| format!("{model_path} and {}", args.onnx.display()))?;
    for o in &outputs {
        if let Some(reference) = &o.reference {
            notes.push(format!(
                "blob output '{}' is compared with ONNX output '{reference}' (paired by position{})",
                o.metrics.name,
                if rule.is_some() { "" } else { ": the names differ" }
            ));
        }
    }
    let passed = outputs.iter().all(|o| o.verdict.passed());
    let report = Report {
        model: model_path,
        onnx: args.onnx.display().to_string(),
        weight_dtype: dtype_name(dtype, int8),
        inputs: source,
        samples: samples.count,
        tolerances,
        inputs_paired_by,
        outputs_paired_by,
        notes,
        outputs,
        passed,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILED)
    })
}

pub(super) fn named(spec: &TensorSpec, data: &[f32]) -> NamedTensor {
    NamedTensor::new(
        spec.name.clone(),
        Array {
            shape: spec.shape.clone(),
            data: data.to_vec(),
        },
    )
}

fn print_report(r: &Report) {
    println!(
        "{} (firmware engine, {} weights) against {} (tract)",
        r.model, r.weight_dtype, r.onnx
    );
    println!("inputs: {} sample(s) from {}", r.samples, r.inputs);
    for note in &r.notes {
        println!("note: {note}");
    }
    println!("tolerances: {}", describe(&r.tolerances));
    println!();
    print!("{}", render_table(&r.outputs));
    println!();
    if r.passed {
        println!("PASS: every output is within its tolerances");
    } else {
        let failed: Vec<&str> = r
            .outputs
            .iter()
            .filter(|o| !o.verdict.passed())
            .map(|o| o.metrics.name.as_str())
            .collect();
        println!("FAIL: {} outside its tolerances", failed.join(", "));
    }
}

/// The tolerances in words.
fn describe(t: &Tolerances) -> String {
    let mut checks = Vec::new();
    if let Some(limit) = t.max_relative_error {
        checks.push(format!("max relative error <= {limit:e}"));
    }
    if let Some(limit) = t.min_cosine_similarity {
        checks.push(format!("cosine similarity >= {limit}"));
    }
    match t.min_top1_agreement {
        Some(min) if min >= 1.0 => checks.push("top-1 identical (classification outputs)".into()),
        Some(min) => checks.push(format!(
            "top-1 identical on >= {:.0} % of the rows (classification outputs)",
            100.0 * min
        )),
        None => {}
    }
    checks.push("no NaN or infinity".into());
    checks.join(", ")
}

/// The dtype's defaults with the command line's overrides.
fn tolerances(args: &Args, dtype: WeightDtype, int8: bool) -> Tolerances {
    let mut t = match dtype {
        _ if int8 => Tolerances::int8(),
        WeightDtype::F16 => Tolerances::fp16(),
        WeightDtype::F32 => Tolerances::f32(),
    };
    if let Some(Limit(limit)) = args.max_rel {
        t.max_relative_error = limit;
    }
    if let Some(Limit(limit)) = args.cosine_min {
        t.min_cosine_similarity = limit;
    }
    match args.top1 {
        Some(Top1Rule::Identical) => t.min_top1_agreement = Some(1.0),
        Some(Top1Rule::Rate99) => t.min_top1_agreement = Some(0.99),
        Some(Top1Rule::Ignore) => t.min_top1_agreement = None,
        None => {}
    }
    t
}

/// Whether output `name` of shape `shape` is a classification, by the `--classes` rule.
fn output_kind(
    classes: &[String],
    name: &str,
    shape: &[usize],
    input_sizes: &[usize],
) -> OutputKind {
    let yes = match classes {
        [rule] if rule == "auto" => match shape {
            [1, c] => *c >= 2 && !input_sizes.contains(c),
            _ => false,
        },
        [rule] if rule == "none" => false,
        names => names.iter().any(|n| n == name),
    };
    if yes {
        OutputKind::Classification
    } else {
        OutputKind::Other
    }
}

/// Loads the ONNX file in tract; an input whose shape the file leaves symbolic (a dynamic batch
/// axis) takes the shape of the blob's input of the same name, or of the blob's only input.
pub(super) fn load_reference(
    path: &Path,
    blob_inputs: &[TensorSpec],
) -> anyhow::Result<ReferenceModel> {
    let mut given: Vec<TensorSpec> = Vec::new();
    loop {
        match ReferenceModel::load_with_input_shapes(path, &given) {
            Err(ReferenceError::UnknownInputShape { input, .. })
                if !given.iter().any(|g| g.name == input) =>
            {
                let from_blob = match blob_inputs {
                    [only] => only,
                    several => several.iter().find(|s| s.name == input).with_context(|| {
                        format!(
                            "{}: input '{input}' has a symbolic shape and the blob has no input of that name to take it from",
                            path.display()
                        )
                    })?,
                };
                given.push(TensorSpec {
                    name: input,
                    shape: from_blob.shape.clone(),
                });
            }
            other => return Ok(other?),
        }
    }
}

/// Pairs each blob input with an ONNX input ([`pair`]: by name, or by position when the names
/// differ and the counts agree, or as `rule` says), with a note per input paired by position
/// under another name; `(blob index, onnx index)` and how. The shapes must be equal.
pub(super) fn pair_inputs(
    blob: &[TensorSpec],
    onnx: &[TensorSpec],
    rule: Option<Pairing>,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<(usize, usize)>, Pairing)> {
    fn names(specs: &[TensorSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }
    let (pairs, how) = pair("inputs", &names(blob), &names(onnx), rule).map_err(|e| {
        let list = |specs: &[TensorSpec]| {
            specs
                .iter()
                .map(|s| format!("'{}' {:?}", s.name, s.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        anyhow::anyhow!(
            "{e} (the blob's: {}; the ONNX model's: {})",
            list(blob),
            list(onnx)
        )
    })?;
    for &(i, j) in &pairs {
        if blob[i].name != onnx[j].name {
            notes.push(format!(
                "blob input '{}' is fed to ONNX input '{}' (paired by position{})",
                blob[i].name,
                onnx[j].name,
                if rule.is_some() {
                    ""
                } else {
                    ": the names differ"
                }
            ));
        }
    }
    for &(i, j) in &pairs {
        ensure!(
            blob[i].shape == onnx[j].shape,
            "blob input '{}' has shape {:?}, ONNX input '{}' has shape {:?}",
            blob[i].name,
            blob[i].shape,
            onnx[j].name,
            onnx[j].shape
        );
    }
    Ok((pairs, how))
}

/// `count` samples of every model input, each flattened with the input's shape.
pub(super) struct Samples {
    pub(super) count: usize,
    /// Per input: `count` samples back to back.
    per_input: Vec<Vec<f32>>,
    /// Elements of one sample, per input.
    lens: Vec<usize>,
}

impl Samples {
    /// Sample `k` of every input, in the model's order.
    pub(super) fn sample(&self, k: usize) -> Vec<&[f32]> {
        self.per_input
            .iter()
            .zip(&self.lens)
            .map(|(data, &n)| &data[k * n..(k + 1) * n])
            .collect()
    }
}

/// `count` samples of N(0,1) values per input, from `seed` (Box-Muller over SplitMix64).
pub(super) fn random_samples(inputs: &[TensorSpec], count: usize, seed: u64) -> Samples {
    let mut rng = Rng::new(seed);
    let lens: Vec<usize> = inputs.iter().map(|s| s.shape.iter().product()).collect();
    let mut per_input: Vec<Vec<f32>> = lens
        .iter()
        .map(|&n| Vec::with_capacity(n * count))
        .collect();
    for _ in 0..count {
        for (data, &n) in per_input.iter_mut().zip(&lens) {
            data.extend((0..n).map(|_| {
                let u1 = 1.0 - rng.uniform(0.0, 1.0) as f64;
                let u2 = rng.uniform(0.0, 1.0) as f64;
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            }));
        }
    }
    Samples {
        count,
        per_input,
        lens,
    }
}

/// Reads one `.npy` per model input and checks they hold the same number of samples.
fn file_samples(files: &[PathBuf], inputs: &[TensorSpec]) -> anyhow::Result<Samples> {
    if files.len() != inputs.len() {
        bail!(
            "the blob has {} input(s) ({}), {} --input given",
            inputs.len(),
            inputs
                .iter()
                .map(|s| format!("'{}' {:?}", s.name, s.shape))
                .collect::<Vec<_>>()
                .join(", "),
            files.len()
        );
    }
    let mut count: Option<(usize, &Path)> = None;
    let mut per_input = Vec::new();
    for (file, spec) in files.iter().zip(inputs) {
        let array = npy::read_f32_lenient(file)?;
        let k = super::run::form(&array.shape, &spec.shape)
            .map(super::run::Form::samples)
            .with_context(|| {
                let rest = spec.shape.get(1..).unwrap_or_default();
                format!(
                    "{}: shape {:?} does not fit the blob's input '{}' of shape {:?}: give \
                     {rest:?} (one sample), {:?} (batch included) or (K, {}) for K samples",
                    file.display(),
                    array.shape,
                    spec.name,
                    spec.shape,
                    spec.shape,
                    rest.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        match count {
            Some((first, first_file)) if first != k => bail!(
                "{} holds {k} sample(s) but {} holds {first}: every input needs the same number",
                file.display(),
                first_file.display()
            ),
            _ => count = Some((k, file)),
        }
        per_input.push(array.data);
    }
    Ok(Samples {
        count: count.map_or(0, |(k, _)| k),
        per_input,
        lens: inputs.iter().map(|s| s.shape.iter().product()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_classes_skip_outputs_the_size_of_an_input() {
        let auto = ["auto".to_string()];
        assert_eq!(
            output_kind(&auto, "y", &[1, 10], &[1024]),
            OutputKind::Classification
        );
        assert_eq!(
            output_kind(&auto, "y", &[1, 640], &[640]),
            OutputKind::Other
        );
        assert_eq!(output_kind(&auto, "y", &[1, 1], &[4]), OutputKind::Other);
        assert_eq!(output_kind(&auto, "y", &[1, 4, 4], &[4]), OutputKind::Other);
        let named = ["y".to_string()];
        assert_eq!(
            output_kind(&named, "y", &[1, 640], &[640]),
            OutputKind::Classification
        );
        assert_eq!(output_kind(&named, "z", &[1, 10], &[4]), OutputKind::Other);
    }

    #[test]
    fn random_samples_are_standard_normal_and_seeded() {
        let spec = [TensorSpec {
            name: "x".into(),
            shape: vec![1, 1000],
        }];
        let a = random_samples(&spec, 10, 3);
        let values = &a.per_input[0];
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "mean {mean}, variance {var}"
        );
        assert_eq!(random_samples(&spec, 10, 3).per_input, a.per_input);
        assert_ne!(random_samples(&spec, 10, 4).per_input, a.per_input);
    }
}
