//! The plain fp32 reference evaluator: the oracle for the passes and for the firmware kernels.
//!
//! In: a bound [`Graph`] and one tensor per graph input (batch 1, NCHW). Out: one tensor per graph
//! output. Every op is a direct loop over its definition, accumulating in f64 and rounding to f32
//! once per output element; nothing is clever, so that it is obviously right.

use crate::graph::ops::{
    broadcast_shapes, pool_chw, resolve_dim, Activation, AdaptivePool, BinaryKind, Conv,
    ConvTranspose, Op, Pool, PoolKind, Recurrent, Upsample,
};
use crate::graph::{fmt_shape, numel, Graph, Node, Tensor};
use nnblob_format::meta::{resize_taps, Cell, ResizeMode};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("layer '{0}' has no parameters: bind a state_dict first")]
    Unbound(String),
    #[error("the graph takes {expected} input(s), {got} given")]
    InputCount { expected: usize, got: usize },
    #[error("input '{name}' should have shape {expected}, got {got}")]
    InputShape {
        name: String,
        expected: String,
        got: String,
    },
}

/// Runs `graph` on `inputs`.
pub fn evaluate(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let values = evaluate_all(graph, inputs)?;
    Ok(graph
        .outputs
        .iter()
        .map(|&v| values[v].clone().expect("outputs are computed"))
        .collect())
}

/// Runs `graph` on `inputs` and returns every value it computes (`None` for values no node
/// computes and no input gives).
pub fn evaluate_all(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>, EvalError> {
    if inputs.len() != graph.inputs.len() {
        return Err(EvalError::InputCount {
            expected: graph.inputs.len(),
            got: inputs.len(),
        });
    }
    let mut values: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    for (&v, t) in graph.inputs.iter().zip(inputs) {
        if t.shape != graph.shape(v) {
            return Err(EvalError::InputShape {
                name: graph.values[v].name.clone(),
                expected: fmt_shape(graph.shape(v)),
                got: fmt_shape(&t.shape),
            });
        }
        values[v] = Some(t.clone());
    }
    for node in &graph.nodes {
        if node.params.len() != node.op.params().len() {
            return Err(EvalError::Unbound(node.name.clone()));
        }
        let ins: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|&v| values[v].as_ref().expect("graph is in topological order"))
            .collect();
        let out_shape = graph.shape(node.output).to_vec();
        let mut out = run_node(node, &ins, out_shape);
        if let Some(a) = node.fused {
            out.data
                .iter_mut()
                .for_each(|x| *x = activate(a, *x as f64) as f32);
        }
        values[node.output] = Some(out);
    }
    Ok(values)
}

