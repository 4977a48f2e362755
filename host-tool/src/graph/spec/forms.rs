//! Calls whose ops depend on the input's shape — `transpose`, `unsqueeze`, `squeeze`, `mean`,
//! `chunk`, `split` and indexing (`x[:, None]`, `x[:, 0]`, `x[..., 2:8:2]`) — written as ops of
//! the graph.
//!
//! In: the bound arguments of the call and its input shape. Out: a [`Form`]: the input itself,
//! a chain of ops, or one chain per piece (`chunk`, `split`). Reordering axes is a `Permute`;
//! adding or removing axes of size 1 is a `Reshape`; a mean is a global average pool over the
//! averaged axes gathered last; taking part of an axis is a slice.

use super::signatures::{build, Args, Lit};
use crate::graph::fmt_shape;
use crate::graph::ops::{resolve_dim, AdaptivePool, Op, Permute, PoolKind, Reshape, Slice};

/// What a call computes from its inputs.
#[derive(Debug)]
pub enum Form {
    /// The (first) input itself: `x.contiguous()`, `x.squeeze(1)` of an axis larger than 1.
    Identity,
    /// Ops applied one after the other, the first to the call's inputs.
    Chain(Vec<Op>),
    /// One chain per piece, each applied to the first input (`chunk`, `split`).
    Pieces(Vec<Vec<Op>>),
}

/// The most pieces a `chunk` or `split` may cut (each is a node of the graph).
pub const MAX_PIECES: usize = 4096;

/// The kinds [`lower`] writes itself rather than through [`build`].
const SHAPE_DEPENDENT: &[&str] = &[
    "transpose",
    "unsqueeze",
    "squeeze",
    "mean",
    "chunk",
    "split",
];

