//! The blob writer: the compiled graph lowered to the engine's ops, then encoded and checked.
//!
//! In: a bound graph (`graph::bind`), the SHA-256 of its checkpoint and the weight dtype. [`build`]
//! runs the eval-mode passes (`crate::passes`) and the arena planner (`crate::plan`), lowers every
//! node to a format op ([`lower`]), encodes the blob (`nnblob_format::encode::ModelRepr::to_vec`)
//! and runs the firmware's own validator (`nnblob_firmware::Model::from_bytes`) on the bytes. Out: a
//! [`Built`] (the optimized graph, its plan, the blob bytes and, per op, the layer it came from), or a
//! [`BlobError`] naming the layer.
//!
//! Lowering rules (docs/FORMAT.md describes the target):
//! - **Tensors.** Every value becomes a tensor of its shape (batch included, at most 4 dimensions)
//!   at the offset the planner gave it (f32 elements). A few ops add a *view*: another tensor at the
//!   same offset with another shape of the same element count (a Conv1d's `[1, C, L]` seen as
//!   `[1, C, 1, L]`; an add operand seen with the output's rank).
//! - **Free reshapes** (flatten, reshape, a leftover Dropout) emit no op: the planner gave the output
//!   the input's memory, so the output tensor is the same bytes under the new shape. When the plan did
//!   not alias them (a fused activation), they are a `Copy`.
//! - **Conv1d** is a Conv2d of height 1; padding `(top, bottom, left, right)` becomes the format's
//!   `[top, left, bottom, right]`. The 1-d pools likewise are the 2-d pool ops of height 1.
//! - **ConvTranspose1d/2d** is the format's `ConvTranspose2d` (version 4; a 1-d one of height 1),
//!   its weight in PyTorch's layout.
//! - **LayerNorm** and **GroupNorm** are the format's `Norm` (version 5): runs of the normalized
//!   shape's elements with an affine period of 1, or a group's channels times the positions with
//!   one affine entry per channel.
//! - **Arithmetic with a constant** (`x * c`, `x + c`, ...) is a `ChannelAffine` with the
//!   constants in every channel; **matmul** is the format's `MatMul` (version 5).
//! - **Upsample** (nearest, linear, bilinear) is the format's `Resize` (version 5; a 1-d one of
//!   height 1), with PyTorch's f32 coordinate factor of each axis.
//! - **Fused activations** go into the op's `act` field (Conv2d, ConvTranspose2d, Linear,
//!   ChannelAffine, Add, Mul);
//!   an op without such a field is followed by an in-place `Activation` op.
//! - **ScaleShift** (an unfoldable BatchNorm) is a `ChannelAffine`; a BatchNorm the passes left
//!   alone is turned into one here, or refused with the channel that makes it undefined.
//! - **Add/Mul**: the engine broadcasts the second operand only (`None`: same element count,
//!   `Channel`: one value per channel of axis 1, `Scalar`: one value). The operand with the
//!   output's element count goes first (add and mul are commutative, so swapping them is exact);
//!   any other broadcast, and one where neither operand has the output's size, is refused.
//! - **Pools** keep PyTorch's rules: symmetric padding `[p, p, p, p]` of at most half the kernel,
//!   `ceil_mode`, `count_include_pad`. Max pooling with dilation has no engine op and is refused.
//!   Adaptive max pooling is its own op (`AdaptiveMaxPool2d`, format version 4).

use std::io::Read;
use std::path::Path;

use nnblob_firmware::Model;
use nnblob_format::encode::{EncodeError, ModelRepr, OwnedOp, TensorRepr};
use nnblob_format::meta::{self as wire, Broadcast, ElemType, Quant};
pub use nnblob_format::WeightDtype;
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, Checkpoint};
use crate::graph::ops::{resolve_dim, BinaryKind, PoolKind};
use crate::graph::{fmt_shape, numel, Activation, Graph, Node, Op, StateDict, Tensor, ValueId};
use crate::passes::{self, fold_batchnorm};
use crate::plan::{self, Plan};
use crate::quant::{self, QuantOp};

/// Converter name and version, as written into every blob's provenance.
pub const CONVERTER: &str = concat!("nnblob ", env!("CARGO_PKG_VERSION"));