/// One op on its inputs; the output shape is the one shape inference recorded.
pub fn run_node(node: &Node, ins: &[&Tensor], out_shape: Vec<usize>) -> Tensor {
    let p = &node.params;
    let x = ins[0];
    let data = match &node.op {
        Op::Conv(c) => conv(
            c,
            x,
            &p[0].data,
            p.get(1).map(|b| b.data.as_slice()),
            &out_shape,
        ),
        Op::ConvTranspose(c) => conv_transpose(
            c,
            x,
            &p[0].data,
            p.get(1).map(|b| b.data.as_slice()),
            &out_shape,
        ),
        Op::Linear(l) => {
            let rows = numel(&x.shape) / l.in_features;
            let mut y = Vec::with_capacity(rows * l.out_features);
            for r in 0..rows {
                let xr = &x.data[r * l.in_features..(r + 1) * l.in_features];
                for o in 0..l.out_features {
                    let w = &p[0].data[o * l.in_features..(o + 1) * l.in_features];
                    let mut acc = p.get(1).map_or(0.0, |b| b.data[o] as f64);
                    for (xi, wi) in xr.iter().zip(w) {
                        acc += *xi as f64 * *wi as f64;
                    }
                    y.push(acc as f32);
                }
            }
            y
        }
        Op::BatchNorm(b) => per_channel(x, |c, v| {
            let inv = 1.0 / (p[3].data[c] as f64 + b.eps).sqrt();
            (v - p[2].data[c] as f64) * inv * p[0].data[c] as f64 + p[1].data[c] as f64
        }),
        Op::LayerNorm(l) => {
            let n = numel(&l.shape);
            let param = |k: usize, i: usize| p.get(k).map(|t| f64::from(t.data[i % n]));
            normalize(x, n, l.eps, |i| {
                (param(0, i).unwrap_or(1.0), param(1, i).unwrap_or(0.0))
            })
        }
        Op::GroupNorm(g) => {
            let spatial = numel(&x.shape[2..]);
            let channel = |i: usize| (i / spatial) % x.shape[1];
            let param = |k: usize, i: usize| p.get(k).map(|t| f64::from(t.data[channel(i)]));
            normalize(x, x.data.len() / g.groups, g.eps, |i| {
                (param(0, i).unwrap_or(1.0), param(1, i).unwrap_or(0.0))
            })
        }
        Op::ScaleShift(_) => per_channel(x, |c, v| v * p[0].data[c] as f64 + p[1].data[c] as f64),
        Op::PRelu(_) => per_channel(x, |c, v| {
            let slope = p[0].data[if p[0].data.len() == 1 { 0 } else { c }] as f64;
            if v >= 0.0 {
                v
            } else {
                slope * v
            }
        }),
        Op::Activation(a) => x
            .data
            .iter()
            .map(|&v| activate(*a, v as f64) as f32)
            .collect(),
        Op::Dropout | Op::Flatten(_) | Op::Reshape(_) | Op::Quantize | Op::Dequantize => {
            x.data.clone()
        }
        Op::Softmax(s) => softmax(x, resolve_dim(s.dim, x.shape.len()).unwrap_or(0)),
        Op::Pool(pool_op) => pool(pool_op, x, &out_shape),
        Op::AdaptivePool(a) => adaptive_pool(a, x, &out_shape),
        Op::Upsample(u) => upsample(u, x, &out_shape),
        Op::ZeroPad(z) => {
            let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3]);
            let (oh, ow) = (out_shape[2], out_shape[3]);
            let mut y = vec![0.0; c * oh * ow];
            for ci in 0..c {
                for i in 0..h {
                    for j in 0..w {
                        y[(ci * oh + i + z.padding.top) * ow + j + z.padding.left] =
                            x.data[(ci * h + i) * w + j];
                    }
                }
            }
            y
        }
        Op::Permute(perm) => {
            let in_strides = strides(&x.shape);
            (0..numel(&out_shape))
                .map(|i| {
                    let idx = unravel(i, &out_shape);
                    let src: usize = perm
                        .dims
                        .iter()
                        .enumerate()
                        .map(|(k, &d)| idx[k] * in_strides[d])
                        .sum();
                    x.data[src]
                })
                .collect()
        }
        Op::Slice(slice) => {
            let (dim, start, _) = slice.resolve(&x.shape).expect("shapes were checked");
            let in_strides = strides(&x.shape);
            (0..numel(&out_shape))
                .map(|i| {
                    let mut idx = unravel(i, &out_shape);
                    idx[dim] = start + idx[dim] * slice.step as usize;
                    x.data[idx
                        .iter()
                        .zip(&in_strides)
                        .map(|(i, s)| i * s)
                        .sum::<usize>()]
                })
                .collect()
        }
        Op::Concat(cat) => {
            let dim = resolve_dim(cat.dim, out_shape.len()).unwrap_or(0);
            let outer = numel(&out_shape[..dim]);
            let mut y = Vec::with_capacity(numel(&out_shape));
            for o in 0..outer {
                for t in ins {
                    let chunk = numel(&t.shape[dim..]);
                    y.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
                }
            }
            y
        }
        Op::Affine(f) => x
            .data
            .iter()
            .map(|&v| (f64::from(v) * f.scale + f.shift) as f32)
            .collect(),
        Op::Recurrent(r) => recurrent(r, p, ins[0]),
        Op::MatMul(_) => {
            let (a, b) = (ins[0], ins[1]);
            let r = a.shape.len();
            let (m, k, n) = (a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]);
            let batch = numel(&out_shape[..r - 2]);
            // An operand with one matrix serves every batch.
            let at = |t: &Tensor, i: usize, len: usize| {
                if t.data.len() == len {
                    0
                } else {
                    i * len
                }
            };
            let mut y = Vec::with_capacity(batch * m * n);
            for i in 0..batch {
                let (ao, bo) = (at(a, i, m * k), at(b, i, k * n));
                for row in 0..m {
                    for col in 0..n {
                        let acc: f64 = (0..k)
                            .map(|p| {
                                f64::from(a.data[ao + row * k + p])
                                    * f64::from(b.data[bo + p * n + col])
                            })
                            .sum();
                        y.push(acc as f32);
                    }
                }
            }
            y
        }
        Op::Binary(b) => {
            let (a, c) = (ins[0], ins[1]);
            let shape = broadcast_shapes(&a.shape, &c.shape).expect("shapes were checked");
            (0..numel(&shape))
                .map(|i| {
                    let idx = unravel(i, &shape);
                    let (u, v) = (
                        a.data[broadcast_index(&idx, &a.shape)] as f64,
                        c.data[broadcast_index(&idx, &c.shape)] as f64,
                    );
                    (match b.kind {
                        BinaryKind::Add => u + v,
                        BinaryKind::Mul => u * v,
                    }) as f32
                })
                .collect()
        }
    };
    Tensor::new(out_shape, data)
}

