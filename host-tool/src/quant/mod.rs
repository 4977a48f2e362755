//! Post-training int8 quantization: a pass stage after folding and fusion.
//!
//! In: the optimized f32 graph (`crate::passes`), calibration statistics of its values
//! ([`calibrate`]) and a [`RangeMethod`]. Out: the same graph with int8 values
//! ([`crate::graph::Value::quant`]), int8 ops ([`crate::graph::Node::quant`]: weights quantized
//! once, biases and rescalings computed), and the `Quantize` / `Dequantize` nodes between int8
//! regions and the ops that stay f32, plus a [`QuantReport`] saying which ran where.
//!
//! Which op runs in int8 (docs/FORMAT.md, "int8"):
//! - convolutions (any groups) and linear layers, with no fused activation or a fused ReLU /
//!   ReLU6 (a clamp of the int8 output);
//! - additions of two tensors of the output's size, likewise;
//! - max / average / adaptive max and average pooling, zero padding, reshapes, permutes and slices of an
//!   int8 value: they keep its quantization, as the values only move (or are averaged);
//! - every other op (softmax, sigmoid, tanh, hardswish and the other activations, a convolution
//!   with one of them fused, broadcast or multiplying element-wise ops, unfolded BatchNorms,
//!   concatenation) runs in f32 between a `Dequantize` and a `Quantize` the pass inserts.
//!
//! A graph input read by an int8 op is int8 (the engine's `run` quantizes it at the edge); a
//! graph output computed in int8 stays int8 (dequantized at the edge).

pub mod calibrate;
pub mod params;
pub mod reference;

pub use calibrate::{RangeMethod, Stats};

use nnblob_format::meta::{Quant, Requant, QADD_LEFT_SHIFT};

use crate::graph::ops::{BinaryKind, ResampleMode};
use crate::graph::{numel, Activation, Graph, Node, Op, ValueId};

/// The int8 form of an op, as the quantization pass leaves it on the node.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantOp {
    /// A convolution or linear layer: int8 weights in the op's PyTorch layout (symmetric per
    /// output channel), and per output channel the int32 bias and the rescaling of the
    /// accumulator to the output's scale; the fused activation as a clamp.
    Weighted {
        weight: Vec<i8>,
        weight_scales: Vec<f32>,
        channels: Vec<(i32, Requant)>,
        clamp: [i8; 2],
    },
    /// An addition: each operand's rescaling to the common scale and the sum's to the output.
    Add {
        a: Requant,
        b: Requant,
        out: Requant,
        clamp: [i8; 2],
    },
    /// The values keep the input's quantization (pooling, padding, data movement).
    PassThrough,
}

/// Why a graph could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("value '{0}' was never computed during calibration (no statistics)")]
    NoStats(String),
    #[error(
        "layer '{layer}': the rescaling factor {factor:e} has no int8 form (scales too far apart)"
    )]
    Factor { layer: String, factor: f64 },
}

/// Where each op ended up: names of the nodes run in int8 and of those left in f32, and the
/// conversions inserted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantReport {
    pub int8: Vec<String>,
    /// `(layer, op, why)`.
    pub float: Vec<(String, String, &'static str)>,
    pub quantize_nodes: usize,
    pub dequantize_nodes: usize,
}

/// The int8 op kind a node can take, before looking at its inputs.
enum Kind {
    Weighted,
    Add,
    PassThrough,
}

fn clamp_act(fused: Option<Activation>) -> Option<Option<Activation>> {
    match fused {
        None => Some(None),
        Some(a @ (Activation::Relu | Activation::Relu6)) => Some(Some(a)),
        Some(_) => None,
    }
}

/// The kind, or why the op stays f32.
fn kind(g: &Graph, n: &Node) -> Result<Kind, &'static str> {
    let fused_ok = clamp_act(n.fused).is_some();
    match &n.op {
        Op::Conv(_) | Op::Linear(_) if fused_ok => Ok(Kind::Weighted),
        Op::Conv(_) | Op::Linear(_) => Err("its fused activation has no int8 form"),
        Op::Binary(b) if b.kind == BinaryKind::Add && fused_ok => {
            let out = numel(g.shape(n.output));
            if n.inputs.iter().all(|&v| numel(g.shape(v)) == out) {
                Ok(Kind::Add)
            } else {
                Err("broadcasting additions run in f32")
            }
        }
        Op::Pool(_)
        | Op::AdaptivePool(_)
        | Op::ZeroPad(_)
        | Op::Flatten(_)
        | Op::Reshape(_)
        | Op::Permute(_)
        | Op::Slice(_)
            if n.fused.is_none() =>
        {
            Ok(Kind::PassThrough)
        }
        Op::Upsample(u) if u.mode == ResampleMode::Nearest && n.fused.is_none() => {
            Ok(Kind::PassThrough)
        }
        Op::Upsample(_) => Err("linear resampling runs in f32"),
        Op::Binary(_) => Err("element-wise products run in f32"),
        Op::Concat(_) => Err("concatenation runs in f32 (its inputs have their own scales)"),
        Op::Softmax(_) => Err("softmax runs in f32"),
        _ => Err("this op runs in f32"),
    }
}

