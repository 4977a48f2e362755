//! `nnblob convert`: a checkpoint and an architecture in, a checked blob out, with the per-layer
//! report (name, op, output shape, params, MACs) and the totals (params, MACs, blob and arena bytes
//! against their references).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::blob::{self, Built, WeightDtype};
use crate::checkpoint::{self, Options};
use crate::graph::{
    bind, catalog, fmt_shape, numel, parse_spec, summarize, Graph, GraphError, Tensor,
};
use crate::{npy, pt2, quant};

const EXAMPLES: &str = "\
Examples:
  nnblob convert model.pt2
      a torch.export archive: structure and weights from the export, written to model.nnb
      (python: torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2'))
  nnblob convert retrained.pth --arch model.pt2 -o model.nnb
      structure from the export, weights from a state_dict of the same model
  nnblob convert resnet8.pth --arch resnet8 -o resnet8.nnb
      a catalog network (see `nnblob archs`), fp16 weights
  nnblob convert net.pth --arch net.nnspec -o net.nnb --dtype f32
      your own network, written as a spec file (docs/SPEC.md), f32 weights
  nnblob convert last.ckpt --arch mobilenet_v1_025 --key state_dict -o vww.nnb
      a state_dict nested in a training checkpoint
  nnblob convert mbv1.pth --arch mobilenet_v1_025 --input-shape 3,128,128 -o vww128.nnb
      the same weights for another input size (without the batch dimension)
  nnblob convert digits.pth --arch digits.nnspec --dtype int8 --calibrate train.npy -o d8.nnb
      int8 weights and activations, ranges calibrated on representative inputs
      (python: np.save('train.npy', np.stack([x.numpy() for x in some_training_inputs])))

What happens:
  1. the checkpoint is read safely (nothing in it is executed; a .pt2's graph is JSON and its
     weights raw, see docs/IMPORT.md);
  2. it is bound to the architecture strictly, like load_state_dict(strict=True): every missing,
     unexpected or mis-shaped key is reported at once;
  3. eval-mode passes: Dropout removed, BatchNorm folded into the conv/linear before it (in f64),
     activations fused; the activation arena is planned;
  4. with --dtype int8, the network is run on the calibration samples (f64 reference), each
     tensor's range chosen (--calibration), weights quantized per output channel and every op
     that has an int8 form given one; the others stay f32 (fp16 weights) between conversions,
     and the report lists them with the error each int8 layer has against the f32 network;
  5. the blob is written (fp16 weight matrices by default; biases and scales stay f32) with the
     checkpoint's SHA-256 and the passes as provenance, checked by the engine's own validator, and
     renamed into place: OUT is never left half-written.

The report lists the compiled layers (fused activations after '+'), then the totals: parameters as
PyTorch counts them, MACs, the blob against the fp32 weight bytes (4 x params), and the arena
against its lower bound (the largest total of tensors alive at once).";

/// The weight dtype of the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Dtype {
    /// IEEE binary16 weight matrices: half the flash, cosine >= 0.9999 on the catalog.
    F16,
    /// f32 weight matrices: the PyTorch outputs within 1e-5 relative.
    F32,
    /// int8 weights (per output channel) and activations (per tensor), calibrated with
    /// --calibrate: a quarter of the fp32 weights, a quarter of the f32 arena.
    Int8,
}

/// How each tensor's int8 range is chosen from the calibration run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Calibration {
    /// The extremes seen: nothing clips, but one outlier coarsens the scale for all values.
    Minmax,
    /// The central 99.99 % of the values seen: rare outliers clip.
    Percentile,
    /// The range (the extremes shrunk by up to 70 %) with the least mean-square error.
    Mse,
}

