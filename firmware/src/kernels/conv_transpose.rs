//! Transposed 2-D convolution (PyTorch's `ConvTranspose1d/2d`; a 1-d one has height 1).
//!
//! In: the validated geometry, the `[c_in][h][w]` input, the weight in PyTorch's layout
//! `[c_in][c_out / groups][kh][kw]`, an optional bias. Out: `[c_out][oh][ow]`. Each output
//! element is `bias (or 0) + Σ x * w` over its group's input channels, then the kernel rows and
//! columns, in increasing order, the taps whose input pixel exists: input pixel `iy` reaches output
//! `oy = iy * sh - ph + ky * dh`. The sum is accumulated in the output, one tap of every output
//! element at a time, so each weight is decoded once and the order per element stays fixed; a tap
//! reaches a run of input pixels whose outputs step by the stride, found without a division per
//! pixel.

use crate::kernels::conv::Geom;
use crate::weights::{Matrix, Vector};

/// Along one axis, the input pixels `i` that tap `k` brings inside an output of length `out`,
/// `o = i * s + k * d - p`: `(first i, its o, how many)`, consecutive `i` stepping `o` by `s`.
#[inline]
fn reach(k: usize, s: usize, d: usize, p: usize, len: usize, out: usize) -> (usize, usize, usize) {
    let off = k * d;
    let first = if off >= p {
        0
    } else {
        (p - off).div_ceil(s.max(1))
    };
    let o = (first * s + off).saturating_sub(p);
    if first >= len || o >= out {
        return (0, 0, 0);
    }
    (first, o, ((out - 1 - o) / s.max(1) + 1).min(len - first))
}

#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn conv_transpose2d(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
) {
    let groups = g.groups.max(1);
    let (ipg, opg) = (g.c_in / groups, (g.c_out / groups).max(1));
    let plane = g.oh * g.ow;
    for o in 0..g.c_out {
        let out = &mut output[o * plane..(o + 1) * plane];
        let b = bias.as_ref().map_or(0.0, |b| b.get(o));
        out.iter_mut().for_each(|v| *v = b);
        let (group, oc) = (o / opg, o % opg);
        for ic in group * ipg..(group + 1) * ipg {
            let x = &input[ic * g.h * g.w..(ic + 1) * g.h * g.w];
            for ky in 0..g.kh {
                let (iy0, oy0, rows) = reach(ky, g.sh, g.dh, g.pt, g.h, g.oh);
                for kx in 0..g.kw {
                    let mut wv = [0.0f32];
                    weight.decode(((ic * opg + oc) * g.kh + ky) * g.kw + kx, &mut wv);
                    let wv = wv[0];
                    let (ix0, ox0, cols) = reach(kx, g.sw, g.dw, g.pl, g.w, g.ow);
                    for r in 0..rows {
                        let (iy, oy) = (iy0 + r, oy0 + r * g.sh);
                        let xs = &x[iy * g.w + ix0..iy * g.w + ix0 + cols];
                        let row = &mut out[oy * g.ow + ox0..(oy + 1) * g.ow];
                        for (v, &xv) in row.iter_mut().step_by(g.sw.max(1)).zip(xs) {
                            *v += xv * wv;
                        }
                    }
                }
            }
        }
    }
}
