//! The accuracy suite's shared code: locating fixtures, running each engine, and tabulating the result.
//!
//! In: the fixtures under `tests/fixtures/models/` (discovered from the folders: every one that has a
//! `model.onnx`, plus the torchvision sets in `tests/fixtures/local/` when generated) and the digits
//! demo in `examples/digits/`. Out: one [`ModelRecord`] per model with one [`Column`] per
//! [`Engine`] — each engine's outputs compared with PyTorch's float32 and float64 outputs — and a
//! markdown table of them for `docs/ACCURACY.md`.
//!
//! An engine is a column: tract on PyTorch's ONNX export, and the firmware engine on the blobs
//! `nnblob::blob::build` makes from the fixture's `state_dict.pth` bound to the catalog entry of
//! the same name (fp16 and f32 weights), each reference input run alone as a batch of one.
//!
//! fp16 top-1 rule: a row where the fp16 blob's class differs from PyTorch's is excluded from the
//! top-1 check (and listed) when PyTorch's own margin between its two largest outputs on that row
//! is at most [`FP16_NEAR_TIE`] times the row's largest magnitude: half-precision weights keep 11
//! significant bits (4.9e-4 relative), so outputs carry errors of that order and may legitimately
//! flip such a near-tie. Any other disagreement fails.
//!
//! [`qemu`] runs the example firmware on emulated boards for the device tests; [`capi`] has what
//! the tests of C programs share.

pub mod capi;
pub mod qemu;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::Deserialize;

use nnblob::blob::{self, WeightDtype};
use nnblob::checkpoint::{self, Options};
use nnblob::graph::{bind, catalog, parse_spec, Graph};
use nnblob::npy::{self, Array};
use nnblob::validate::metrics::{argmax, Failure};
use nnblob::validate::{
    compare, FirmwareModel, OutputKind, OutputMetrics, OutputReport, ReferenceModel, Tolerances,
};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// `tests/fixtures/models/`: one folder per catalog model.
pub fn models_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/models")
}

/// `tests/fixtures/local/`: the large torchvision reference sets, generated on demand, never committed.
pub fn local_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/local")
}

/// `examples/digits/`: the demo model and its held-out test set.
pub fn digits_dir() -> PathBuf {
    workspace_root().join("examples/digits")
}

/// The command that generates the local reference sets.
pub const LOCAL_FIXTURES_COMMAND: &str = "python3 tests/fixtures/make_model_fixtures.py --local";

/// The part of a fixture's `manifest.json` the suite reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Catalog name.
    pub name: String,
    /// The network's inputs (batch 1).
    pub inputs: Vec<ManifestTensor>,
    /// The network's outputs (batch 1).
    pub outputs: Vec<ManifestTensor>,
    /// Present where the reference files exist.
    pub reference: Option<ManifestReference>,
}

/// One input or output in a manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestTensor {
    /// The ONNX name.
    pub name: String,
    /// Shape without the batch axis.
    pub sample_shape: Vec<usize>,
}

/// The reference section of a manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestReference {
    /// Number of reference inputs.
    pub count: usize,
    /// Top-1 class per input, for classifiers only.
    pub top1: Option<Vec<usize>>,
    /// Gap between the two largest outputs per input, for classifiers only.
    pub top1_margin: Option<Vec<f64>>,
}

impl Manifest {
    /// Reads and parses `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Classifiers record a top-1 per input; top-1 agreement is checked only for them.
    pub fn output_kind(&self) -> OutputKind {
        match self.reference.as_ref().and_then(|r| r.top1.as_ref()) {
            Some(_) => OutputKind::Classification,
            None => OutputKind::Other,
        }
    }
}

/// Where a catalog model's reference set is, or why there is none.
#[derive(Debug, Clone)]
pub enum FixtureLocation {
    /// Committed in `tests/fixtures/models/<name>/`.
    Committed(PathBuf),
    /// Generated in `tests/fixtures/local/<name>/`.
    Local(PathBuf),
    /// Only a manifest is committed and the local set has not been generated.
    Absent { name: String },
}