/// Convert a PyTorch state_dict to a blob the firmware engine runs.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The checkpoint: .pth/.pt/.bin (torch zip or legacy), .ckpt (Lightning), .safetensors, or
    /// a torch.export archive (.pt2), which brings its own architecture.
    weights: PathBuf,
    /// A catalog name (`nnblob archs` lists them), the path of a spec file, or a torch.export
    /// archive (.pt2) whose graph the weights are bound to. Not needed when WEIGHTS is a .pt2.
    #[arg(long, value_name = "A")]
    arch: Option<String>,
    /// Where to write the blob (default: WEIGHTS with the extension .nnb).
    #[arg(short, long, value_name = "OUT.nnb")]
    output: Option<PathBuf>,
    /// Weight dtype of the blob.
    #[arg(long, value_enum, default_value = "f16")]
    dtype: Dtype,
    /// Dotted key path of the state_dict inside a nested checkpoint (default: detected).
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Replace an input's shape, without the batch dimension: `3,64,64`, or `NAME=3,64,64` for a
    /// named input. Repeat for several inputs (in order when unnamed).
    #[arg(long, value_name = "[NAME=]D,D,..")]
    input_shape: Vec<String>,
    /// With --dtype int8: representative inputs, a float32 .npy of shape (K, ...) stacking K
    /// samples of the model's input (training data, never the test set).
    #[arg(long, value_name = "SAMPLES.npy")]
    calibrate: Option<PathBuf>,
    /// With --dtype int8: how each tensor's range is chosen from the calibration run.
    #[arg(long, value_enum, default_value = "minmax", value_name = "METHOD")]
    calibration: Calibration,
    /// Print the report as one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Fail on a warning about the checkpoint (a BatchNorm never run in train mode) instead of
    /// converting it.
    #[arg(long)]
    deny_warnings: bool,
}

