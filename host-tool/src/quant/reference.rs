//! The int8 reference evaluator: a quantized graph run from the definitions of docs/FORMAT.md
//! ("int8"), the oracle the engine's int8 kernels are tested against bit for bit.
//!
//! In: a graph from [`super::quantize`] and f32 inputs. Out: every value, int8 ones as their
//! integers. Written from the definitions, not from the kernels: convolutions visit every tap and
//! read the zero point in the padding, rescalings divide exactly in 128-bit integers, rounding of
//! averages and of `Quantize` goes through f64 / f32 as the definitions state them. Ops left in
//! f32 run in the f32 reference evaluator (`crate::eval`, f64 accumulation), so only graphs
//! without f32 ops are bit-exact references for the engine.

use nnblob_format::meta::{Quant, Requant, QADD_LEFT_SHIFT};

use super::params::{dequantize_value, quantize_value};
use super::QuantOp;
use crate::eval::{self, activate};
use crate::graph::{numel, Graph, Node, Op, Tensor};

/// A value of a quantized graph.
#[derive(Clone, Debug, PartialEq)]
pub enum QValue {
    F32(Tensor),
    I8 {
        shape: Vec<usize>,
        q: Vec<i8>,
        quant: Quant,
    },
}

impl QValue {
    /// The real values (int8 ones dequantized).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            QValue::F32(t) => t.data.clone(),
            QValue::I8 { q, quant, .. } => q.iter().map(|&v| dequantize_value(v, *quant)).collect(),
        }
    }
}

/// `floor((x * m + 2^(s-1)) / 2^s)`, exactly, saturated to i32.
fn rescale(x: i64, r: Requant) -> i64 {
    let num = i128::from(x) * i128::from(r.multiplier) + (1i128 << (r.shift - 1));
    num.div_euclid(1i128 << r.shift)
        .clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i64
}

fn finish(acc: i64, r: Requant, zy: i8, clamp: [i8; 2]) -> i8 {
    let y = (rescale(acc, r) + i64::from(zy)).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    y.clamp(i64::from(clamp[0]), i64::from(clamp[1])) as i8
}

/// Sums wrap modulo 2^32, as the format defines (and as no realistic layer reaches).
fn wrap(x: i64) -> i64 {
    i64::from(x as i32)
}

/// Runs the quantized graph.
pub fn evaluate(graph: &Graph, inputs: &[Tensor]) -> Vec<Option<QValue>> {
    let mut values: Vec<Option<QValue>> = vec![None; graph.values.len()];
    for (&v, t) in graph.inputs.iter().zip(inputs) {
        values[v] = Some(match graph.values[v].quant {
            None => QValue::F32(t.clone()),
            Some(quant) => QValue::I8 {
                shape: t.shape.clone(),
                q: t.data.iter().map(|&x| quantize_value(x, quant)).collect(),
                quant,
            },
        });
    }
    for node in &graph.nodes {
        let ins: Vec<&QValue> = node
            .inputs
            .iter()
            .map(|&v| values[v].as_ref().expect("topological order"))
            .collect();
        let shape = graph.shape(node.output).to_vec();
        let out = match graph.values[node.output].quant {
            Some(quant) => run_int8(node, &ins, shape, quant),
            None => run_f32(node, &ins, shape),
        };
        values[node.output] = Some(out);
    }
    values
}

fn as_f32(v: &QValue) -> Tensor {
    match v {
        QValue::F32(t) => t.clone(),
        QValue::I8 { shape, .. } => Tensor::new(shape.clone(), v.to_f32()),
    }
}

fn run_f32(node: &Node, ins: &[&QValue], shape: Vec<usize>) -> QValue {
    let ts: Vec<Tensor> = ins.iter().map(|v| as_f32(v)).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let mut out = eval::run_node(node, &refs, shape);
    if let Some(a) = node.fused {
        out.data
            .iter_mut()
            .for_each(|x| *x = activate(a, f64::from(*x)) as f32);
    }
    QValue::F32(out)
}

fn int8_parts(v: &QValue) -> (&[usize], &[i8], Quant) {
    match v {
        QValue::I8 { shape, q, quant } => (shape, q, *quant),
        QValue::F32(_) => panic!("an int8 op reads an f32 value: the pass inserts conversions"),
    }
}