/// Every catalog model folder, sorted by name, with where its reference set is.
pub fn discover_models() -> Result<Vec<FixtureLocation>> {
    let dir = models_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("manifest.json").is_file())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let committed = dir.join(&name);
            let local = local_dir().join(&name);
            if committed.join("model.onnx").is_file() {
                FixtureLocation::Committed(committed)
            } else if local.join("model.onnx").is_file() {
                FixtureLocation::Local(local)
            } else {
                FixtureLocation::Absent { name }
            }
        })
        .collect())
}

impl FixtureLocation {
    /// The model's catalog name.
    pub fn name(&self) -> String {
        match self {
            FixtureLocation::Committed(dir) | FixtureLocation::Local(dir) => dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string(),
            FixtureLocation::Absent { name } => name.clone(),
        }
    }

    /// The line printed for a model whose reference set is absent.
    pub fn skip_line(&self) -> Option<String> {
        match self {
            FixtureLocation::Absent { name } => Some(format!(
                "skipped: {name} (no reference set in tests/fixtures/local/{name}/; generate with {LOCAL_FIXTURES_COMMAND})"
            )),
            _ => None,
        }
    }
}

/// A model's reference set loaded into memory.
#[derive(Debug, Clone)]
pub struct ModelFixture {
    /// The folder holding it.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// `(K, *input_sample_shape)`: row k is fed as a batch of one.
    pub inputs: Array<f32>,
    /// `(K, *output_sample_shape)`: PyTorch float32.
    pub torch_f32: Array<f32>,
    /// `(K, *output_sample_shape)`: PyTorch float64.
    pub torch_f64: Array<f64>,
}

impl ModelFixture {
    /// Loads the manifest and `.npy` files from `dir`, checking their shapes against the manifest.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        ensure!(
            manifest.inputs.len() == 1 && manifest.outputs.len() == 1,
            "{}: the suite handles one input and one output, the manifest lists {} and {}",
            dir.display(),
            manifest.inputs.len(),
            manifest.outputs.len()
        );
        let inputs: Array<f32> = npy::read(&dir.join("inputs.npy"))?;
        let torch_f32: Array<f32> = npy::read(&dir.join("outputs.npy"))?;
        let torch_f64: Array<f64> = npy::read(&dir.join("outputs_f64.npy"))?;
        let rows = inputs.rows();
        let expect = |what: &str, shape: &[usize], sample: &[usize]| -> Result<()> {
            let expected: Vec<usize> = std::iter::once(rows)
                .chain(sample.iter().copied())
                .collect();
            ensure!(
                shape == expected.as_slice(),
                "{}: {what} has shape {shape:?}, the manifest says {expected:?}",
                dir.display()
            );
            Ok(())
        };
        expect(
            "inputs.npy",
            &inputs.shape,
            &manifest.inputs[0].sample_shape,
        )?;
        expect(
            "outputs.npy",
            &torch_f32.shape,
            &manifest.outputs[0].sample_shape,
        )?;
        expect(
            "outputs_f64.npy",
            &torch_f64.shape,
            &manifest.outputs[0].sample_shape,
        )?;
        if let Some(reference) = &manifest.reference {
            ensure!(
                reference.count == rows,
                "{}: {rows} inputs, the manifest says {}",
                dir.display(),
                reference.count
            );
        }
        Ok(ModelFixture {
            dir: dir.to_path_buf(),
            manifest,
            inputs,
            torch_f32,
            torch_f64,
        })
    }

    /// The catalog name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}

/// An engine that computes a model's outputs: one column of the accuracy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// tract on the ONNX export PyTorch wrote.
    Tract,
    /// The firmware engine on an fp16-weight blob.
    FirmwareFp16,
    /// The firmware engine on an f32-weight blob.
    FirmwareF32,
}