/// Run `convert`.
pub fn exec(args: &Args) -> anyhow::Result<ExitCode> {
    match (args.dtype, &args.calibrate) {
        (Dtype::Int8, None) => bail!(
            "--dtype int8 needs --calibrate SAMPLES.npy: representative inputs to choose the \
             int8 ranges from (a float32 .npy of shape (K, ...), e.g. 100 training samples)"
        ),
        (Dtype::F16 | Dtype::F32, Some(_)) => {
            bail!("--calibrate is for --dtype int8 (f16 and f32 blobs need no calibration)")
        }
        _ => {}
    }
    let progress = super::progress::steps();
    progress.set_message(format!("reading {}", args.weights.display()));
    // A .pt2 brings its weights (and, without --arch, its architecture).
    let archive = if args.arch.is_none() || pt2::is_pt2_file(&args.weights) {
        match pt2::open(&args.weights) {
            Err(pt2::Error::NotPt2) => bail!(
                "{}: not a torch.export archive (.pt2), so its architecture is needed: --arch \
                 NAME, --arch NET.nnspec or --arch MODEL.pt2",
                args.weights.display()
            ),
            result => Some(result.with_context(|| args.weights.display().to_string())?),
        }
    } else {
        None
    };
    let arch = match &args.arch {
        Some(a) => a.clone(),
        None => args.weights.display().to_string(),
    };
    let graph = match (&args.arch, &archive) {
        (None, Some(a)) => lower_pt2(a, &args.weights)?,
        _ => load_arch(&arch)?,
    };
    let graph = with_input_shapes(graph, &args.input_shape)
        .with_context(|| format!("--input-shape for '{arch}'"))?;
    let params = summarize(&graph).total_params;
    let bound = match &archive {
        Some(a) => bind(graph, blob::tensors_to_state_dict(&a.weights)).with_context(|| {
            format!(
                "the weights of {} do not fit the architecture '{arch}'",
                args.weights.display()
            )
        })?,
        None => bind_checkpoint(
            graph,
            &args.weights,
            &arch,
            args.key.clone(),
            args.deny_warnings,
        )?,
    };
    drop(archive);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.weights.with_extension("nnb"));
    progress.set_message(format!("hashing {}", args.weights.display()));
    let sha = blob::sha256_file(&args.weights)
        .with_context(|| format!("hashing {}", args.weights.display()))?;
    let dtype = match args.dtype {
        Dtype::F16 | Dtype::Int8 => WeightDtype::F16,
        Dtype::F32 => WeightDtype::F32,
    };
    progress.set_message(format!("compiling '{arch}'"));
    let (built, int8) = match &args.calibrate {
        None => (
            blob::build(bound, sha, dtype).with_context(|| format!("compiling '{arch}'"))?,
            None,
        ),
        Some(path) => {
            let samples = calibration_samples(path, &bound)?;
            progress.finish_and_clear();
            let bar = super::progress::bar(2 * samples.len(), "calibrating");
            let method = match args.calibration {
                Calibration::Minmax => quant::RangeMethod::MinMax,
                Calibration::Percentile => quant::RangeMethod::Percentile(99.99),
                Calibration::Mse => quant::RangeMethod::Mse,
            };
            let calibration = blob::Calibration {
                samples: &samples,
                method,
            };
            let (built, report, f32_graph) =
                blob::build_int8(bound, sha, dtype, &calibration, |done, _| {
                    bar.set_position(done as u64)
                })
                .with_context(|| format!("compiling '{arch}' to int8"))?;
            bar.set_message("measuring errors");
            let errors = quant::layer_errors(&f32_graph, &built.optimized, &samples);
            bar.finish_and_clear();
            (built, Some(Int8Report::new(report, errors)))
        }
    };
    progress.set_message(format!("writing {}", output.display()));
    crate::atomic_file::write_bytes(&output, &built.bytes)
        .with_context(|| format!("writing {}", output.display()))?;
    progress.finish_and_clear();
    let dtype_name = match args.dtype {
        Dtype::F16 => "f16",
        Dtype::F32 => "f32",
        Dtype::Int8 => "int8",
    };
    let report = Report::new(&built, params, dtype_name, &sha, int8);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    eprintln!("wrote {} ({} bytes)", output.display(), built.bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// The calibration samples of a one-input graph: the rows of the float32 `.npy` at `path`, each
/// with the input's element count, in the input's shape.
fn calibration_samples(path: &Path, graph: &Graph) -> anyhow::Result<Vec<Vec<Tensor>>> {
    let file = path.display().to_string();
    let [input] = graph.inputs[..] else {
        bail!(
            "{file}: calibration takes models of one input; this one has {}",
            graph.inputs.len()
        );
    };
    let shape = graph.shape(input).to_vec();
    let array = npy::read::<f32>(path).with_context(|| file.clone())?;
    let want = numel(&shape);
    let rows = array.rows();
    let row_len = if array.shape.is_empty() {
        0
    } else {
        array.data.len() / rows.max(1)
    };
    if array.shape.len() < 2 || row_len != want || rows == 0 {
        bail!(
            "{file}: shape {} is not (K, ...) of K >= 1 samples of the input '{}' {} ({want} values each)",
            fmt_shape(&array.shape),
            graph.values[input].name,
            fmt_shape(&shape)
        );
    }
    Ok(quant::calibrate::one_input_samples(&array, &shape))
}

/// `graph` (the architecture `arch`) with the state_dict of the checkpoint at `weights` bound to
/// it strictly, after the checkpoint's eval-mode findings are reported (and, with
/// `deny_warnings`, refused); the checkpoint's tensors are released before returning.
pub(super) fn bind_checkpoint(
    graph: Graph,
    weights: &Path,
    arch: &str,
    key: Option<String>,
    deny_warnings: bool,
) -> anyhow::Result<Graph> {
    let ckpt = checkpoint::open(weights, &Options { key })
        .with_context(|| weights.display().to_string())?;
    super::diagnostics::report(&ckpt, weights, deny_warnings)?;
    bind(graph, blob::state_dict(&ckpt)).with_context(|| {
        format!(
            "{} does not fit the architecture '{arch}'",
            weights.display()
        )
    })
}

/// The graph (unbound) of the torch.export archive read from `path`.
fn lower_pt2(archive: &pt2::Archive, path: &Path) -> anyhow::Result<Graph> {
    pt2::lower(&archive.program, &model_name(path)).with_context(|| path.display().to_string())
}

fn model_name(path: &Path) -> String {
    path.file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned())
}