fn run_int8(node: &Node, ins: &[&QValue], shape: Vec<usize>, quant: Quant) -> QValue {
    let zy = quant.zero_point;
    let q: Vec<i8> = match (&node.op, &node.quant) {
        (Op::Quantize, _) => {
            let t = as_f32(ins[0]);
            t.data.iter().map(|&x| quantize_value(x, quant)).collect()
        }
        (
            Op::Conv(c),
            Some(QuantOp::Weighted {
                weight,
                channels,
                clamp,
                ..
            }),
        ) => {
            let (xs, x, xq) = int8_parts(ins[0]);
            let zx = i64::from(xq.zero_point);
            let (cin, h, w) = (xs[1], xs[2], if c.rank == 2 { xs[3] } else { 1 });
            let (h, w) = if c.rank == 2 { (h, w) } else { (1, xs[2]) };
            let (oh, ow) = if c.rank == 2 {
                (shape[2], shape[3])
            } else {
                (1, shape[2])
            };
            let cpg = cin / c.groups;
            let opg = c.out_channels / c.groups;
            let mut y = Vec::with_capacity(c.out_channels * oh * ow);
            for o in 0..c.out_channels {
                let (bias, r) = channels[o];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = i64::from(bias);
                        for ci in 0..cpg {
                            let ic = (o / opg) * cpg + ci;
                            for ky in 0..c.kernel[0] {
                                for kx in 0..c.kernel[1] {
                                    let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize
                                        - c.padding.top as isize;
                                    let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                        - c.padding.left as isize;
                                    let inside = iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < h
                                        && (ix as usize) < w;
                                    let xv = if inside {
                                        i64::from(x[(ic * h + iy as usize) * w + ix as usize])
                                    } else {
                                        zx
                                    };
                                    let wv = i64::from(
                                        weight[((o * cpg + ci) * c.kernel[0] + ky) * c.kernel[1]
                                            + kx],
                                    );
                                    acc = wrap(acc + (xv - zx) * wv);
                                }
                            }
                        }
                        y.push(finish(acc, r, zy, *clamp));
                    }
                }
            }
            y
        }
        (
            Op::Linear(l),
            Some(QuantOp::Weighted {
                weight,
                channels,
                clamp,
                ..
            }),
        ) => {
            let (_, x, xq) = int8_parts(ins[0]);
            let zx = i64::from(xq.zero_point);
            let rows = x.len() / l.in_features;
            let mut y = Vec::with_capacity(rows * l.out_features);
            for r in 0..rows {
                for o in 0..l.out_features {
                    let (bias, rq) = channels[o];
                    let mut acc = i64::from(bias);
                    for i in 0..l.in_features {
                        let xv = i64::from(x[r * l.in_features + i]) - zx;
                        acc = wrap(acc + xv * i64::from(weight[o * l.in_features + i]));
                    }
                    y.push(finish(acc, rq, zy, *clamp));
                }
            }
            y
        }
        (Op::Binary(_), Some(QuantOp::Add { a, b, out, clamp })) => {
            let (_, xa, qa) = int8_parts(ins[0]);
            let (_, xb, qb) = int8_parts(ins[1]);
            let fine = 1i64 << QADD_LEFT_SHIFT;
            xa.iter()
                .zip(xb)
                .map(|(&u, &v)| {
                    let u = rescale((i64::from(u) - i64::from(qa.zero_point)) * fine, *a);
                    let v = rescale((i64::from(v) - i64::from(qb.zero_point)) * fine, *b);
                    finish(u + v, *out, zy, *clamp)
                })
                .collect()
        }
        _ => {
            // Pass-through: the op on the values in units of the scale, `q - zero_point`
            // (padding is then the real 0), rounded half away from zero (averages only).
            let (xs, x, xq) = int8_parts(ins[0]);
            let z = i32::from(xq.zero_point);
            let t = Tensor::new(
                xs.to_vec(),
                x.iter().map(|&v| (i32::from(v) - z) as f32).collect(),
            );
            let out = eval::run_node(node, &[&t], shape.clone());
            out.data
                .iter()
                .map(|&v| (f64::from(v).round() as i64 + i64::from(z)).clamp(-128, 127) as i8)
                .collect()
        }
    };
    debug_assert_eq!(q.len(), numel(&shape));
    QValue::I8 { shape, q, quant }
}

/// Dequantized outputs of the quantized graph.
pub fn outputs(graph: &Graph, inputs: &[Tensor]) -> Vec<Vec<f32>> {
    let values = evaluate(graph, inputs);
    graph
        .outputs
        .iter()
        .map(|&v| values[v].as_ref().map(QValue::to_f32).unwrap_or_default())
        .collect()
}