impl Engine {
    /// Every engine, in table order.
    pub const ALL: [Engine; 3] = [Engine::Tract, Engine::FirmwareFp16, Engine::FirmwareF32];

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Engine::Tract => "tract (ONNX)",
            Engine::FirmwareFp16 => "firmware fp16",
            Engine::FirmwareF32 => "firmware f32",
        }
    }

    /// The tolerances the engine is held to against PyTorch.
    pub fn tolerances(self) -> Tolerances {
        match self {
            Engine::Tract | Engine::FirmwareF32 => Tolerances::f32(),
            Engine::FirmwareFp16 => Tolerances::fp16(),
        }
    }

    /// The blob weight dtype of a firmware engine.
    pub fn weight_dtype(self) -> Option<WeightDtype> {
        match self {
            Engine::Tract => None,
            Engine::FirmwareFp16 => Some(WeightDtype::F16),
            Engine::FirmwareF32 => Some(WeightDtype::F32),
        }
    }

    /// Runs the engine on every fixture input, giving `(K, *output_sample_shape)`, or `Ok(None)`
    /// when the engine cannot run this fixture.
    pub fn run(self, fixture: &ModelFixture) -> Result<Option<Array<f32>>> {
        match self.weight_dtype() {
            None => run_tract(fixture).map(Some),
            Some(dtype) => {
                let graph = catalog::graph(fixture.name())?;
                run_firmware(
                    graph,
                    &fixture.dir.join("state_dict.pth"),
                    dtype,
                    &fixture.inputs,
                )
                .map(Some)
            }
        }
    }
}

/// Binds the checkpoint at `weights` to `graph`, builds a blob of `dtype` and runs the firmware
/// engine on each row of `inputs` as a batch of one.
pub fn run_firmware(
    graph: Graph,
    weights: &Path,
    dtype: WeightDtype,
    inputs: &Array<f32>,
) -> Result<Array<f32>> {
    let ckpt = checkpoint::open(weights, &Options::default())
        .with_context(|| weights.display().to_string())?;
    let bound = bind(graph, blob::state_dict(&ckpt))?;
    drop(ckpt);
    let sha = blob::sha256_file(weights)?;
    let built = blob::build(bound, sha, dtype)?;
    Ok(FirmwareModel::new(&built.bytes)?.run_each_row(inputs)?)
}

/// The largest reference margin, relative to the row's largest magnitude, at which an fp16 top-1
/// flip is excused: about twice half precision's relative rounding (2^-11).
pub const FP16_NEAR_TIE: f64 = 1e-3;

/// The fp16 top-1 rule (see the module doc): drops the top-1 failure when every disagreeing row
/// is a near-tie of `reference` (row-major, the last axis holding the classes), and returns those
/// rows with their margins.
pub fn excuse_fp16_near_ties(report: &mut OutputReport, reference: &[f64]) -> Vec<(usize, f64)> {
    let Some(top1) = &report.metrics.top1 else {
        return Vec::new();
    };
    let classes = report.metrics.shape.last().copied().unwrap_or(1).max(1);
    let row_scale = |row: usize| {
        reference
            .get(row * classes..(row + 1) * classes)
            .unwrap_or_default()
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
    };
    let disagreeing = top1.rows - top1.agreeing;
    let near_ties: Vec<(usize, f64)> = top1
        .disagreements
        .iter()
        .filter(|d| d.reference_margin <= FP16_NEAR_TIE * row_scale(d.row))
        .map(|d| (d.row, d.reference_margin))
        .collect();
    if disagreeing == 0 || near_ties.len() != disagreeing {
        return Vec::new();
    }
    report
        .verdict
        .failures
        .retain(|f| !matches!(f, Failure::Top1 { .. }));
    near_ties
}

/// Runs tract on each row of the fixture's inputs as a batch of one and stacks the outputs.
pub fn run_tract(fixture: &ModelFixture) -> Result<Array<f32>> {
    let onnx = fixture.dir.join("model.onnx");
    Ok(ReferenceModel::load(&onnx)?.run_each_row(&fixture.inputs)?)
}