/// An activation in f64.
pub fn activate(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu { negative_slope } => {
            if x >= 0.0 {
                x
            } else {
                x * negative_slope as f64
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Activation::Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Activation::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Gelu { tanh: true } => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
    }
}

/// The error function to about 1e-15: Taylor series near 0, continued fraction for erfc beyond.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..60 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if a < 8.0 {
        let mut k = a;
        for n in (1..80).rev() {
            k = a + (n as f64 / 2.0) / k;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * k)
    } else {
        1.0
    };
    r.copysign(x)
}

/// Applies `f(channel, value)` element-wise, the channel being axis 1.
fn per_channel(x: &Tensor, f: impl Fn(usize, f64) -> f64) -> Vec<f32> {
    let c = x.shape.get(1).copied().unwrap_or(1);
    let inner = numel(x.shape.get(2..).unwrap_or(&[]));
    x.data
        .iter()
        .enumerate()
        .map(|(i, &v)| f((i / inner) % c, v as f64) as f32)
        .collect()
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Flat index into `shape` of the broadcast multi-index `idx` (right-aligned, size-1 axes fixed).
fn broadcast_index(idx: &[usize], shape: &[usize]) -> usize {
    let pad = idx.len() - shape.len();
    let s = strides(shape);
    (0..shape.len())
        .map(|d| {
            if shape[d] == 1 {
                0
            } else {
                idx[d + pad] * s[d]
            }
        })
        .sum()
}

fn conv(c: &Conv, x: &Tensor, w: &[f32], bias: Option<&[f32]>, out_shape: &[usize]) -> Vec<f32> {
    let (ci, h, wd) = if c.rank == 2 {
        (x.shape[1], x.shape[2], x.shape[3])
    } else {
        (x.shape[1], 1, x.shape[2])
    };
    let (co, oh, ow) = if c.rank == 2 {
        (out_shape[1], out_shape[2], out_shape[3])
    } else {
        (out_shape[1], 1, out_shape[2])
    };
    let (cig, cog) = (ci / c.groups, co / c.groups);
    let [kh, kw] = c.kernel;
    let mut y = Vec::with_capacity(co * oh * ow);
    for o in 0..co {
        let g = o / cog;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias.map_or(0.0, |b| b[o] as f64);
                for i in 0..cig {
                    let ch = g * cig + i;
                    for ky in 0..kh {
                        let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize
                            - c.padding.top as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize
                                - c.padding.left as isize;
                            if ix < 0 || ix >= wd as isize {
                                continue;
                            }
                            let xv = x.data[(ch * h + iy as usize) * wd + ix as usize] as f64;
                            let wv = w[((o * cig + i) * kh + ky) * kw + kx] as f64;
                            acc += xv * wv;
                        }
                    }
                }
                y.push(acc as f32);
            }
        }
    }
    y
}

/// A transposed convolution by its definition: every input pixel scatters `x * w` over the
/// output pixels its taps reach, in f64, the bias first.
fn conv_transpose(
    c: &ConvTranspose,
    x: &Tensor,
    w: &[f32],
    bias: Option<&[f32]>,
    out_shape: &[usize],
) -> Vec<f32> {
    let spatial = |s: &[usize]| if c.rank == 2 { (s[2], s[3]) } else { (1, s[2]) };
    let ((h, wd), (oh, ow)) = (spatial(&x.shape), spatial(out_shape));
    let (ipg, opg) = (c.in_channels / c.groups, c.out_channels / c.groups);
    let [kh, kw] = c.kernel;
    let mut y: Vec<f64> = (0..c.out_channels * oh * ow)
        .map(|i| bias.map_or(0.0, |b| b[i / (oh * ow)] as f64))
        .collect();
    for ic in 0..c.in_channels {
        let g = ic / ipg;
        for iy in 0..h {
            for ix in 0..wd {
                let v = x.data[(ic * h + iy) * wd + ix] as f64;
                for oc in 0..opg {
                    let o = g * opg + oc;
                    for ky in 0..kh {
                        let oy = (iy * c.stride[0] + ky * c.dilation[0]) as isize
                            - c.padding[0] as isize;
                        if oy < 0 || oy as usize >= oh {
                            continue;
                        }
                        for kx in 0..kw {
                            let ox = (ix * c.stride[1] + kx * c.dilation[1]) as isize
                                - c.padding[1] as isize;
                            if ox < 0 || ox as usize >= ow {
                                continue;
                            }
                            let wv = w[((ic * opg + oc) * kh + ky) * kw + kx] as f64;
                            y[(o * oh + oy as usize) * ow + ox as usize] += v * wv;
                        }
                    }
                }
            }
        }
    }
    y.into_iter().map(|v| v as f32).collect()
}

