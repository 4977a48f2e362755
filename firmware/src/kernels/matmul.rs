//! The matrix product of two activations (`MatMul`: attention's `q @ kᵀ` and `weights @ v`).
//! In: `batch` pairs of row-major `[m][k]` and `[k][n]` matrices (an operand holding a single
//! matrix serves every batch); out: `batch` `[m][n]` products. Each output row is accumulated
//! over `k` in increasing order from 0, so the bits are the format's definition on every target.

use crate::Tensor;

/// A validated product.
pub(crate) struct Geom {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Whether `a`, `b` hold one matrix for every batch.
    pub a_shared: bool,
    pub b_shared: bool,
}

impl Geom {
    /// The product's sizes from its tensors: one rank (at least 2), the inner dimensions equal,
    /// no size 0, each operand's batch dimensions the output's or all 1; `None` when they do not
    /// form one.
    pub fn of(a: &Tensor, b: &Tensor, out: &Tensor) -> Option<Geom> {
        let r = usize::from(a.rank);
        if r < 2 || b.rank != a.rank || out.rank != a.rank {
            return None;
        }
        let last_two = |t: &Tensor| Some((*t.dims.get(r - 2)?, *t.dims.get(r - 1)?));
        let ((m, k), (k2, n)) = (last_two(a)?, last_two(b)?);
        // No empty matrix: the kernel walks rows of `k` and `n` values.
        if k2 != k || last_two(out)? != (m, n) || m == 0 || k == 0 || n == 0 {
            return None;
        }
        let batch = out.dims.get(..r - 2)?;
        let shared = |t: &Tensor| -> Option<bool> {
            let dims = t.dims.get(..r - 2)?;
            if dims == batch {
                Some(false)
            } else if dims.iter().all(|&d| d == 1) {
                Some(true)
            } else {
                None
            }
        };
        Some(Geom {
            batch: batch.iter().product(),
            m,
            k,
            n,
            a_shared: shared(a)?,
            b_shared: shared(b)?,
        })
    }
}

#[allow(clippy::indexing_slicing)] // lengths validated
pub(crate) fn matmul(g: &Geom, a: &[f32], b: &[f32], out: &mut [f32]) {
    let (m, k, n) = (g.m, g.k, g.n);
    for i in 0..g.batch {
        let a = &a[if g.a_shared { 0 } else { i * m * k }..][..m * k];
        let b = &b[if g.b_shared { 0 } else { i * k * n }..][..k * n];
        let out = &mut out[i * m * n..][..m * n];
        for (row, dst) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
            dst.fill(0.0);
            // Row by row of `b`: each output element still sums over `k` in order.
            for (&x, brow) in row.iter().zip(b.chunks_exact(n)) {
                for (d, &y) in dst.iter_mut().zip(brow) {
                    *d += x * y;
                }
            }
        }
    }
}
