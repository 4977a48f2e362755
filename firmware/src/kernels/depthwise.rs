//! Depthwise convolution (one input and one output channel per group) at stride 1 or 2 and
//! dilation 1. In: the input planes, the packed weights, the bias, and the convolution's
//! buffers. Out: the output planes (activation not applied). Summation order as for every
//! convolution ([`super::conv`]): bias, then the taps in `(ky, kx)` order.

use super::conv::Geom;
use crate::weights::{Matrix, Vector};

/// Output pixels of a depthwise row computed together.
pub(crate) const DW_PIX: usize = 8;

/// Depthwise (one input and one output channel per group) at stride `SW` and dilation 1:
/// per channel and output row, each kernel row is added to the outputs [`DW_PIX`] pixels at
/// a time, with their accumulators in registers (from the bias at the first kernel row).
/// A block whose inputs all lie inside the input row reads them in place; one reaching
/// into the padding (or past the row's end) reads a copy in `buf` with zeros there.
// Not inlined: its locals would otherwise add to the general path's stack frame.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise<const SW: usize>(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    wbuf: &mut [f32],
    buf: &mut [f32],
) {
    let (hw, ohw, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let wt = wbuf.get_mut(..taps).unwrap_or_default();
    // Inputs one block reads.
    let span = (DW_PIX - 1) * SW + g.kw;
    for c in 0..g.c_out {
        let (Some(x), Some(out)) = (
            input.get(c * hw..(c + 1) * hw),
            output.get_mut(c * ohw..(c + 1) * ohw),
        ) else {
            return;
        };
        weight.decode(c * taps, wt);
        let b = bias.map_or(0.0, |b| b.get(c));
        for (oy, orow) in out.chunks_exact_mut(g.ow.max(1)).enumerate() {
            for (ky, ws) in wt.chunks_exact(g.kw.max(1)).enumerate() {
                let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
                // Input row `iy`, if inside the input.
                let row = if iy < g.h {
                    x.get(iy * g.w..(iy + 1) * g.w).unwrap_or_default()
                } else {
                    &[]
                };
                for (i, o) in orow.chunks_mut(DW_PIX).enumerate() {
                    // Element by element: a row's last block may be partial.
                    let mut acc = [[0.0f32; 1]; DW_PIX];
                    for (j, a) in acc.iter_mut().enumerate() {
                        a[0] = match ky {
                            0 => b,
                            _ => o.get(j).copied().unwrap_or(0.0),
                        };
                    }
                    // Input column of the block's first tap (may be "negative").
                    let ix0 = (i * DW_PIX * SW).wrapping_sub(g.pl);
                    let xs = match row.get(ix0..ix0.wrapping_add(span)) {
                        Some(xs) if ix0 < g.w => xs,
                        _ => {
                            for (k, d) in buf.iter_mut().take(span).enumerate() {
                                *d = row.get(ix0.wrapping_add(k)).copied().unwrap_or(0.0);
                            }
                            &buf[..]
                        }
                    };
                    if g.kw == 3 {
                        row_strided::<1, DW_PIX, SW, 3>(&mut acc, xs, ws);
                    } else {
                        row_strided::<1, DW_PIX, SW, 0>(&mut acc, xs, ws);
                    }
                    for (j, a) in acc.iter().enumerate() {
                        if let Some(v) = o.get_mut(j) {
                            *v = a[0];
                        }
                    }
                }
            }
        }
    }
}

/// Adds one kernel row (its `cols` taps; `ws`: their weights, `L` per tap) for `P` pixels
/// `SW` apart to `acc`. `xs[j * SW + kx]` is pixel `j`'s input under tap `kx`. `KW` is
/// `cols` when known at compile time, 0 otherwise.
#[inline(always)]
#[allow(clippy::indexing_slicing)] // constant indices into slices of checked constant length
fn row_strided<const L: usize, const P: usize, const SW: usize, const KW: usize>(
    acc: &mut [[f32; L]; P],
    xs: &[f32],
    ws: &[f32],
) {
    if KW != 0 {
        let (Some(xs), Some(ws)) = (xs.get(..(P - 1) * SW + KW), ws.get(..KW * L)) else {
            return;
        };
        for kx in 0..KW {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = xs[j * SW + kx];
                for l in 0..L {
                    a[l] += ws[kx * L + l] * v;
                }
            }
        }
    } else {
        for (w, win) in ws.chunks_exact(L).zip(xs.windows((P - 1) * SW + 1)) {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = win[j * SW];
                for l in 0..L {
                    a[l] += w[l] * v;
                }
            }
        }
    }
}