/// The channels and (height, width) of a pool's input and its output's (height, width) (a 1-d
/// pool's `[N, C, L]` is a height of 1).
fn pool_dims(rank: usize, x: &Tensor, out_shape: &[usize]) -> (usize, [usize; 2], [usize; 2]) {
    let shape = |s: &[usize]| pool_chw(s, rank).expect("shapes were inferred");
    let (c, hw) = shape(&x.shape);
    (c, hw, shape(out_shape).1)
}

fn pool(p: &Pool, x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let (c, [h, w], [oh, ow]) = pool_dims(p.rank, x, out_shape);
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let y0 = (oy * p.stride[0]) as isize - p.padding[0] as isize;
                let x0 = (ox * p.stride[1]) as isize - p.padding[1] as isize;
                let v = match p.kind {
                    PoolKind::Max => {
                        let mut m = f64::NEG_INFINITY;
                        for ky in 0..p.kernel[0] {
                            for kx in 0..p.kernel[1] {
                                let iy = y0 + (ky * p.dilation[0]) as isize;
                                let ix = x0 + (kx * p.dilation[1]) as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    m = m.max(
                                        x.data[(ch * h + iy as usize) * w + ix as usize] as f64,
                                    );
                                }
                            }
                        }
                        m
                    }
                    PoolKind::Avg => {
                        // PyTorch: the window is clipped to the padded input for the divisor,
                        // and to the input itself for the sum.
                        let y1 = (y0 + p.kernel[0] as isize).min((h + p.padding[0]) as isize);
                        let x1 = (x0 + p.kernel[1] as isize).min((w + p.padding[1]) as isize);
                        let padded_count = (y1 - y0) * (x1 - x0);
                        let (ys, xs) = (y0.max(0), x0.max(0));
                        let (ye, xe) = (y1.min(h as isize), x1.min(w as isize));
                        let mut sum = 0.0;
                        for iy in ys..ye {
                            for ix in xs..xe {
                                sum += x.data[(ch * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                        let count = if p.count_include_pad {
                            padded_count
                        } else {
                            (ye - ys) * (xe - xs)
                        };
                        sum / count as f64
                    }
                };
                y.push(v as f32);
            }
        }
    }
    y
}

fn adaptive_pool(a: &AdaptivePool, x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let (c, [h, w], [oh, ow]) = pool_dims(a.rank, x, out_shape);
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            let (ys, ye) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (xs, xe) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let bin = (ys..ye).flat_map(|iy| (xs..xe).map(move |ix| (ch * h + iy) * w + ix));
                let v = match a.kind {
                    PoolKind::Max => bin.fold(f64::NEG_INFINITY, |m, i| m.max(x.data[i] as f64)),
                    PoolKind::Avg => {
                        let sum: f64 = bin.map(|i| x.data[i] as f64).sum();
                        sum / ((ye - ys) * (xe - xs)) as f64
                    }
                };
                y.push(v as f32);
            }
        }
    }
    y
}

/// Each run of `group` elements normalized by its mean and biased variance, then
/// `* weight + bias` with the pair `affine(i)` gives element `i`.
fn normalize(x: &Tensor, group: usize, eps: f64, affine: impl Fn(usize) -> (f64, f64)) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.data.len());
    for (g, run) in x.data.chunks(group).enumerate() {
        let mean = run.iter().map(|&v| f64::from(v)).sum::<f64>() / group as f64;
        let var = run
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / group as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for (j, &v) in run.iter().enumerate() {
            let (w, b) = affine(g * group + j);
            y.push(((f64::from(v) - mean) * inv * w + b) as f32);
        }
    }
    y
}

