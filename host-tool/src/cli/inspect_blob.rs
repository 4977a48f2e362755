//! `nnblob inspect OUT.nnb`: what a blob holds, read back from its bytes after the engine's own
//! validation — name, provenance, inputs and outputs, every op (kind, fused activation, output
//! shape, weights, MACs), per-kind totals, weight bytes and arena.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use nnblob_firmware::Model;
use nnblob_format::header::MAGIC;
use nnblob_format::meta::{Activation, Op, TensorDesc, VectorRef, WireOp};
use nnblob_format::{BlobView, WeightDtype};
use serde::Serialize;

use crate::blob::hex;

/// Whether the file at `path` starts with the blob magic.
pub fn is_blob(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == MAGIC
}

#[derive(Serialize)]
struct Io {
    name: String,
    shape: Vec<u32>,
}

#[derive(Serialize)]
pub(super) struct OpRow {
    pub(super) index: usize,
    pub(super) kind: &'static str,
    pub(super) activation: Option<&'static str>,
    pub(super) output_shape: Vec<u32>,
    /// Weight-matrix elements plus vector elements.
    pub(super) weights: u64,
    /// Bytes those weights take in the blob (alignment padding excluded).
    pub(super) weight_bytes: u64,
    pub(super) macs: u64,
}

#[derive(Serialize, Default)]
struct KindTotal {
    count: usize,
    weights: u64,
    weight_bytes: u64,
    macs: u64,
}

#[derive(Serialize)]
struct Report {
    file: String,
    name: String,
    blob_bytes: usize,
    dtype: &'static str,
    source_sha256: String,
    converter: String,
    passes: String,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
    ops: Vec<OpRow>,
    per_kind: BTreeMap<&'static str, KindTotal>,
    weights: u64,
    weights_section_bytes: usize,
    metadata_bytes: u32,
    macs: u64,
    tensors: u32,
    arena_bytes: usize,
}

fn act_name(a: &Activation<VectorRef>) -> Option<&'static str> {
    Some(match a {
        Activation::None => return None,
        Activation::Relu => "ReLU",
        Activation::Relu6 => "ReLU6",
        Activation::LeakyRelu(_) => "LeakyReLU",
        Activation::PRelu(_) => "PReLU",
        Activation::Sigmoid => "Sigmoid",
        Activation::Tanh => "Tanh",
        Activation::Silu => "SiLU",
        Activation::Hardswish => "Hardswish",
        Activation::Hardsigmoid => "Hardsigmoid",
        Activation::Gelu => "GELU",
        Activation::GeluTanh => "GELU(tanh)",
    })
}

/// Multiply-accumulates per output element of a convolution.
fn conv_taps(g: &nnblob_format::meta::ConvGeometry) -> u64 {
    u64::from(g.in_channels / g.groups.max(1)) * u64::from(g.kernel[0] * g.kernel[1])
}

fn count(t: &TensorDesc) -> u64 {
    t.dims.iter().map(|&d| u64::from(d)).product()
}

/// One op's row: weights counted through `Op::map` (the one place that lists every op's weights).
pub(super) fn op_row(
    index: usize,
    op: &WireOp<'_>,
    view: &BlobView<'_>,
    dtype: WeightDtype,
) -> OpRow {
    let out = view.tensor(op.output()).ok();
    let (mut matrix, mut vector, mut raw) = (0u64, 0u64, 0u64);
    let _ = op.clone().map::<(), (), (), (), ()>(
        &mut |_, m| {
            matrix += u64::from(m.len);
            Ok(())
        },
        &mut |v| {
            vector += u64::from(v.len);
            Ok(())
        },
        &mut |_| Ok(()),
        &mut |b| {
            raw += u64::from(b.len);
            Ok(())
        },
    );
    // int8 ops: the weights are one byte each; their per-channel records count as bytes only.
    let int8_weights = match op {
        Op::QConv2d(c) => u64::from(c.weight.len),
        Op::QLinear(l) => u64::from(l.weight.len),
        _ => 0,
    };
    let out_count = out.as_ref().map_or(0, count);
    let (macs, act) = match op {
        Op::Conv2d(c) => (out_count * conv_taps(&c.geometry()), act_name(&c.act)),
        // As `graph::Op::macs` counts them: about kernel / stride taps per output.
        Op::ConvTranspose2d(c) => {
            let taps =
                u64::from(c.in_channels / c.groups.max(1)) * u64::from(c.kernel[0] * c.kernel[1]);
            let strides = u64::from(c.stride[0].max(1) * c.stride[1].max(1));
            (out_count * taps / strides, act_name(&c.act))
        }
        Op::Linear(l) => (out_count * u64::from(l.in_features), act_name(&l.act)),
        Op::QConv2d(c) => (out_count * conv_taps(&c.geom), None),
        Op::QLinear(l) => (out_count * u64::from(l.in_features), None),
        Op::ChannelAffine(a) => (0, act_name(&a.act)),
        Op::Activation(u) => (0, act_name(&u.act)),
        Op::Add(b) | Op::Mul(b) => (0, act_name(&b.act)),
        _ => (0, None),
    };
    OpRow {
        index,
        kind: op.kind().name(),
        activation: act,
        output_shape: out.map(|t| t.shape().to_vec()).unwrap_or_default(),
        weights: matrix + vector + int8_weights,
        weight_bytes: matrix * dtype.size() as u64 + vector * 4 + raw,
        macs,
    }
}