/// Why a graph could not become a blob.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The op (or this use of it) has no equivalent in the engine.
    #[error("layer '{layer}' ({op}): {message}")]
    Unsupported {
        layer: String,
        op: String,
        message: String,
    },
    /// A value has more dimensions than the engine's tensors (4, batch included).
    #[error("value '{value}' has shape {shape}: the engine's tensors have at most 4 dimensions (batch included)")]
    RankTooHigh { value: String, shape: String },
    /// A node lacks its parameters.
    #[error("layer '{0}' has no parameters: bind a state_dict first")]
    Unbound(String),
    /// Calibration or quantization failed.
    #[error("quantizing to int8: {0}")]
    Calibration(String),
    /// The encoder refused the model (too large for the format, ...).
    #[error("encoding the blob: {0}")]
    Encode(#[from] EncodeError),
    /// The firmware's validator refused the blob the converter wrote: a converter bug.
    #[error("the engine refuses the blob the converter wrote{}: {error} (this is a converter bug; please report it with the spec)",
        .layer.as_ref().map(|l| format!(" at layer '{l}'")).unwrap_or_default())]
    Refused {
        error: nnblob_firmware::Error,
        layer: Option<String>,
    },
}

/// A graph lowered to the format's owned representation.
#[derive(Clone, Debug)]
pub struct Lowered {
    pub repr: ModelRepr,
    /// For every op of `repr.ops`, the name of the graph node it comes from.
    pub op_layers: Vec<String>,
}

/// The result of [`build`].
#[derive(Clone, Debug)]
pub struct Built {
    /// The graph after the eval-mode passes: what the blob computes.
    pub optimized: Graph,
    /// Its arena plan (the blob's tensor offsets and arena length).
    pub plan: Plan,
    /// The blob, accepted by `nnblob_firmware::Model::from_bytes`.
    pub bytes: Vec<u8>,
    /// For every op of the blob, the graph node it comes from.
    pub op_layers: Vec<String>,
}

/// A checkpoint's tensors as f32, keyed by name (integer buffers such as `num_batches_tracked`
/// included; the binder ignores those).
pub fn state_dict(ckpt: &Checkpoint) -> StateDict {
    tensors_to_state_dict(&ckpt.tensors)
}

/// Named tensors (a checkpoint's, a `.pt2` archive's weights) as a state_dict of f32 tensors.
pub fn tensors_to_state_dict(tensors: &[checkpoint::Tensor]) -> StateDict {
    tensors
        .iter()
        .map(|t| (t.name.clone(), Tensor::new(t.shape.clone(), t.to_f32())))
        .collect()
}

/// SHA-256 of the file at `path`, read in chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles a bound graph into a checked blob: passes, plan, lowering, encoding, validation.
pub fn build(
    bound: Graph,
    source_sha256: [u8; 32],
    dtype: WeightDtype,
) -> Result<Built, BlobError> {
    check_bound(&bound)?;
    let (optimized, passes) = optimize_and_describe(bound);
    finish(optimized, passes, source_sha256, dtype)
}

/// What [`build_int8`] quantizes with: one sample per calibration input (a tensor per graph
/// input each) and the range method.
pub struct Calibration<'s> {
    pub samples: &'s [Vec<Tensor>],
    pub method: quant::RangeMethod,
}

/// Like [`build`], with the int8 quantization pass (`crate::quant`) after the eval-mode passes:
/// calibrated on `calibration`, the ops that stay f32 keeping `dtype` weights. `progress(done,
/// total)` follows the calibration runs.
pub fn build_int8(
    bound: Graph,
    source_sha256: [u8; 32],
    dtype: WeightDtype,
    calibration: &Calibration<'_>,
    progress: impl FnMut(usize, usize),
) -> Result<(Built, quant::QuantReport, Graph), BlobError> {
    check_bound(&bound)?;
    let (optimized, passes) = optimize_and_describe(bound);
    let stats = quant::calibrate::collect(&optimized, calibration.samples, progress)
        .map_err(|e| BlobError::Calibration(e.to_string()))?;
    let (quantized, report) = quant::quantize(optimized.clone(), &stats, calibration.method)
        .map_err(|e| BlobError::Calibration(e.to_string()))?;
    let passes = format!(
        "{passes}; quantize int8 ({} ops int8, {} f32; ranges {:?} over {} samples)",
        report.int8.len(),
        report.float.len(),
        calibration.method,
        calibration.samples.len()
    );
    let built = finish(quantized, passes, source_sha256, dtype)?;
    Ok((built, report, optimized))
}

