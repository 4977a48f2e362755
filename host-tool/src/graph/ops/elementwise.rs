//! Element-wise `add` and `mul` of two tensors with NumPy broadcasting (residual connections,
//! squeeze-and-excitation's `[N, C, 1, 1]` against `[N, C, H, W]`), and arithmetic with a
//! constant (`x * 0.125`, `x / 8`, `x + 1`, `1 - x`).

use super::{expect_inputs, ShapeResult};
use crate::graph::fmt_shape;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    Add,
    Mul,
}

impl BinaryKind {
    pub fn name(&self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Mul => "mul",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Binary {
    pub kind: BinaryKind,
}

/// The broadcast shape of `a` and `b` (NumPy rules: align right, 1 stretches), or `None`.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        let pad = rank - s.len();
        if i < pad {
            1
        } else {
            s[i - pad]
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

impl Binary {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 2)?;
        broadcast_shapes(inputs[0], inputs[1]).ok_or_else(|| {
            format!(
                "cannot broadcast {} with {}",
                fmt_shape(inputs[0]),
                fmt_shape(inputs[1])
            )
        })
    }
}

/// `y = x * scale + shift` with constants: what `x * c`, `x / c`, `x + c`, `x - c` and `c - x`
/// become.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    pub scale: f64,
    pub shift: f64,
}