/// The unbound graph of `arch`: the graph of a torch.export archive (`.pt2`), a spec file when
/// `arch` names an existing file or looks like a path, else a catalog entry.
pub(super) fn load_arch(arch: &str) -> anyhow::Result<Graph> {
    let path = Path::new(arch);
    if arch.ends_with(".pt2") || (path.is_file() && pt2::is_pt2_file(path)) {
        let archive = pt2::open(path).with_context(|| arch.to_string())?;
        return lower_pt2(&archive, path);
    }
    let looks_like_path = arch.contains(['/', '\\']) || arch.ends_with(".nnspec");
    if path.is_file() || looks_like_path {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading spec file {arch}"))?;
        Ok(parse_spec(&text, arch, &model_name(path))?)
    } else {
        Ok(catalog::graph(arch)?)
    }
}

/// The graph with some input shapes replaced (`[NAME=]D,D,..`, batch omitted) and every shape
/// inferred again; an error names the layer that no longer fits.
fn with_input_shapes(mut graph: Graph, specs: &[String]) -> anyhow::Result<Graph> {
    if specs.is_empty() {
        return Ok(graph);
    }
    for (i, spec) in specs.iter().enumerate() {
        let (name, dims) = match spec.split_once('=') {
            Some((n, d)) => (Some(n.trim()), d),
            None => (None, spec.as_str()),
        };
        let dims: Vec<usize> = dims
            .split(',')
            .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
            .collect::<Option<_>>()
            .with_context(|| {
                format!("'{spec}' is not a list of positive dimensions like 3,64,64")
            })?;
        let names: Vec<&str> = graph
            .inputs
            .iter()
            .map(|&v| graph.values[v].name.as_str())
            .collect();
        let slot = match name {
            Some(n) => names.iter().position(|&m| m == n).with_context(|| {
                format!(
                    "the model has no input '{n}' (inputs: {})",
                    names.join(", ")
                )
            })?,
            None if i < names.len() => i,
            None => bail!(
                "the model has {} input(s), {} shapes given",
                names.len(),
                i + 1
            ),
        };
        let v = graph.inputs[slot];
        let shape: Vec<usize> = std::iter::once(1).chain(dims).collect();
        crate::graph::checked_numel(&shape).map_err(anyhow::Error::msg)?;
        graph.values[v].shape = shape;
    }
    for n in 0..graph.nodes.len() {
        let node = &graph.nodes[n];
        let shapes: Vec<&[usize]> = node.inputs.iter().map(|&v| graph.shape(v)).collect();
        let out = node.op.infer(&shapes).map_err(|message| GraphError {
            layer: node.name.clone(),
            message,
        })?;
        let v = node.output;
        graph.values[v].shape = out;
    }
    Ok(graph)
}

#[derive(Serialize)]
struct Row {
    name: String,
    op: String,
    output_shape: Vec<usize>,
    params: u64,
    macs: u64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    source_sha256: String,
    dtype: &'static str,
    layers: Vec<Row>,
    /// Parameters as PyTorch counts them (the checkpoint's graph, before folding).
    params: u64,
    macs: u64,
    blob_bytes: usize,
    /// 4 bytes per PyTorch parameter.
    fp32_weight_bytes: u64,
    blob_to_fp32: f64,
    arena_bytes: usize,
    arena_lower_bound_bytes: usize,
    ops: usize,
    /// With --dtype int8: where each op runs and the int8 layers' errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    int8: Option<Int8Report>,
}

#[derive(Serialize)]
struct FloatOp {
    layer: String,
    op: String,
    why: &'static str,
}

#[derive(Serialize)]
struct Int8Report {
    layers: Vec<quant::LayerError>,
    float_ops: Vec<FloatOp>,
    quantize_ops: usize,
    dequantize_ops: usize,
}

impl Int8Report {
    fn new(r: quant::QuantReport, layers: Vec<quant::LayerError>) -> Int8Report {
        Int8Report {
            layers,
            float_ops: r
                .float
                .into_iter()
                .map(|(layer, op, why)| FloatOp { layer, op, why })
                .collect(),
            quantize_ops: r.quantize_nodes,
            dequantize_ops: r.dequantize_nodes,
        }
    }