fn check_bound(bound: &Graph) -> Result<(), BlobError> {
    match bound
        .nodes
        .iter()
        .find(|n| n.params.len() != n.op.params().len())
    {
        Some(n) => Err(BlobError::Unbound(n.name.clone())),
        None => Ok(()),
    }
}

/// Plans, lowers, encodes and validates an optimized graph.
fn finish(
    optimized: Graph,
    passes: String,
    source_sha256: [u8; 32],
    dtype: WeightDtype,
) -> Result<Built, BlobError> {
    let plan = plan::plan(&optimized);
    let lowered = lower(&optimized, &plan, dtype)?;
    let repr = ModelRepr {
        source_sha256,
        passes,
        ..lowered.repr
    };
    let bytes = encode(&repr, &lowered.op_layers)?;
    Ok(Built {
        optimized,
        plan,
        bytes,
        op_layers: lowered.op_layers,
    })
}

/// Encodes `repr` and runs the firmware's validator on the result; a refusal names the layer of
/// the op it concerns (`op_layers[i]` for op `i`).
pub fn encode(repr: &ModelRepr, op_layers: &[String]) -> Result<Vec<u8>, BlobError> {
    let bytes = repr.to_vec()?;
    if let Err(error) = Model::from_bytes(&bytes) {
        let layer = refused_op(&error).and_then(|op| op_layers.get(op as usize).cloned());
        return Err(BlobError::Refused { error, layer });
    }
    Ok(bytes)
}

/// The op index an engine error refers to, if any.
fn refused_op(e: &nnblob_firmware::Error) -> Option<u32> {
    use nnblob_firmware::Error as E;
    match *e {
        E::OpTensor { op, .. }
        | E::OpShape { op, .. }
        | E::OpParam { op, .. }
        | E::OpWeight { op, .. }
        | E::OpOverlap { op, .. }
        | E::StateShared { op, .. }
        | E::OpType { op, .. } => Some(op),
        _ => None,
    }
}

/// Runs the pass pipeline and describes what it did, for the blob's provenance: per pass the
/// number of nodes it removed, and the BatchNorm parameters (eps values, how they were folded), e.g.
/// `drop_dropout removed 1; fold_pad removed 0; fold_batchnorm removed 9 (BatchNorm eps 1e-3 x9;
/// folded in f64, rounded once to f32; 0 kept as scale-shift); fuse_activation removed 9; ...`.
pub fn optimize_and_describe(graph: Graph) -> (Graph, String) {
    let mut eps: Vec<(f64, usize)> = Vec::new();
    for n in &graph.nodes {
        if let Op::BatchNorm(b) = &n.op {
            match eps.iter_mut().find(|(e, _)| *e == b.eps) {
                Some((_, count)) => *count += 1,
                None => eps.push((b.eps, 1)),
            }
        }
    }
    let mut parts = Vec::new();
    let mut g = graph;
    for (name, pass) in passes::PIPELINE {
        let before = g.nodes.len();
        g = pass(g);
        let removed = before - g.nodes.len();
        let mut part = format!("{name} removed {removed}");
        if *name == "fold_batchnorm" && !eps.is_empty() {
            let eps: Vec<String> = eps.iter().map(|(e, c)| format!("{e:e} x{c}")).collect();
            let kept = g
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::ScaleShift(_)))
                .count();
            part += &format!(
                " (BatchNorm eps {}; folded in f64, rounded once to f32; {kept} kept as scale-shift)",
                eps.join(", ")
            );
        }
        parts.push(part);
    }
    (g, parts.join("; "))
}