/// The clamp of a fused activation in the output's quantization.
fn clamp_of(fused: Option<Activation>, q: Quant) -> [i8; 2] {
    match fused {
        Some(Activation::Relu) => [params::quantize_value(0.0, q), 127],
        Some(Activation::Relu6) => [
            params::quantize_value(0.0, q),
            params::quantize_value(6.0, q),
        ],
        _ => [-128, 127],
    }
}

/// Quantizes `graph` with the statistics `stats` (indexed by its value ids).
pub fn quantize(
    mut graph: Graph,
    stats: &[Option<Stats>],
    method: RangeMethod,
) -> Result<(Graph, QuantReport), QuantError> {
    let mut report = QuantReport::default();
    let value_quant = |g: &Graph, v: ValueId| -> Result<Quant, QuantError> {
        let s = stats
            .get(v)
            .and_then(Option::as_ref)
            .ok_or_else(|| QuantError::NoStats(g.values[v].name.clone()))?;
        let (lo, hi) = s.range(method);
        Ok(params::range_quant(lo, hi))
    };
    // 1. Decide each node's side, in order: pass-through ops follow their input.
    let mut int8 = vec![false; graph.nodes.len()];
    let mut is_int8_value = vec![false; graph.values.len()];
    // Graph inputs read by an int8 compute op are int8.
    for (i, n) in graph.nodes.iter().enumerate() {
        match kind(&graph, n) {
            Ok(Kind::Weighted | Kind::Add) => int8[i] = true,
            Ok(Kind::PassThrough) | Err(_) => {}
        }
    }
    for &v in &graph.inputs {
        let consumers = graph.consumers(v);
        is_int8_value[v] = consumers.iter().any(|&c| int8[c]);
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        match kind(&graph, n) {
            Ok(Kind::PassThrough) => int8[i] = n.inputs.first().is_some_and(|&v| is_int8_value[v]),
            Ok(_) => {}
            Err(why) => report.float.push((n.name.clone(), n.op.kind(), why)),
        }
        if int8[i] {
            is_int8_value[n.output] = true;
        } else if matches!(kind(&graph, n), Ok(Kind::PassThrough)) {
            report.float.push((
                n.name.clone(),
                n.op.kind(),
                "its input is f32, so it stays f32",
            ));
        }
    }
    // 2. Quantization of every int8 value (pass-through outputs inherit their input's).
    for &v in &graph.inputs {
        if is_int8_value[v] {
            graph.values[v].quant = Some(value_quant(&graph, v)?);
        }
    }
    for (i, &is_int8) in int8.iter().enumerate() {
        if !is_int8 {
            continue;
        }
        let node = &graph.nodes[i];
        let out = node.output;
        let quant = match kind(&graph, node) {
            Ok(Kind::PassThrough) => graph.values[node.inputs[0]]
                .quant
                .expect("the input of an int8 pass-through is int8"),
            _ => value_quant(&graph, out)?,
        };
        graph.values[out].quant = Some(quant);
    }
    // 3. Conversions where a value crosses sides, shared by its readers; then the int8 ops.
    let mut converted: Vec<Option<ValueId>> = vec![None; graph.values.len()];
    let old_nodes = std::mem::take(&mut graph.nodes);
    let mut nodes = Vec::with_capacity(old_nodes.len());
    for (i, mut node) in old_nodes.into_iter().enumerate() {
        for input in node.inputs.iter_mut() {
            let v = *input;
            let want_int8 = int8[i];
            if want_int8 == graph.values[v].quant.is_some() {
                continue;
            }
            if let Some(c) = converted[v] {
                *input = c;
                continue;
            }
            let (op, suffix, quant) = if want_int8 {
                report.quantize_nodes += 1;
                (Op::Quantize, "int8", Some(value_quant(&graph, v)?))
            } else {
                report.dequantize_nodes += 1;
                (Op::Dequantize, "f32", None)
            };
            let name = format!("{}.{suffix}", graph.values[v].name);
            let shape = graph.values[v].shape.clone();
            let c = graph.values.len();
            graph.values.push(crate::graph::Value {
                name: name.clone(),
                shape,
                quant,
            });
            nodes.push(Node {
                name,
                module: None,
                op,
                inputs: vec![v],
                output: c,
                fused: None,
                params: Vec::new(),
                quant: None,
            });
            converted[v] = Some(c);
            *input = c;
        }
        if int8[i] {
            node.quant = Some(int8_op(&graph, &node)?);
            report.int8.push(node.name.clone());
        }
        nodes.push(node);
    }
    graph.nodes = nodes;
    Ok((graph, report))
}