/// Run `inspect` on a blob.
pub fn exec(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| file.clone())?;
    let model = Model::from_bytes(&bytes).with_context(|| file.clone())?;
    let view = BlobView::new_checked(&bytes).with_context(|| file.clone())?;
    let dtype = view.dtype();
    let ios = |it: &mut dyn Iterator<Item = nnblob_format::meta::Io<'_>>| -> Vec<Io> {
        it.map(|io| Io {
            name: io.name.to_string(),
            shape: view
                .tensor(io.tensor)
                .map(|t| t.shape().to_vec())
                .unwrap_or_default(),
        })
        .collect()
    };
    let mut ops = Vec::new();
    for (i, op) in view.ops().enumerate() {
        ops.push(op_row(i, &op.with_context(|| file.clone())?, &view, dtype));
    }
    let mut per_kind: BTreeMap<&'static str, KindTotal> = BTreeMap::new();
    for r in &ops {
        let k = per_kind.entry(r.kind).or_default();
        k.count += 1;
        k.weights += r.weights;
        k.weight_bytes += r.weight_bytes;
        k.macs += r.macs;
    }
    let info = view.info();
    let header = view.header();
    let report = Report {
        file,
        name: info.name.to_string(),
        blob_bytes: bytes.len(),
        dtype: super::validate::dtype_name(dtype, model.is_quantized()),
        source_sha256: hex(&info.provenance.source_sha256),
        converter: info.provenance.converter.to_string(),
        passes: info.provenance.passes.to_string(),
        inputs: ios(&mut view.inputs()),
        outputs: ios(&mut view.outputs()),
        weights: ops.iter().map(|r| r.weights).sum(),
        macs: ops.iter().map(|r| r.macs).sum(),
        ops,
        per_kind,
        weights_section_bytes: view.weights().len(),
        metadata_bytes: header.meta.end - header.meta.start,
        tensors: view.tensor_count(),
        arena_bytes: model.arena_len() * 4,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn shape(s: &[u32]) -> String {
    format!(
        "[{}]",
        s.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    )
}

fn print(r: &Report) {
    println!(
        "file:       {} ({} bytes, {} weights)",
        r.file, r.blob_bytes, r.dtype
    );
    println!("model:      {}", r.name);
    println!("source:     sha256 {}", r.source_sha256);
    println!("converter:  {}", r.converter);
    println!("passes:     {}", r.passes);
    for io in &r.inputs {
        println!("input:      {} {}", io.name, shape(&io.shape));
    }
    for io in &r.outputs {
        println!("output:     {} {}", io.name, shape(&io.shape));
    }
    println!();
    let kind = |o: &OpRow| match o.activation {
        Some(a) => format!("{}+{a}", o.kind),
        None => o.kind.to_string(),
    };
    let kind_w = r
        .ops
        .iter()
        .map(|o| kind(o).len())
        .max()
        .unwrap_or(2)
        .max(2);
    let shape_w = r
        .ops
        .iter()
        .map(|o| shape(&o.output_shape).len())
        .max()
        .unwrap_or(12)
        .max(12);
    println!(
        "{:>4}  {:kind_w$}  {:shape_w$}  {:>10}  {:>12}  {:>14}",
        "op", "kind", "output shape", "weights", "weight bytes", "MACs"
    );
    for o in &r.ops {
        println!(
            "{:>4}  {:kind_w$}  {:shape_w$}  {:>10}  {:>12}  {:>14}",
            o.index,
            kind(o),
            shape(&o.output_shape),
            o.weights,
            o.weight_bytes,
            o.macs
        );
    }
    println!();
    println!("per kind:");
    for (k, t) in &r.per_kind {
        println!(
            "  {:18} {:>4} ops  {:>10} weights  {:>12} bytes  {:>14} MACs",
            k, t.count, t.weights, t.weight_bytes, t.macs
        );
    }
    println!();
    println!(
        "weights:    {} values, weights section {} bytes (aligned), metadata {} bytes",
        r.weights, r.weights_section_bytes, r.metadata_bytes
    );
    println!("MACs:       {}", r.macs);
    println!(
        "arena:      {} bytes ({} tensors)",
        r.arena_bytes, r.tensors
    );
}