    fn print(&self) {
        let w = self
            .layers
            .iter()
            .map(|l| l.layer.len())
            .max()
            .unwrap_or(5)
            .max(5);
        println!();
        println!(
            "{:w$}  {:>11}  {:>4}  {:>10}  {:>10}  {:>10}",
            "int8 layer", "scale", "zp", "cosine", "max |err|", "max |f32|"
        );
        for l in &self.layers {
            println!(
                "{:w$}  {:>11.5e}  {:>4}  {:>10.6}  {:>10.4e}  {:>10.4e}",
                l.layer, l.scale, l.zero_point, l.cosine, l.max_abs, l.f32_max_abs
            );
        }
        println!("(errors against the f32 network on the calibration samples, accumulated up to each layer)");
        if self.float_ops.is_empty() {
            println!("every op runs in int8");
        } else {
            println!(
                "f32 ops ({} quantize, {} dequantize inserted):",
                self.quantize_ops, self.dequantize_ops
            );
            for f in &self.float_ops {
                println!("  {} ({}): {}", f.layer, f.op, f.why);
            }
        }
    }
}

impl Report {
    fn new(
        built: &Built,
        params: u64,
        dtype: &'static str,
        sha: &[u8; 32],
        int8: Option<Int8Report>,
    ) -> Report {
        let s = summarize(&built.optimized);
        let fp32 = 4 * params;
        Report {
            model: built.optimized.name.clone(),
            source_sha256: blob::hex(sha),
            dtype,
            layers: s
                .rows
                .into_iter()
                .map(|r| Row {
                    name: r.name,
                    op: r.op,
                    output_shape: r.output_shape,
                    params: r.params,
                    macs: r.macs,
                })
                .collect(),
            params,
            macs: s.total_macs,
            blob_bytes: built.bytes.len(),
            fp32_weight_bytes: fp32,
            blob_to_fp32: built.bytes.len() as f64 / fp32.max(1) as f64,
            arena_bytes: built.plan.arena_bytes(),
            arena_lower_bound_bytes: built.plan.lower_bound_bytes(),
            ops: built.op_layers.len(),
            int8,
        }
    }

    fn print(&self) {
        let shapes: Vec<String> = self
            .layers
            .iter()
            .map(|r| fmt_shape(&r.output_shape))
            .collect();
        let name_w = self
            .layers
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let op_w = self
            .layers
            .iter()
            .map(|r| r.op.len())
            .max()
            .unwrap_or(2)
            .max(2);
        let shape_w = shapes.iter().map(String::len).max().unwrap_or(12).max(12);
        println!(
            "{:name_w$}  {:op_w$}  {:shape_w$}  {:>10}  {:>14}",
            "layer", "op", "output shape", "params", "MACs"
        );
        for (r, shape) in self.layers.iter().zip(&shapes) {
            println!(
                "{:name_w$}  {:op_w$}  {:shape_w$}  {:>10}  {:>14}",
                r.name, r.op, shape, r.params, r.macs
            );
        }
        println!();
        println!(
            "model:   {} (checkpoint sha256 {})",
            self.model, self.source_sha256
        );
        println!(
            "params:  {} (as PyTorch counts them; BatchNorm folded away in the blob)",
            self.params
        );
        println!("MACs:    {}", self.macs);
        println!(
            "blob:    {} bytes, {} weights, {} ops = {:.3} x the fp32 weight bytes ({})",
            self.blob_bytes, self.dtype, self.ops, self.blob_to_fp32, self.fp32_weight_bytes
        );
        println!(
            "arena:   {} bytes (lower bound {}, ratio {:.3})",
            self.arena_bytes,
            self.arena_lower_bound_bytes,
            self.arena_bytes as f64 / self.arena_lower_bound_bytes.max(1) as f64
        );
        if let Some(int8) = &self.int8 {
            int8.print();
        }
    }
}