/// The int8 form of an int8 node whose values all have their quantization.
fn int8_op(g: &Graph, n: &Node) -> Result<QuantOp, QuantError> {
    let q = |v: ValueId| g.values[v].quant.expect("int8 values are quantized");
    let out = q(n.output);
    let factor = |f: f64| {
        params::requant_of(f).ok_or_else(|| QuantError::Factor {
            layer: n.name.clone(),
            factor: f,
        })
    };
    Ok(match &n.op {
        Op::Conv(_) | Op::Linear(_) => {
            let s_in = q(n.inputs[0]).scale;
            let w = &n.params[0];
            let rows = w.shape[0];
            let (weight, weight_scales) = params::quantize_weights(&w.data, rows);
            let bias = n.params.get(1).map(|b| &b.data);
            let channels = (0..rows)
                .map(|o| {
                    let s_w = weight_scales[o];
                    let b = bias.map_or(0, |b| params::quantize_bias(b[o], s_in, s_w));
                    let f = f64::from(s_in) * f64::from(s_w) / f64::from(out.scale);
                    Ok((b, factor(f)?))
                })
                .collect::<Result<_, QuantError>>()?;
            QuantOp::Weighted {
                weight,
                weight_scales,
                channels,
                clamp: clamp_of(n.fused, out),
            }
        }
        Op::Binary(_) => {
            let (sa, sb) = (
                f64::from(q(n.inputs[0]).scale),
                f64::from(q(n.inputs[1]).scale),
            );
            let twice_max = 2.0 * sa.max(sb);
            let fine = f64::from(1u32 << QADD_LEFT_SHIFT);
            QuantOp::Add {
                a: factor(sa / twice_max)?,
                b: factor(sb / twice_max)?,
                out: factor(twice_max / (fine * f64::from(out.scale)))?,
                clamp: clamp_of(n.fused, out),
            }
        }
        _ => QuantOp::PassThrough,
    })
}

/// How far an int8 value is from its f32 counterpart over the calibration samples.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerError {
    pub layer: String,
    pub scale: f32,
    pub zero_point: i8,
    /// Cosine similarity of the int8 result (dequantized) with the f32 graph's, all samples
    /// together.
    pub cosine: f64,
    pub max_abs: f64,
    /// The range of the f32 values, for scale.
    pub f32_max_abs: f64,
}

/// For every int8 op of `quantized`, the error of its output against the same value of `f32`
/// (the graph before quantization, whose value ids it keeps): cumulative, as the int8 graph
/// computes it from its own int8 inputs, so the growth from layer to layer shows where the
/// accuracy goes. Uses the int8 reference evaluator ([`reference`]).
pub fn layer_errors(
    f32: &Graph,
    quantized: &Graph,
    samples: &[Vec<crate::graph::Tensor>],
) -> Vec<LayerError> {
    let int8_nodes: Vec<&Node> = quantized
        .nodes
        .iter()
        .filter(|n| n.quant.is_some())
        .collect();
    let mut acc = vec![(0f64, 0f64, 0f64, 0f64, 0f64); int8_nodes.len()];
    for sample in samples {
        let Ok(want) = crate::eval::evaluate_all(f32, sample) else {
            continue;
        };
        let got = reference::evaluate(quantized, sample);
        for (a, n) in acc.iter_mut().zip(&int8_nodes) {
            let (Some(Some(w)), Some(Some(g))) = (want.get(n.output), got.get(n.output)) else {
                continue;
            };
            for (&x, y) in w.data.iter().zip(g.to_f32()) {
                let (x, y) = (f64::from(x), f64::from(y));
                a.0 += x * y;
                a.1 += x * x;
                a.2 += y * y;
                a.3 = a.3.max((x - y).abs());
                a.4 = a.4.max(x.abs());
            }
        }
    }
    int8_nodes
        .iter()
        .zip(acc)
        .map(|(n, (xy, xx, yy, max_abs, f32_max))| {
            let q = quantized.values[n.output].quant.unwrap_or(Quant::NONE);
            LayerError {
                layer: n.name.clone(),
                scale: q.scale,
                zero_point: q.zero_point,
                cosine: if xx > 0.0 && yy > 0.0 {
                    xy / (xx * yy).sqrt()
                } else {
                    1.0
                },
                max_abs,
                f32_max_abs: f32_max,
            }
        })
        .collect()
}