/// PyTorch's taps for each axis (the format's definition, in f32 as PyTorch computes them), then
/// the weighted sum of the (up to) four input elements in f64.
fn upsample(u: &Upsample, x: &Tensor, out_shape: &[usize]) -> Vec<f32> {
    let (c, [h, w], [oh, ow]) = pool_dims(x.shape.len() - 2, x, out_shape);
    let scale = u
        .coord_scales(&x.shape, out_shape)
        .expect("shapes were inferred");
    let mode = u.mode.wire();
    let tap = |axis: usize, inp: usize, out: usize, o: usize| {
        let (i0, i1, w0, w1) = resize_taps(mode, u.align_corners, scale[axis], inp, out, o);
        (i0, i1, f64::from(w0), f64::from(w1))
    };
    let mut y = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            let (y0, y1, wy0, wy1) = tap(0, h, oh, oy);
            for ox in 0..ow {
                let (x0, x1, wx0, wx1) = tap(1, w, ow, ox);
                let at = |iy: usize, ix: usize| f64::from(x.data[(ch * h + iy) * w + ix]);
                let v = if mode == ResizeMode::Nearest {
                    at(y0, x0)
                } else {
                    (at(y0, x0) * wx0 + at(y0, x1) * wx1) * wy0
                        + (at(y1, x0) * wx0 + at(y1, x1) * wx1) * wy1
                };
                y.push(v as f32);
            }
        }
    }
    y
}

fn softmax(x: &Tensor, dim: usize) -> Vec<f32> {
    let n = x.shape[dim];
    let inner = numel(&x.shape[dim + 1..]);
    let outer = numel(&x.shape[..dim]);
    let mut y = vec![0.0; x.data.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let max = (0..n)
                .map(|k| x.data[at(k)] as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..n).map(|k| (x.data[at(k)] as f64 - max).exp()).sum();
            for k in 0..n {
                y[at(k)] = ((x.data[at(k)] as f64 - max).exp() / sum) as f32;
            }
        }
    }
    y
}

/// A GRU / LSTM layer from a zero state: PyTorch's equations with `h` and `c` kept in f64 from
/// step to step, each output rounded once.
fn recurrent(r: &Recurrent, p: &[Tensor], x: &Tensor) -> Vec<f32> {
    let (h, i, g) = (r.hidden_size, r.input_size, r.cell.gates());
    let (batch, steps) = r.batch_steps(&x.shape);
    let row = |t: usize, b: usize| {
        if r.batch_first {
            b * steps + t
        } else {
            t * batch + b
        }
    };
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    // `bias + weight · v` for every gate row.
    let gates = |w: &Tensor, bias: Option<&Tensor>, v: &[f64]| -> Vec<f64> {
        (0..g * h)
            .map(|o| {
                let dot: f64 = v
                    .iter()
                    .zip(&w.data[o * v.len()..(o + 1) * v.len()])
                    .map(|(&a, &b)| a * f64::from(b))
                    .sum();
                dot + bias.map_or(0.0, |b| f64::from(b.data[o]))
            })
            .collect()
    };
    let (b_ih, b_hh) = (p.get(2), p.get(3));
    let mut y = vec![0.0f32; steps * batch * h];
    for b in 0..batch {
        let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
        for s in 0..steps {
            let t = if r.reverse { steps - 1 - s } else { s };
            let at = row(t, b);
            let xt: Vec<f64> = x.data[at * i..(at + 1) * i]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let (gx, gh) = (gates(&p[0], b_ih, &xt), gates(&p[1], b_hh, &hs));
            for j in 0..h {
                let sum = |k: usize| gx[k * h + j] + gh[k * h + j];
                match r.cell {
                    Cell::Gru => {
                        let (rg, z) = (sigmoid(sum(0)), sigmoid(sum(1)));
                        let n = (gx[2 * h + j] + rg * gh[2 * h + j]).tanh();
                        hs[j] = n + z * (hs[j] - n);
                    }
                    Cell::Lstm => {
                        let (ig, f, gg, o) = (
                            sigmoid(sum(0)),
                            sigmoid(sum(1)),
                            sum(2).tanh(),
                            sigmoid(sum(3)),
                        );
                        cs[j] = f * cs[j] + ig * gg;
                        hs[j] = o * cs[j].tanh();
                    }
                }
            }
            for (dst, &v) in y[at * h..(at + 1) * h].iter_mut().zip(&hs) {
                *dst = v as f32;
            }
        }
    }
    y
}