/// The form of a call of `kind` (a module name or a function of `signatures`) on inputs of
/// `shapes`.
pub fn lower(kind: &str, a: &Args, shapes: &[&[usize]]) -> Result<Form, String> {
    if !SHAPE_DEPENDENT.contains(&kind) {
        return Ok(Form::Chain(vec![build(kind, a)?]));
    }
    let x = shapes.first().copied().unwrap_or_default();
    let rank = x.len();
    match kind {
        "transpose" => {
            let (d0, d1) = (
                resolve_dim(a.int("dim0")?, rank)?,
                resolve_dim(a.int("dim1")?, rank)?,
            );
            if d0 == d1 {
                return Ok(Form::Identity);
            }
            let mut dims: Vec<usize> = (0..rank).collect();
            dims.swap(d0, d1);
            Ok(Form::Chain(vec![Op::Permute(Permute { dims })]))
        }
        "unsqueeze" => {
            let d = resolve_dim(a.int("dim")?, rank + 1)?;
            let mut shape = x.to_vec();
            shape.insert(d, 1);
            Ok(reshape_to(x, &shape))
        }
        "squeeze" => {
            let dims = match a.get("dim") {
                Lit::None => (0..rank).collect(),
                _ => a
                    .ints("dim")?
                    .into_iter()
                    .map(|d| resolve_dim(d, rank))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let shape: Vec<usize> = (0..rank)
                .filter(|i| !(dims.contains(i) && x[*i] == 1))
                .map(|i| x[i])
                .collect();
            Ok(reshape_to(x, &shape))
        }
        "mean" => mean(a, x),
        "chunk" => {
            let chunks = a.size("chunks")?;
            let d = resolve_dim(a.int("dim")?, rank)?;
            // torch.chunk: pieces of ceil(n / chunks), the last one smaller; possibly fewer.
            let size = x[d].div_ceil(chunks);
            let count = x[d].div_ceil(size);
            if count > MAX_PIECES {
                return Err(too_many(count));
            }
            pieces(x, d, &vec![size; count])
        }
        "split" => {
            let d = resolve_dim(a.int("dim")?, rank)?;
            let n = x[d];
            let sizes: Vec<usize> = match a.get("split_size_or_sections") {
                Lit::Int(_) => {
                    let size = a.size("split_size_or_sections")?;
                    let count = n.div_ceil(size);
                    if count > MAX_PIECES {
                        return Err(too_many(count));
                    }
                    vec![size; count]
                }
                _ => {
                    let sizes = a.ints("split_size_or_sections")?;
                    let sum = sizes.iter().try_fold(0i64, |s, &v| s.checked_add(v));
                    if sizes.iter().any(|&s| s <= 0) || sum != Some(n as i64) {
                        return Err(format!(
                            "split(): the sizes {sizes:?} must be positive and sum exactly to {n} \
                             (the input's size at dimension {d}, shape {})",
                            fmt_shape(x)
                        ));
                    }
                    sizes.into_iter().map(|s| s as usize).collect()
                }
            };
            pieces(x, d, &sizes)
        }
        _ => unreachable!("SHAPE_DEPENDENT lists the kinds matched here"),
    }
}

/// A reshape of `x` to `shape`, or the input itself when nothing changes.
fn reshape_to(x: &[usize], shape: &[usize]) -> Form {
    if x == shape {
        Form::Identity
    } else {
        Form::Chain(vec![reshape_op(shape)])
    }
}

fn reshape_op(shape: &[usize]) -> Op {
    Op::Reshape(Reshape {
        shape: shape.iter().map(|&d| d as i64).collect(),
    })
}

/// `x.mean(dim, keepdim)`: the averaged axes moved last (a `Permute` when they are not), seen as
/// `[1, kept, 1, averaged]` and averaged by a 1x1 adaptive pool, then reshaped to the result.
fn mean(a: &Args, x: &[usize]) -> Result<Form, String> {
    let rank = x.len();
    if a.get("dim") == &Lit::None {
        return Err(
            "mean(): give the axes (dim=...); a mean over every axis is not supported".into(),
        );
    }
    let mut dims = a
        .ints("dim")?
        .into_iter()
        .map(|d| resolve_dim(d, rank))
        .collect::<Result<Vec<_>, _>>()?;
    dims.sort_unstable();
    dims.dedup();
    Ok(Form::Chain(mean_ops(x, &dims, a.flag("keepdim")?)))
}

/// The ops of a mean over the sorted, distinct axes `dims` of `x`: the averaged axes moved last
/// (a `Permute` when they are not), seen as `[1, kept, 1, averaged]`, a global average pool, and
/// the output's shape (a `Reshape`) — or the pool alone for `[2, 3]` of a 4-d tensor. The spec's
/// `mean` and the importer's `aten.mean` both write these.
pub fn mean_ops(x: &[usize], dims: &[usize], keepdim: bool) -> Vec<Op> {
    let rank = x.len();
    let out: Vec<usize> = (0..rank)
        .filter_map(|i| match (dims.contains(&i), keepdim) {
            (false, _) => Some(x[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let pool = Op::AdaptivePool(AdaptivePool {
        kind: PoolKind::Avg,
        rank: 2,
        output: [Some(1), Some(1)],
    });
    let mut ops = Vec::new();
    let pooled = if rank == 4 && dims == [2, 3] {
        ops.push(pool);
        vec![x[0], x[1], 1, 1]
    } else {
        let kept: Vec<usize> = (0..rank).filter(|i| !dims.contains(i)).collect();
        let order: Vec<usize> = kept.iter().chain(dims).copied().collect();
        if order.iter().enumerate().any(|(i, &d)| i != d) {
            ops.push(Op::Permute(Permute { dims: order }));
        }
        let kept_size: usize = kept.iter().map(|&i| x[i]).product();
        let averaged: usize = dims.iter().map(|&i| x[i]).product();
        ops.push(reshape_op(&[1, kept_size, 1, averaged]));
        ops.push(pool);
        vec![1, kept_size, 1, 1]
    };
    if pooled != out {
        ops.push(reshape_op(&out));
    }
    ops
}

/// The slice `start..end` (resolved: `start < end <= size`) with `step >= 1` of axis `dim`.
fn slice_op(dim: usize, start: usize, end: usize, step: usize) -> Op {
    Op::Slice(Slice {
        dim: dim as i64,
        start: start as i64,
        end: end as i64,
        step: step as i64,
    })
}

/// How many elements `start..end` by `step` takes.
fn slice_len(start: usize, end: usize, step: usize) -> usize {
    (end - start).div_ceil(step)
}

/// Consecutive pieces of `sizes` along axis `d` of `x`, the last one cut to what is left.
fn pieces(x: &[usize], d: usize, sizes: &[usize]) -> Result<Form, String> {
    if sizes.len() > MAX_PIECES {
        return Err(too_many(sizes.len()));
    }
    // One piece is the whole input.
    if sizes.len() == 1 {
        return Ok(Form::Pieces(vec![Vec::new()]));
    }
    let mut start = 0;
    let mut out = Vec::new();
    for &size in sizes {
        let end = (start + size).min(x[d]);
        out.push(vec![slice_op(d, start, end, 1)]);
        start = end;
    }
    Ok(Form::Pieces(out))
}

fn too_many(count: usize) -> String {
    format!("{count} pieces; at most {MAX_PIECES} (each is a layer)")
}

/// One entry of a tensor index, its numbers evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IndexItem {
    /// `None`: a new axis of size 1.
    NewAxis,
    /// An integer: that element, the axis dropped.
    At(i64),
    /// `start:stop:step`.
    Range(Option<i64>, Option<i64>, Option<i64>),
    /// `...`: as many full axes as the other entries leave.
    Ellipsis,
}

/// Python's slice of a sequence of `len` elements: `(start, end, step)` with the bounds clamped,
/// `end >= start`, or why not (a zero or negative step).
pub fn resolve_slice(
    len: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Result<(usize, usize, usize), String> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err("slice step cannot be zero".into());
    }
    if step < 0 {
        return Err(format!(
            "slice step {step}: negative steps are not supported"
        ));
    }
    let n = len as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(n) } else { v }).clamp(0, n) as usize;
    let start = start.map_or(0, clamp);
    let end = stop.map_or(len, clamp).max(start);
    Ok((start, end, step as usize))
}

/// `x[items]` on a tensor of shape `x`: slices of the axes taken in part, then a reshape that
/// drops the integer-indexed axes and inserts the `None` ones.
pub fn index(x: &[usize], items: &[IndexItem]) -> Result<Form, String> {
    let consuming = items
        .iter()
        .filter(|i| matches!(i, IndexItem::At(_) | IndexItem::Range(..)))
        .count();
    if items.iter().filter(|i| **i == IndexItem::Ellipsis).count() > 1 {
        return Err("an index can only have a single ellipsis ('...')".into());
    }
    if consuming > x.len() {
        return Err(format!(
            "too many indices for a tensor of dimension {} (shape {})",
            x.len(),
            fmt_shape(x)
        ));
    }
    let mut expanded = Vec::new();
    for item in items {
        if *item == IndexItem::Ellipsis {
            expanded.extend(std::iter::repeat_n(
                IndexItem::Range(None, None, None),
                x.len() - consuming,
            ));
        } else {
            expanded.push(*item);
        }
    }
    let consumed = expanded
        .iter()
        .filter(|i| !matches!(i, IndexItem::NewAxis))
        .count();
    expanded.extend(std::iter::repeat_n(
        IndexItem::Range(None, None, None),
        x.len() - consumed,
    ));
    let (mut dim, mut out, mut slices) = (0, Vec::new(), Vec::new());
    for item in expanded {
        let size = x.get(dim).copied().unwrap_or(0);
        match item {
            IndexItem::NewAxis => {
                out.push(1);
                continue;
            }
            IndexItem::At(i) => {
                let n = size as i64;
                if i < -n || i >= n {
                    return Err(format!(
                        "index {i} is out of bounds for dimension {dim} with size {size}"
                    ));
                }
                let start = if i < 0 { i + n } else { i } as usize;
                if size > 1 {
                    slices.push((dim, start, start + 1, 1));
                }
            }
            IndexItem::Range(start, stop, step) => {
                let (start, end, step) = resolve_slice(size, start, stop, step)?;
                let len = slice_len(start, end, step);
                if len == 0 {
                    return Err(format!(
                        "the slice {start}:{end}:{step} of dimension {dim} (size {size}) is empty"
                    ));
                }
                if len < size {
                    slices.push((dim, start, end, step));
                }
                out.push(len);
            }
            IndexItem::Ellipsis => unreachable!("expanded above"),
        }
        dim += 1;
    }
    let mut sliced = x.to_vec();
    let mut ops = Vec::new();
    for (dim, start, end, step) in slices {
        sliced[dim] = slice_len(start, end, step);
        ops.push(slice_op(dim, start, end, step));
    }
    if sliced != out {
        ops.push(reshape_op(&out));
    }
    Ok(if ops.is_empty() {
        Form::Identity
    } else {
        Form::Chain(ops)
    })
}