/// Lowers an optimized, bound graph with its plan to the format's owned model (provenance left
/// empty: [`build`] fills it in).
pub fn lower(graph: &Graph, plan: &Plan, dtype: WeightDtype) -> Result<Lowered, BlobError> {
    let mut l = Lowering {
        graph,
        extra_offset: &plan.extra_offset,
        tensors: Vec::new(),
        tensor_of: vec![None; graph.values.len()],
        ops: Vec::new(),
        op_layers: Vec::new(),
    };
    for (v, value) in graph.values.iter().enumerate() {
        if let Some(offset) = plan.value_offset.get(v).copied().flatten() {
            if value.shape.len() > 4 {
                return Err(BlobError::RankTooHigh {
                    value: value.name.clone(),
                    shape: fmt_shape(&value.shape),
                });
            }
            l.tensor_of[v] = Some(l.push_tensor(&value.shape, u32_of(offset)?, value.quant)?);
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        l.node(i, node)?;
    }
    let io = |vs: &[ValueId]| -> Result<Vec<(String, u32)>, BlobError> {
        vs.iter()
            .map(|&v| Ok((graph.values[v].name.clone(), l.tensor(v)?)))
            .collect()
    };
    let (inputs, outputs) = (io(&graph.inputs)?, io(&graph.outputs)?);
    Ok(Lowered {
        repr: ModelRepr {
            name: graph.name.clone(),
            source_sha256: [0; 32],
            converter: CONVERTER.to_string(),
            passes: String::new(),
            dtype,
            arena_bytes: u32_of(plan.arena)?,
            tensors: l.tensors,
            inputs,
            outputs,
            ops: l.ops,
        },
        op_layers: l.op_layers,
    })
}

fn u32_of(n: usize) -> Result<u32, BlobError> {
    u32::try_from(n).map_err(|_| BlobError::Encode(EncodeError::TooLarge))
}

/// The format's activation for a graph activation.
fn wire_act(a: Activation) -> wire::Activation<Vec<f32>> {
    match a {
        Activation::Relu => wire::Activation::Relu,
        Activation::Relu6 => wire::Activation::Relu6,
        Activation::LeakyRelu { negative_slope } => wire::Activation::LeakyRelu(negative_slope),
        Activation::Sigmoid => wire::Activation::Sigmoid,
        Activation::Tanh => wire::Activation::Tanh,
        Activation::Silu => wire::Activation::Silu,
        Activation::Hardswish => wire::Activation::Hardswish,
        Activation::Hardsigmoid => wire::Activation::Hardsigmoid,
        Activation::Gelu { tanh: false } => wire::Activation::Gelu,
        Activation::Gelu { tanh: true } => wire::Activation::GeluTanh,
    }
}

/// int8 values as the bytes of the wire.
fn int8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

/// Per-channel records of the wire ([`wire::QCHANNEL_LEN`] bytes each): bias, multiplier,
/// shift.
fn channel_records(channels: &[(i32, wire::Requant)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(channels.len() * wire::QCHANNEL_LEN);
    for (bias, r) in channels {
        for word in [*bias, r.multiplier, r.shift] {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
    out
}

/// How `b` broadcasts against `out` in the engine's terms, when it does.
fn broadcast_kind(out: &[usize], b: &[usize]) -> Option<Broadcast> {
    if numel(b) == numel(out) {
        // `b` broadcasts to `out` with as many elements: the same values in the same order.
        return Some(Broadcast::None);
    }
    if numel(b) == 1 {
        return Some(Broadcast::Scalar);
    }
    let pad = out.len().checked_sub(b.len())?;
    let per_channel = out.len() >= 2
        && (0..out.len()).all(|i| {
            let d = if i < pad { 1 } else { b[i - pad] };
            if i == 1 {
                d == out[1]
            } else {
                d == 1
            }
        });
    per_channel.then_some(Broadcast::Channel)
}

struct Lowering<'g> {
    graph: &'g Graph,
    /// The plan's offsets of every node's extra buffers.
    extra_offset: &'g [Vec<usize>],
    tensors: Vec<TensorRepr>,
    tensor_of: Vec<Option<u32>>,
    ops: Vec<OwnedOp>,
    op_layers: Vec<String>,
}

impl Lowering<'_> {
    fn push_tensor(
        &mut self,
        shape: &[usize],
        offset: u32,
        quant: Option<Quant>,
    ) -> Result<u32, BlobError> {
        let shape = shape.iter().map(|&d| u32_of(d)).collect::<Result<_, _>>()?;
        self.tensors.push(match quant {
            None => TensorRepr::f32(shape, offset),
            Some(quant) => TensorRepr {
                shape,
                offset,
                elem: ElemType::I8,
                quant,
            },
        });
        u32_of(self.tensors.len() - 1)
    }

    fn tensor(&self, v: ValueId) -> Result<u32, BlobError> {
        // The planner places every value the graph uses.
        self.tensor_of[v].ok_or_else(|| BlobError::Unsupported {
            layer: self.graph.values[v].name.clone(),
            op: "value".into(),
            message: "the arena plan gives this value no place".into(),
        })
    }

    fn offset(&self, v: ValueId) -> Result<u32, BlobError> {
        Ok(self.tensors[self.tensor(v)? as usize].offset)
    }

    /// Value `v` seen with another shape of the same element count (same arena offset).
    fn view(&mut self, v: ValueId, shape: &[usize]) -> Result<u32, BlobError> {
        if self.graph.shape(v) == shape {
            return self.tensor(v);
        }
        let offset = self.offset(v)?;
        self.push_tensor(shape, offset, self.graph.values[v].quant)
    }

    /// The input and output tensors of a window op of `rank` (a convolution, a pool): a 1-d
    /// one's `[1, C, L]` values seen as `[1, C, 1, L]`, the 2-d op of height 1 the engine runs.
    fn height_one(&mut self, rank: usize, x: ValueId, y: ValueId) -> Result<(u32, u32), BlobError> {
        if rank == 2 {
            return Ok((self.tensor(x)?, self.tensor(y)?));
        }
        let (xs, ys) = (self.graph.shape(x).to_vec(), self.graph.shape(y).to_vec());
        let xv = self.view(x, &[xs[0], xs[1], 1, xs[2]])?;
        Ok((xv, self.view(y, &[ys[0], ys[1], 1, ys[2]])?))
    }

    fn push(&mut self, node: &Node, op: OwnedOp) {
        self.ops.push(op);
        self.op_layers.push(node.name.clone());
    }

    /// Tensors for the extra buffers of node `index` ([`Op::extras`]), in their order.
    fn extras(&mut self, index: usize, node: &Node) -> Result<Vec<u32>, BlobError> {
        let extras = node.op.extras(self.graph.shape(node.output));
        let offsets = self.extra_offset.get(index).map_or(&[][..], Vec::as_slice);
        if offsets.len() != extras.len() {
            return Err(BlobError::Unsupported {
                layer: node.name.clone(),
                op: node.op.kind(),
                message: "the arena plan gives its extra buffers no place".into(),
            });
        }
        extras
            .iter()
            .zip(offsets)
            .map(|(e, &offset)| self.push_tensor(&e.shape, u32_of(offset)?, None))
            .collect()
    }

    fn node(&mut self, index: usize, node: &Node) -> Result<(), BlobError> {
        let g = self.graph;
        let p = &node.params;
        if p.len() != node.op.params().len() {
            return Err(BlobError::Unbound(node.name.clone()));
        }
        let unsupported = |message: String| BlobError::Unsupported {
            layer: node.name.clone(),
            op: node.op.kind(),
            message,
        };
        let out = self.tensor(node.output)?;
        let input = node.inputs.first().copied();
        let x = || input.ok_or_else(|| unsupported("has no input".into()));
        // The fused activation, when the op has a field for it; otherwise it becomes an extra op.
        let mut act = node.fused.map(wire_act);
        let mut take_act = || act.take().unwrap_or(wire::Activation::None);
        let op: Option<OwnedOp> = match &node.op {
            Op::Conv(c) => {
                let (input, output) = self.height_one(c.rank, x()?, node.output)?;
                let u = |v: [usize; 2]| -> Result<[u32; 2], BlobError> {
                    Ok([u32_of(v[0])?, u32_of(v[1])?])
                };
                let pd = &c.padding;
                let geom = wire::ConvGeometry {
                    in_channels: u32_of(c.in_channels)?,
                    out_channels: u32_of(c.out_channels)?,
                    kernel: u(c.kernel)?,
                    stride: u(c.stride)?,
                    padding: [
                        u32_of(pd.top)?,
                        u32_of(pd.left)?,
                        u32_of(pd.bottom)?,
                        u32_of(pd.right)?,
                    ],
                    dilation: u(c.dilation)?,
                    groups: u32_of(c.groups)?,
                };
                Some(match &node.quant {
                    Some(QuantOp::Weighted {
                        weight,
                        channels,
                        clamp,
                        ..
                    }) => {
                        act = None;
                        wire::Op::QConv2d(wire::QConv2d {
                            input,
                            output,
                            geom,
                            weight: int8_bytes(weight),
                            channels: channel_records(channels),
                            clamp: *clamp,
                        })
                    }
                    _ => wire::Op::Conv2d(wire::Conv2d {
                        input,
                        output,
                        in_channels: geom.in_channels,
                        out_channels: geom.out_channels,
                        kernel: geom.kernel,
                        stride: geom.stride,
                        padding: geom.padding,
                        dilation: geom.dilation,
                        groups: geom.groups,
                        weight: p[0].data.clone(),
                        bias: p.get(1).map(|b| b.data.clone()),
                        act: take_act(),
                    }),
                })
            }
            Op::ConvTranspose(c) => {
                let (input, output) = self.height_one(c.rank, x()?, node.output)?;
                let u = |v: [usize; 2]| -> Result<[u32; 2], BlobError> {
                    Ok([u32_of(v[0])?, u32_of(v[1])?])
                };
                Some(wire::Op::ConvTranspose2d(wire::ConvTranspose2d {
                    input,
                    output,
                    in_channels: u32_of(c.in_channels)?,
                    out_channels: u32_of(c.out_channels)?,
                    kernel: u(c.kernel)?,
                    stride: u(c.stride)?,
                    padding: u(c.padding)?,
                    output_padding: u(c.output_padding)?,
                    dilation: u(c.dilation)?,
                    groups: u32_of(c.groups)?,
                    weight: p[0].data.clone(),
                    bias: p.get(1).map(|b| b.data.clone()),
                    act: take_act(),
                }))
            }
            Op::Linear(lin) => Some(match &node.quant {
                Some(QuantOp::Weighted {
                    weight,
                    channels,
                    clamp,
                    ..
                }) => {
                    act = None;
                    wire::Op::QLinear(wire::QLinear {
                        input: self.tensor(x()?)?,
                        output: out,
                        in_features: u32_of(lin.in_features)?,
                        out_features: u32_of(lin.out_features)?,
                        weight: int8_bytes(weight),
                        channels: channel_records(channels),
                        clamp: *clamp,
                    })
                }
                _ => wire::Op::Linear(wire::Linear {
                    input: self.tensor(x()?)?,
                    output: out,
                    in_features: u32_of(lin.in_features)?,
                    out_features: u32_of(lin.out_features)?,
                    weight: p[0].data.clone(),
                    bias: p.get(1).map(|b| b.data.clone()),
                    act: take_act(),
                }),
            }),
            Op::Quantize => Some(wire::Op::Quantize {
                input: self.tensor(x()?)?,
                output: out,
            }),
            Op::Dequantize => Some(wire::Op::Dequantize {
                input: self.tensor(x()?)?,
                output: out,
            }),
            Op::BatchNorm(b) => {
                let (scale, shift) = fold_batchnorm::scale_shift(
                    &p[0].data, &p[1].data, &p[2].data, &p[3].data, b.eps,
                )
                .map_err(unsupported)?;
                let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
                Some(wire::Op::ChannelAffine(wire::ChannelAffine {
                    input: self.tensor(x()?)?,
                    output: out,
                    scale: f32s(scale),
                    shift: f32s(shift),
                    act: take_act(),
                }))
            }
            Op::ScaleShift(_) => Some(wire::Op::ChannelAffine(wire::ChannelAffine {
                input: self.tensor(x()?)?,
                output: out,
                scale: p[0].data.clone(),
                shift: p[1].data.clone(),
                act: take_act(),
            })),
            Op::Affine(f) => {
                // The engine's per-channel affine with the constants in every channel.
                let x = x()?;
                let channels = g.shape(x).get(1).copied().unwrap_or(1);
                Some(wire::Op::ChannelAffine(wire::ChannelAffine {
                    input: self.tensor(x)?,
                    output: out,
                    scale: vec![f.scale as f32; channels],
                    shift: vec![f.shift as f32; channels],
                    act: take_act(),
                }))
            }
            Op::Recurrent(r) => {
                let extras = self.extras(index, node)?;
                let [state, scratch] = extras[..] else {
                    return Err(unsupported(
                        "a recurrent layer has two extra buffers".into(),
                    ));
                };
                Some(wire::Op::Recurrent(wire::Recurrent {
                    input: self.tensor(x()?)?,
                    output: out,
                    state,
                    scratch,
                    cell: r.cell,
                    hidden: u32_of(r.hidden_size)?,
                    batch_first: r.batch_first,
                    reverse: r.reverse,
                    weight_ih: p[0].data.clone(),
                    weight_hh: p[1].data.clone(),
                    bias_ih: p.get(2).map(|t| t.data.clone()),
                    bias_hh: p.get(3).map(|t| t.data.clone()),
                }))
            }
            Op::MatMul(_) => Some(wire::Op::MatMul {
                a: self.tensor(node.inputs[0])?,
                b: self.tensor(node.inputs[1])?,
                output: out,
            }),
            Op::Activation(a) => Some(wire::Op::Activation(wire::Unary {
                input: self.tensor(x()?)?,
                output: out,
                act: wire_act(*a),
            })),
            Op::PRelu(_) => Some(wire::Op::Activation(wire::Unary {
                input: self.tensor(x()?)?,
                output: out,
                act: wire::Activation::PRelu(p[0].data.clone()),
            })),
            Op::Softmax(s) => {
                let axis = resolve_dim(s.dim, g.shape(x()?).len()).map_err(unsupported)?;
                Some(wire::Op::Softmax {
                    input: self.tensor(x()?)?,
                    output: out,
                    axis: axis as u8,
                })
            }
            Op::Pool(pool) => {
                if pool.dilation != [1, 1] {
                    return Err(unsupported(
                        "dilation other than 1 in a pooling layer has no engine op".into(),
                    ));
                }
                let (input, output) = self.height_one(pool.rank, x()?, node.output)?;
                let [ph, pw] = [u32_of(pool.padding[0])?, u32_of(pool.padding[1])?];
                let p2 = wire::Pool2d {
                    input,
                    output,
                    kernel: [u32_of(pool.kernel[0])?, u32_of(pool.kernel[1])?],
                    stride: [u32_of(pool.stride[0])?, u32_of(pool.stride[1])?],
                    padding: [ph, pw, ph, pw],
                    ceil_mode: pool.ceil_mode,
                    count_include_pad: pool.count_include_pad,
                };
                Some(match pool.kind {
                    PoolKind::Max => wire::Op::MaxPool2d(p2),
                    PoolKind::Avg => wire::Op::AvgPool2d(p2),
                })
            }
            Op::AdaptivePool(a) => {
                let (input, output) = self.height_one(a.rank, x()?, node.output)?;
                Some(match a.kind {
                    PoolKind::Max => wire::Op::AdaptiveMaxPool2d { input, output },
                    PoolKind::Avg => wire::Op::AdaptiveAvgPool2d { input, output },
                })
            }
            Op::LayerNorm(l) => Some(wire::Op::Norm(wire::Norm {
                input: self.tensor(x()?)?,
                output: out,
                group_len: u32_of(numel(&l.shape))?,
                repeat: 1,
                eps: l.eps as f32,
                weight: p.first().map(|t| t.data.clone()),
                bias: p.get(1).map(|t| t.data.clone()),
            })),
            Op::GroupNorm(gn) => {
                let x = x()?;
                let shape = g.shape(x);
                let spatial = numel(&shape[2..]);
                Some(wire::Op::Norm(wire::Norm {
                    input: self.tensor(x)?,
                    output: out,
                    group_len: u32_of(shape[1] / gn.groups * spatial)?,
                    repeat: u32_of(spatial)?,
                    eps: gn.eps as f32,
                    weight: p.first().map(|t| t.data.clone()),
                    bias: p.get(1).map(|t| t.data.clone()),
                }))
            }
            Op::Upsample(u) => {
                let x = x()?;
                let rank = g.shape(x).len() - 2;
                let scale = u
                    .coord_scales(g.shape(x), g.shape(node.output))
                    .map_err(unsupported)?;
                let (input, output) = self.height_one(rank, x, node.output)?;
                Some(wire::Op::Resize(wire::Resize {
                    input,
                    output,
                    mode: u.mode.wire(),
                    align_corners: u.align_corners,
                    scale,
                }))
            }
            Op::ZeroPad(z) => {
                let pd = &z.padding;
                Some(wire::Op::ZeroPad2d {
                    input: self.tensor(x()?)?,
                    output: out,
                    padding: [
                        u32_of(pd.top)?,
                        u32_of(pd.left)?,
                        u32_of(pd.bottom)?,
                        u32_of(pd.right)?,
                    ],
                })
            }
            Op::Flatten(_) | Op::Reshape(_) | Op::Dropout => {
                let input = x()?;
                // Aliased by the planner: the same bytes under the output's shape, no op.
                (self.offset(input)? != self.offset(node.output)?).then_some(wire::Op::Copy {
                    input: self.tensor(input)?,
                    output: out,
                })
            }
            Op::Permute(perm) => {
                let mut dims = [0u8, 1, 2, 3];
                for (i, &d) in perm.dims.iter().enumerate() {
                    dims[i] = d as u8;
                }
                Some(wire::Op::Permute {
                    input: self.tensor(x()?)?,
                    output: out,
                    perm: dims,
                })
            }
            Op::Slice(slice) => {
                let input = x()?;
                let (axis, start, _) = slice.resolve(g.shape(input)).map_err(unsupported)?;
                Some(wire::Op::Slice {
                    input: self.tensor(input)?,
                    output: out,
                    axis: axis as u8,
                    start: u32_of(start)?,
                    step: u32_of(slice.step as usize)?,
                })
            }
            Op::Concat(cat) => {
                let axis = resolve_dim(cat.dim, g.shape(node.output).len()).map_err(unsupported)?;
                let inputs = node
                    .inputs
                    .iter()
                    .map(|&v| self.tensor(v))
                    .collect::<Result<_, _>>()?;
                Some(wire::Op::Concat {
                    inputs,
                    output: out,
                    axis: axis as u8,
                })
            }
            Op::Binary(_) if node.quant.is_some() => {
                let Some(QuantOp::Add {
                    a,
                    b,
                    out: requant,
                    clamp,
                }) = &node.quant
                else {
                    return Err(unsupported(
                        "has an int8 form that is not an addition".into(),
                    ));
                };
                act = None;
                let ys = g.shape(node.output);
                Some(wire::Op::QAdd(wire::QAdd {
                    a: self.view(node.inputs[0], ys)?,
                    b: self.view(node.inputs[1], ys)?,
                    output: out,
                    a_requant: *a,
                    b_requant: *b,
                    out_requant: *requant,
                    clamp: *clamp,
                }))
            }
            Op::Binary(bin) => {
                let ys = g.shape(node.output);
                let (a, b) = (node.inputs[0], node.inputs[1]);
                // The first operand must have the output's elements; swap when only `b` does.
                let (first, second) = if numel(g.shape(a)) == numel(ys) {
                    (a, b)
                } else {
                    (b, a)
                };
                let first_fits = numel(g.shape(first)) == numel(ys);
                let broadcast = first_fits.then(|| broadcast_kind(ys, g.shape(second)));
                let broadcast = broadcast.flatten().ok_or_else(|| {
                    unsupported(format!(
                        "broadcasting {} with {} is not supported by the engine (it takes equal \
                         shapes, one value per channel of axis 1, or one value)",
                        fmt_shape(g.shape(a)),
                        fmt_shape(g.shape(b))
                    ))
                })?;
                let binary = wire::Binary {
                    a: self.view(first, ys)?,
                    b: self.tensor(second)?,
                    output: out,
                    broadcast,
                    act: take_act(),
                };
                Some(match bin.kind {
                    BinaryKind::Add => wire::Op::Add(binary),
                    BinaryKind::Mul => wire::Op::Mul(binary),
                })
            }
        };
        if let Some(op) = op {
            self.push(node, op);
        }
        if let Some(act) = act {
            self.push(
                node,
                wire::Op::Activation(wire::Unary {
                    input: out,
                    output: out,
                    act,
                }),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-checked cases of the engine's broadcast rule (the second operand only).
    #[test]
    fn broadcast_kinds() {
        let out = [1, 8, 4, 4];
        assert_eq!(broadcast_kind(&out, &[1, 8, 4, 4]), Some(Broadcast::None));
        assert_eq!(broadcast_kind(&out, &[8, 4, 4]), Some(Broadcast::None));
        assert_eq!(
            broadcast_kind(&out, &[1, 8, 1, 1]),
            Some(Broadcast::Channel)
        );
        assert_eq!(broadcast_kind(&out, &[8, 1, 1]), Some(Broadcast::Channel));
        assert_eq!(broadcast_kind(&out, &[1]), Some(Broadcast::Scalar));
        assert_eq!(broadcast_kind(&out, &[1, 1, 1, 1]), Some(Broadcast::Scalar));
        assert_eq!(broadcast_kind(&out, &[1, 1, 4, 4]), None);
        assert_eq!(broadcast_kind(&out, &[1, 8, 4, 1]), None);
        assert_eq!(broadcast_kind(&out, &[4]), None);
        assert_eq!(
            broadcast_kind(&[1, 6, 5], &[1, 6, 1]),
            Some(Broadcast::Channel)
        );
    }
}
