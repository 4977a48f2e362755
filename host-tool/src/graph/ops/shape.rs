//! Layout ops: `nn.ZeroPad2d`, `flatten`, `reshape`, `permute` and channel concatenation.

use super::{expect_inputs, ShapeResult};
use crate::graph::{fmt_shape, numel};

/// `nn.ZeroPad2d((left, right, top, bottom))`.
#[derive(Clone, Debug, PartialEq)]
pub struct ZeroPad {
    pub padding: super::Padding,
}

impl ZeroPad {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        if x.len() != 4 {
            return Err(format!("expects a 4-d input, got {}", fmt_shape(x)));
        }
        let p = &self.padding;
        let grow = |n: usize, a: usize, b: usize| {
            n.checked_add(a)
                .and_then(|n| n.checked_add(b))
                .ok_or_else(|| format!("padding {a} + {b} is too large"))
        };
        Ok(vec![
            x[0],
            x[1],
            grow(x[2], p.top, p.bottom)?,
            grow(x[3], p.left, p.right)?,
        ])
    }
}

/// `flatten(x, start_dim, end_dim)`; the dims may be negative, as in PyTorch, and are resolved
/// against the input's rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Flatten {
    pub start_dim: i64,
    pub end_dim: i64,
}

/// Resolves a possibly negative axis against `rank`.
pub fn resolve_dim(dim: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let d = if dim < 0 { dim + r } else { dim };
    if (0..r.max(1)).contains(&d) {
        Ok(d as usize)
    } else {
        Err(format!("dim {dim} is out of range for a {rank}-d input"))
    }
}

impl Flatten {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let s = resolve_dim(self.start_dim, x.len())?;
        let e = resolve_dim(self.end_dim, x.len())?;
        if s > e {
            return Err(format!(
                "start_dim {} comes after end_dim {}",
                self.start_dim, self.end_dim
            ));
        }
        let mut out = x[..s].to_vec();
        out.push(numel(&x[s..=e]));
        out.extend_from_slice(&x[e + 1..]);
        Ok(out)
    }
}

/// `reshape(x, shape)`; at most one `-1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reshape {
    pub shape: Vec<i64>,
}

impl Reshape {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let total = numel(inputs[0]);
        let known: Option<i64> = self
            .shape
            .iter()
            .filter(|&&d| d >= 0)
            .try_fold(1i64, |n, &d| n.checked_mul(d));
        // An overflowing product is more elements than any input has.
        let known = known.unwrap_or(i64::MAX);
        let wild = self.shape.iter().filter(|&&d| d == -1).count();
        let bad = self.shape.iter().any(|&d| d < -1) || wild > 1;
        let fits = if wild == 1 {
            known > 0 && total as i64 % known == 0
        } else {
            known == total as i64
        };
        if bad || !fits {
            return Err(format!(
                "shape {:?} is invalid for an input of {} elements {}",
                self.shape,
                total,
                fmt_shape(inputs[0])
            ));
        }
        Ok(self
            .shape
            .iter()
            .map(|&d| {
                if d == -1 {
                    total / known as usize
                } else {
                    d as usize
                }
            })
            .collect())
    }
}

/// `permute(x, dims)`: output axis `i` is input axis `dims[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Permute {
    pub dims: Vec<usize>,
}

impl Permute {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let mut seen = vec![false; x.len()];
        if self.dims.len() != x.len() {
            return Err(format!(
                "{} dims given for a {}-d input",
                self.dims.len(),
                x.len()
            ));
        }
        for &d in &self.dims {
            if d >= x.len() || std::mem::replace(&mut seen[d], true) {
                return Err(format!(
                    "dims {:?} are not a permutation of 0..{}",
                    self.dims,
                    x.len()
                ));
            }
        }
        Ok(self.dims.iter().map(|&d| x[d]).collect())
    }
}

/// `cat([a, b, ...], dim)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Concat {
    /// The axis; negative counts from the end, as in PyTorch.
    pub dim: i64,
}

impl Concat {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        let first = inputs.first().ok_or("needs at least one tensor")?;
        let dim = resolve_dim(self.dim, first.len())?;
        let mut out = first.to_vec();
        for x in &inputs[1..] {
            let same_other =
                x.len() == first.len() && (0..x.len()).all(|i| i == dim || x[i] == first[i]);
            if !same_other {
                return Err(format!(
                    "cannot concatenate {} and {} along dim {}",
                    fmt_shape(first),
                    fmt_shape(x),
                    self.dim
                ));
            }
            out[dim] += x[dim];
        }
        Ok(out)
    }
}

/// `x[..., start:end:step, ...]` on axis `dim`: Python's slice rules (negative bounds count from
/// the end, bounds past either end clamp, `end = i64::MAX` is "to the end"), `step >= 1`. `chunk`
/// and `split` are one slice per part. An empty result is refused (the engine has no empty
/// tensors).
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub dim: i64,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Slice {
    /// The axis, the first index taken and the number taken, for an input of this shape.
    pub fn resolve(&self, x: &[usize]) -> Result<(usize, usize, usize), String> {
        let dim = resolve_dim(self.dim, x.len())?;
        if self.step < 1 {
            return Err(format!("slice step {} must be at least 1", self.step));
        }
        let n = x[dim] as i64;
        let clamp = |i: i64| if i < 0 { (i + n).max(0) } else { i.min(n) };
        let (start, end) = (clamp(self.start), clamp(self.end));
        if start >= end {
            return Err(format!(
                "slice {}:{} of dim {} (size {n}) is empty",
                self.start, self.end, self.dim
            ));
        }
        let len = (end - start - 1) / self.step + 1;
        Ok((dim, start as usize, len as usize))
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let (dim, _, len) = self.resolve(inputs[0])?;
        let mut out = inputs[0].to_vec();
        out[dim] = len;
        Ok(out)
    }
}
