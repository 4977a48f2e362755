//! 2-D convolution: one kernel, blocked over output channels (`LANES`) and four output
//! pixels, over tiles of at most [`TILE_TAPS`] taps whose weights are decoded once into a
//! stack buffer and then used for every output pixel.
//!
//! Summation order (fixed, documented in docs/FIRMWARE.md): every output is
//! `bias (or 0) + t_0 + t_1 + ...` over its taps in `(ic, ky, kx)` order, taps that fall in
//! the zero padding skipped; partial sums between tiles are stored in the output as f32,
//! which does not change the result. 1x1 stride-1 unpadded convolutions are run as a matrix
//! product by viewing the `H x W` plane as one row.

use crate::weights::{Matrix, Vector};

/// Taps per weight tile.
pub(crate) const TILE_TAPS: usize = 64;
/// Output pixels computed together on the interior fast path.
const PIX: usize = 4;

/// Convolution geometry, validated by `validate::conv2d`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub groups: usize,
}

/// Runs the convolution (activation not applied). `input`/`output` have exactly the
/// validated lengths; `weight` and `bias` the validated element counts.
pub(crate) fn conv2d(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
) {
    let mut g = *g;
    if g.kh == 1
        && g.kw == 1
        && g.sh == 1
        && g.sw == 1
        && g.pt == 0
        && g.pl == 0
        && g.oh == g.h
        && g.ow == g.w
    {
        g.w *= g.h;
        g.ow = g.w;
        g.h = 1;
        g.oh = 1;
    }
    if g.c_out / g.groups == 1 {
        run::<1>(&g, input, output, weight, bias);
    } else {
        run::<4>(&g, input, output, weight, bias);
    }
}

/// Interior bounds along one axis: output positions `lo..hi` whose whole window lies inside.
fn interior(out: usize, inp: usize, k: usize, s: usize, d: usize, pad: usize) -> (usize, usize) {
    let lo = pad.div_ceil(s);
    let span = (k - 1) * d;
    // o * s - pad + span <= inp - 1  <=>  o <= (inp - 1 + pad - span) / s
    let hi = match (inp + pad).checked_sub(span + 1) {
        Some(n) => (n / s + 1).min(out),
        None => 0,
    };
    (lo.min(hi), hi)
}

#[allow(clippy::indexing_slicing)] // ranges follow from the geometry checked by validation
fn run<const LANES: usize>(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
) {
    let ipg = g.c_in / g.groups;
    let opg = g.c_out / g.groups;
    let taps = ipg * g.kh * g.kw;
    let hw = g.h * g.w;
    let ohw = g.oh * g.ow;
    let (oy_lo, oy_hi) = interior(g.oh, g.h, g.kh, g.sh, g.dh, g.pt);
    let (ox_lo, ox_hi) = interior(g.ow, g.w, g.kw, g.sw, g.dw, g.pl);

    let mut wbuf = [0.0f32; 4 * TILE_TAPS];
    let mut tap_off = [0usize; TILE_TAPS];
    let mut tap_dy = [0usize; TILE_TAPS];
    let mut tap_dx = [0usize; TILE_TAPS];
    let mut cursor = 0; // element index of the current block in the packed weight
    for grp in 0..g.groups {
        let in_base = grp * ipg * hw;
        let mut first = 0;
        while first < opg {
            let lanes = LANES.min(opg - first);
            let oc0 = grp * opg + first;
            let mut t0 = 0;
            while t0 < taps {
                let tn = TILE_TAPS.min(taps - t0);
                for t in 0..tn {
                    let tap = t0 + t;
                    let (ic, kyx) = (tap / (g.kh * g.kw), tap % (g.kh * g.kw));
                    let (dy, dx) = (kyx / g.kw * g.dh, kyx % g.kw * g.dw);
                    tap_dy[t] = dy;
                    tap_dx[t] = dx;
                    tap_off[t] = ic * hw + dy * g.w + dx;
                    let dst = &mut wbuf[t * LANES..t * LANES + LANES];
                    dst.fill(0.0);
                    weight.decode(cursor + tap * lanes, &mut dst[..lanes]);
                }
                let wt = &wbuf[..tn * LANES];
                let init = |acc: &mut [f32; LANES], out: &[f32], p: usize| {
                    for (l, a) in acc.iter_mut().enumerate().take(lanes) {
                        *a = if t0 > 0 {
                            out[(oc0 + l) * ohw + p]
                        } else {
                            bias.map_or(0.0, |b| b.get(oc0 + l))
                        };
                    }
                };
                for oy in 0..g.oh {
                    let row_inside = oy >= oy_lo && oy < oy_hi;
                    let mut ox = 0;
                    while ox < g.ow {
                        if row_inside && ox >= ox_lo && ox + PIX <= ox_hi {
                            // Fast path: PIX pixels, every tap inside the input.
                            let mut acc = [[0.0f32; LANES]; PIX];
                            for (j, a) in acc.iter_mut().enumerate() {
                                init(a, output, oy * g.ow + ox + j);
                            }
                            let base = in_base + (oy * g.sh - g.pt) * g.w + (ox * g.sw - g.pl);
                            for (t, w) in wt.chunks_exact(LANES).enumerate() {
                                let p = base + tap_off[t];
                                let x = [
                                    input[p],
                                    input[p + g.sw],
                                    input[p + 2 * g.sw],
                                    input[p + 3 * g.sw],
                                ];
                                for j in 0..PIX {
                                    for l in 0..LANES {
                                        acc[j][l] += w[l] * x[j];
                                    }
                                }
                            }
                            for (j, a) in acc.iter().enumerate() {
                                for (l, v) in a.iter().enumerate().take(lanes) {
                                    output[(oc0 + l) * ohw + oy * g.ow + ox + j] = *v;
                                }
                            }
                            ox += PIX;
                        } else {
                            // Border path: one pixel, taps checked against the input.
                            let mut acc = [0.0f32; LANES];
                            let p = oy * g.ow + ox;
                            init(&mut acc, output, p);
                            let (y0, x0) = (oy * g.sh, ox * g.sw);
                            for (t, w) in wt.chunks_exact(LANES).enumerate() {
                                let iy = (y0 + tap_dy[t]).wrapping_sub(g.pt);
                                let ix = (x0 + tap_dx[t]).wrapping_sub(g.pl);
                                if iy < g.h && ix < g.w {
                                    let x =
                                        input[in_base + tap_off[t] - tap_dy[t] * g.w - tap_dx[t]
                                            + iy * g.w
                                            + ix];
                                    for l in 0..LANES {
                                        acc[l] += w[l] * x;
                                    }
                                }
                            }
                            for (l, v) in acc.iter().enumerate().take(lanes) {
                                output[(oc0 + l) * ohw + p] = *v;
                            }
                            ox += 1;
                        }
                    }
                }
                t0 += tn;
            }
            cursor += lanes * taps;
            first += lanes;
        }
    }
}