/// One engine's result on one model.
#[derive(Debug, Clone)]
pub enum Column {
    /// Measured: against PyTorch float32 (judged) and float64 (judged with the same tolerances).
    Measured {
        vs_torch_f32: Box<OutputReport>,
        vs_torch_f64: Box<OutputReport>,
        /// Rows excluded from top-1 by the fp16 rule, with PyTorch's margin on each.
        top1_excluded: Vec<(usize, f64)>,
    },
    /// The engine cannot run this model yet.
    Pending,
}

impl Column {
    /// Whether the column is measured and both comparisons pass.
    pub fn passed(&self) -> Option<bool> {
        match self {
            Column::Measured {
                vs_torch_f32,
                vs_torch_f64,
                ..
            } => Some(vs_torch_f32.verdict.passed() && vs_torch_f64.verdict.passed()),
            Column::Pending => None,
        }
    }
}

/// A model's row of the accuracy table: one column per engine, in [`Engine::ALL`] order.
#[derive(Debug, Clone)]
pub struct ModelRecord {
    /// Catalog name.
    pub name: String,
    /// Output kind (whether top-1 is checked).
    pub kind: OutputKind,
    /// Smallest top-1 margin of PyTorch's outputs over the inputs, for classifiers.
    pub min_top1_margin: Option<f64>,
    /// `(engine, result)`.
    pub columns: Vec<(Engine, Column)>,
}

/// Runs every engine on a fixture and compares each with PyTorch.
pub fn evaluate(fixture: &ModelFixture) -> Result<ModelRecord> {
    let kind = fixture.manifest.output_kind();
    let output_name = &fixture.manifest.outputs[0].name;
    let mut columns = Vec::new();
    for engine in Engine::ALL {
        let column = match engine
            .run(fixture)
            .with_context(|| format!("{}: {}", fixture.name(), engine.label()))?
        {
            None => Column::Pending,
            Some(outputs) => {
                let tolerances = engine.tolerances();
                let judge = |metrics: OutputMetrics| OutputReport::new(metrics, &tolerances);
                let shape = &fixture.torch_f32.shape;
                ensure!(
                    outputs.shape == *shape,
                    "{}: {} gives shape {:?}, PyTorch {:?}",
                    fixture.name(),
                    engine.label(),
                    outputs.shape,
                    shape
                );
                let vs_f32 = compare(
                    output_name,
                    shape,
                    kind,
                    &outputs.data,
                    &fixture.torch_f32.data,
                )?;
                let vs_f64 = compare(
                    output_name,
                    shape,
                    kind,
                    &outputs.data,
                    &fixture.torch_f64.data,
                )?;
                let (mut vs_f32, mut vs_f64) = (judge(vs_f32), judge(vs_f64));
                let top1_excluded = if engine == Engine::FirmwareFp16 {
                    excuse_fp16_near_ties(&mut vs_f64, &fixture.torch_f64.data);
                    let torch_f32: Vec<f64> =
                        fixture.torch_f32.data.iter().map(|&v| v as f64).collect();
                    excuse_fp16_near_ties(&mut vs_f32, &torch_f32)
                } else {
                    Vec::new()
                };
                Column::Measured {
                    vs_torch_f32: Box::new(vs_f32),
                    vs_torch_f64: Box::new(vs_f64),
                    top1_excluded,
                }
            }
        };
        columns.push((engine, column));
    }
    let min_top1_margin = fixture
        .manifest
        .reference
        .as_ref()
        .and_then(|r| r.top1_margin.as_ref())
        .and_then(|m| m.iter().copied().reduce(f64::min));
    Ok(ModelRecord {
        name: fixture.name().to_string(),
        kind,
        min_top1_margin,
        columns,
    })
}

