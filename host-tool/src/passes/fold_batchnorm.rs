//! Folds eval-mode BatchNorm into the convolution or linear layer before it, and turns every
//! other BatchNorm into a per-channel scale-and-shift.
//!
//! BatchNorm computes `y = (x - mean) / sqrt(var + eps) * gamma + beta`, i.e. `y = x * s + t` with
//! `s = gamma / sqrt(var + eps)` and `t = beta - mean * s` ([`scale_shift`], in f64). Folding into
//! a producer `x = W * in + b` gives `W'[o] = W[o] * s[o]` and `b' = b * s + t`, for any group
//! count (the output channel of a weight element is the first axis, the second with the group for a
//! transposed convolution). It is done when the producer is a Conv, ConvTranspose or Linear with no
//! fused activation, its output channels are the BatchNorm's channels
//! (axis 1), and the BatchNorm is its output's sole reader (not a graph output). Weights are folded
//! in f64 and rounded to f32 once.

use crate::graph::ops::ScaleShift;
use crate::graph::{Graph, Op, Tensor};

/// BatchNorm's per-channel affine form `(scale, shift)`, in f64. Refuses statistics that make it
/// undefined (a negative `var + eps`), naming the channel.
pub fn scale_shift(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut scale = Vec::with_capacity(gamma.len());
    let mut shift = Vec::with_capacity(gamma.len());
    for c in 0..gamma.len() {
        let denom = var[c] as f64 + eps;
        if denom.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(format!(
                "channel {c}: running_var + eps = {denom} is not positive"
            ));
        }
        let s = gamma[c] as f64 / denom.sqrt();
        scale.push(s);
        shift.push(beta[c] as f64 - mean[c] as f64 * s);
    }
    Ok((scale, shift))
}

/// Scales the weight rows and folds the shift into the bias: `(W', b')`. `out_channel(i)` is the
/// output channel of weight element `i` (`i / (len / out)` for a weight with the output
/// channels first; a transposed convolution has its input channels first).
pub fn fold_into(
    weight: &Tensor,
    bias: Option<&Tensor>,
    scale: &[f64],
    shift: &[f64],
    out_channel: impl Fn(usize) -> usize,
) -> (Tensor, Tensor) {
    let w = weight
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * scale[out_channel(i)]) as f32)
        .collect();
    let b = (0..scale.len())
        .map(|o| (bias.map_or(0.0, |b| b.data[o] as f64) * scale[o] + shift[o]) as f32)
        .collect();
    (
        Tensor::new(weight.shape.clone(), w),
        Tensor::new(vec![scale.len()], b),
    )
}

fn foldable_producer(graph: &Graph, bn_index: usize) -> Option<usize> {
    let bn = &graph.nodes[bn_index];
    let pi = graph.producer(bn.inputs[0])?;
    let p = &graph.nodes[pi];
    let channels_on_axis1 = match &p.op {
        Op::Conv(_) | Op::ConvTranspose(_) => true,
        Op::Linear(_) => graph.shape(p.output).len() == 2,
        _ => false,
    };
    (channels_on_axis1 && p.fused.is_none() && graph.has_sole_consumer(p.output, bn_index))
        .then_some(pi)
}

/// Folds or converts every BatchNorm. On an unbound graph the rewrite is structural only (ops and
/// shapes, no parameters), which is what summaries and the planner need. Statistics with
/// `running_var + eps <= 0` (impossible in a checkpoint PyTorch trained) leave that BatchNorm as it is.
pub fn apply(mut graph: Graph) -> Graph {
    let mut i = 0;
    while i < graph.nodes.len() {
        let Op::BatchNorm(bn) = &graph.nodes[i].op else {
            i += 1;
            continue;
        };
        let p = &graph.nodes[i].params;
        let affine = if p.is_empty() {
            None
        } else {
            match scale_shift(&p[0].data, &p[1].data, &p[2].data, &p[3].data, bn.eps) {
                Ok(affine) => Some(affine),
                Err(_) => {
                    i += 1;
                    continue;
                }
            }
        };
        let channels = bn.num_features;
        match foldable_producer(&graph, i) {
            Some(pi) => {
                let producer = &mut graph.nodes[pi];
                if let Some((scale, shift)) = &affine {
                    let per_out = producer.params[0].data.len() / scale.len();
                    let (w, b) = match &producer.op {
                        Op::ConvTranspose(c) => {
                            let c = c.clone();
                            let p = &producer.params;
                            fold_into(&p[0], p.get(1), scale, shift, |i| c.weight_out_channel(i))
                        }
                        _ => {
                            let p = &producer.params;
                            fold_into(&p[0], p.get(1), scale, shift, |i| i / per_out)
                        }
                    };
                    producer.params = vec![w, b];
                }
                match &mut producer.op {
                    Op::Conv(c) => c.bias = true,
                    Op::ConvTranspose(c) => c.bias = true,
                    Op::Linear(l) => l.bias = true,
                    _ => unreachable!(
                        "foldable_producer accepts Conv, ConvTranspose and Linear only"
                    ),
                }
                graph.bypass_node(i);
            }
            None => {
                let node = &mut graph.nodes[i];
                node.op = Op::ScaleShift(ScaleShift { channels });
                let to_f32 =
                    |v: &[f64]| Tensor::new(vec![v.len()], v.iter().map(|&x| x as f32).collect());
                node.params = affine.map_or_else(Vec::new, |(scale, shift)| {
                    vec![to_f32(&scale), to_f32(&shift)]
                });
                node.module = None;
                i += 1;
            }
        }
    }
    graph.compact();
    graph
}
