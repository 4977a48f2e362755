//! Normalization by the input's own statistics (`Norm`: PyTorch's LayerNorm and GroupNorm).
//! In: f32 runs of `group_len` elements and the optional per-entry weight and bias; out: each
//! run normalized by its mean and biased variance, then scaled and shifted. The sums are
//! compensated (Kahan) f32 sums in index order, so a long run keeps its accuracy without f64,
//! which the Cortex-M4F has no hardware for, and every target gives the same bits.

use crate::weights::Vector;

/// A validated normalization.
pub(crate) struct Geom {
    pub group_len: usize,
    pub repeat: usize,
    pub eps: f32,
}

/// `Σ f(x)` over `run` in index order, compensated.
fn sum(run: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (mut s, mut c) = (0.0f32, 0.0f32);
    for &x in run {
        let y = f(x) - c;
        let t = s + y;
        c = (t - s) - y;
        s = t;
    }
    s
}

/// The normalization of `input` into `output` (the same length, a multiple of `group_len`; they
/// may be the same buffer's halves only when disjoint, as validation checked).
#[allow(clippy::indexing_slicing)] // lengths validated
pub(crate) fn norm(
    g: &Geom,
    weight: Option<Vector<'_>>,
    bias: Option<Vector<'_>>,
    input: &[f32],
    output: &mut [f32],
) {
    let n = g.group_len as f32;
    let period = weight.as_ref().or(bias.as_ref()).map_or(1, Vector::len);
    for (run, out) in input
        .chunks_exact(g.group_len)
        .zip(output.chunks_exact_mut(g.group_len))
    {
        let mean = sum(run, |x| x) / n;
        let var = sum(run, |x| (x - mean) * (x - mean)) / n;
        let rstd = 1.0 / libm::sqrtf(var + g.eps);
        for (x, y) in run.iter().zip(out.iter_mut()) {
            *y = (x - mean) * rstd;
        }
    }
    if weight.is_none() && bias.is_none() {
        return;
    }
    for (i, y) in output.iter_mut().enumerate() {
        let a = (i / g.repeat) % period;
        if let Some(w) = &weight {
            *y *= w.get(a);
        }
        if let Some(b) = &bias {
            *y += b.get(a);
        }
    }
}