/// The digits demo's fixture: the held-out test set and PyTorch's results on it.
#[derive(Debug, Clone)]
pub struct DigitsFixture {
    /// The ONNX export.
    pub onnx: PathBuf,
    /// The trained state_dict.
    pub weights: PathBuf,
    /// Its spec.
    pub spec: PathBuf,
    /// `(N, 1, 8, 8)` images.
    pub images: Array<f32>,
    /// `(N,)` labels 0..9.
    pub labels: Array<i64>,
    /// `(N, 10)` PyTorch logits.
    pub torch_outputs: Array<f32>,
    /// PyTorch's accuracy recorded at training time.
    pub torch_accuracy: f64,
}

#[derive(Deserialize)]
struct DigitsMetrics {
    torch_accuracy: f64,
    test_count: usize,
}

impl DigitsFixture {
    /// Loads `examples/digits/`, checking the counts agree.
    pub fn load() -> Result<Self> {
        let dir = digits_dir();
        let metrics_path = dir.join("metrics.json");
        let metrics: DigitsMetrics = serde_json::from_str(
            &fs::read_to_string(&metrics_path)
                .with_context(|| format!("reading {}", metrics_path.display()))?,
        )
        .with_context(|| format!("parsing {}", metrics_path.display()))?;
        let images: Array<f32> = npy::read(&dir.join("test_images.npy"))?;
        let labels: Array<i64> = npy::read(&dir.join("test_labels.npy"))?;
        let torch_outputs: Array<f32> = npy::read(&dir.join("torch_outputs.npy"))?;
        let n = metrics.test_count;
        ensure!(
            images.rows() == n && labels.shape == [n] && torch_outputs.shape == [n, 10],
            "examples/digits: shapes {:?}, {:?}, {:?} disagree with test_count {n}",
            images.shape,
            labels.shape,
            torch_outputs.shape
        );
        Ok(DigitsFixture {
            onnx: dir.join("digits.onnx"),
            weights: dir.join("digits.pth"),
            spec: dir.join("digits.nnspec"),
            images,
            labels,
            torch_outputs,
            torch_accuracy: metrics.torch_accuracy,
        })
    }
}

/// An engine's result on the digits test set.
#[derive(Debug, Clone)]
pub struct DigitsRecord {
    /// Test images.
    pub count: usize,
    /// Correctly classified images.
    pub correct: usize,
    /// Images whose argmax equals PyTorch's.
    pub agreeing_with_torch: usize,
    /// The logits compared with PyTorch's (f32 tolerances).
    pub vs_torch: OutputReport,
}

impl DigitsRecord {
    /// `correct / count`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count as f64
    }
}

/// Runs `engine` on every digits test image and compares with PyTorch's logits.
pub fn evaluate_digits(fixture: &DigitsFixture, engine: Engine) -> Result<DigitsRecord> {
    let logits = match engine.weight_dtype() {
        None => ReferenceModel::load(&fixture.onnx)?.run_each_row(&fixture.images)?,
        Some(dtype) => {
            let text = fs::read_to_string(&fixture.spec)
                .with_context(|| fixture.spec.display().to_string())?;
            let graph = parse_spec(&text, &fixture.spec.display().to_string(), "digits")?;
            run_firmware(graph, &fixture.weights, dtype, &fixture.images)?
        }
    };
    let metrics = compare(
        "output",
        &logits.shape,
        OutputKind::Classification,
        &logits.data,
        &fixture.torch_outputs.data,
    )?;
    let agreeing_with_torch = metrics.top1.as_ref().map_or(0, |t| t.agreeing);
    let correct = logits
        .data
        .chunks_exact(10)
        .zip(&fixture.labels.data)
        .filter(|(row, &label)| usize::try_from(label).ok() == Some(argmax(row)))
        .count();
    Ok(DigitsRecord {
        count: fixture.labels.data.len(),
        correct,
        agreeing_with_torch,
        vs_torch: OutputReport::new(metrics, &engine.tolerances()),
    })
}

/// The command that prints the table below (written above it in `docs/ACCURACY.md`).
pub const TABLE_COMMAND: &str = "cargo run -p nnblob-tests --bin accuracy-table";

/// The markdown tables of `docs/ACCURACY.md`: per model and engine, the errors against PyTorch.
pub fn render_markdown(
    records: &[ModelRecord],
    skipped: &[String],
    digits: &[(Engine, DigitsRecord)],
    digits_torch_accuracy: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| model | engine | max abs vs torch f32 | max rel vs f32 | L2R vs f32 | 1 − cosine vs f32 | max abs vs torch f64 | max rel vs f64 | top-1 | min torch margin | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for record in records {
        for (engine, column) in &record.columns {
            let margin = record
                .min_top1_margin
                .map_or_else(|| "-".to_string(), |m| format!("{m:.3e}"));
            match column {
                Column::Pending => {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | pending | | | | | | | {margin} | pending |",
                        record.name,
                        engine.label()
                    );
                }
                Column::Measured {
                    vs_torch_f32,
                    vs_torch_f64,
                    top1_excluded,
                } => {
                    let m32 = &vs_torch_f32.metrics;
                    let m64 = &vs_torch_f64.metrics;
                    let mut top1 = m32
                        .top1
                        .as_ref()
                        .map_or_else(|| "-".to_string(), |t| format!("{}/{}", t.agreeing, t.rows));
                    if !top1_excluded.is_empty() {
                        let rows: Vec<String> = top1_excluded
                            .iter()
                            .map(|(row, margin)| format!("row {row}, torch margin {margin:.1e}"))
                            .collect();
                        top1 += &format!(" (near-tie excluded: {})", rows.join("; "));
                    }
                    let verdict = if column.passed() == Some(true) {
                        "pass"
                    } else {
                        "FAIL"
                    };
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {:.3e} | {:.3e} | {:.3e} | {:.1e} | {:.3e} | {:.3e} | {top1} | {margin} | {verdict} |",
                        record.name,
                        engine.label(),
                        m32.max_abs_error,
                        m32.max_relative_error,
                        m32.l2_relative_error,
                        1.0 - m32.cosine_similarity,
                        m64.max_abs_error,
                        m64.max_relative_error,
                    );
                }
            }
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(out);
        for line in skipped {
            let _ = writeln!(out, "- {line}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| digits demo (held-out set) | accuracy | top-1 agreement with torch | max abs vs torch logits | verdict |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| PyTorch (recorded at training) | {:.2}% | - | - | - |",
        digits_torch_accuracy * 100.0
    );
    for (engine, d) in digits {
        let _ = writeln!(
            out,
            "| {} | {:.2}% ({}/{}) | {}/{} | {:.3e} | {} |",
            engine.label(),
            d.accuracy() * 100.0,
            d.correct,
            d.count,
            d.agreeing_with_torch,
            d.count,
            d.vs_torch.metrics.max_abs_error,
            if d.vs_torch.verdict.passed() {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp16_report(actual: &[f32], reference: &[f64]) -> OutputReport {
        let metrics = compare("y", &[2, 3], OutputKind::Classification, actual, reference).unwrap();
        OutputReport::new(metrics, &Tolerances::fp16())
    }

    /// Hand-made rows: a flip on a margin of 1e-5 of a row whose largest value is 1 is a near-tie
    /// (1e-5 <= 1e-3 x 1); a flip on a margin of 0.1 is not.
    #[test]
    fn only_near_ties_are_excused() {
        let reference = [0.0, 0.99999, 1.0, 0.0, 1.0, 2.0];
        let mut near = fp16_report(&[0.0, 1.0, 0.99999, 0.0, 1.0, 2.0], &reference);
        assert!(!near.verdict.passed());
        assert_eq!(excuse_fp16_near_ties(&mut near, &reference).len(), 1);
        assert!(near.verdict.passed(), "{:?}", near.verdict);

        let reference = [0.0, 0.9, 1.0, 0.0, 1.0, 2.0];
        let mut far = fp16_report(&[0.0, 1.0, 0.9, 0.0, 1.0, 2.0], &reference);
        assert!(excuse_fp16_near_ties(&mut far, &reference).is_empty());
        assert!(!far.verdict.passed());
    }
}
