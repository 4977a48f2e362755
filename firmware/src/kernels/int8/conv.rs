//! int8 2-D convolution: any groups, stride, dilation and padding.
//! In: `[C][H][W]` int8, weights `[O][C / groups][kh][kw]` int8, per-channel records. Out:
//! `[O][OH][OW]` int8.
//!
//! A tap in the padding stands for the real 0, `x_zero_point`, and so contributes nothing once
//! the zero point is subtracted: each output sums only the taps inside the input. The sums are
//! integers (wrapping i32), so the order of the terms does not change a bit; the loops are
//! ordered for speed: two output channels at a time (each input value loaded once for both),
//! one output row at a time in accumulators on the stack ([`ROW`] pixels), the pixels of a row
//! innermost, each kernel tap's range of valid pixels computed once per row.

use super::{channel, finish, Ends};
use crate::kernels::conv::Geom;

/// Output pixels accumulated at once (2 x 4 x 64 = 512 bytes of stack).
const ROW: usize = 64;

/// For kernel position `k` (stride `s`, dilation `d`, padding `p` before, input length `n`), the
/// outputs `o` in `0..out` whose input coordinate `o * s + k * d - p` lies in `0..n`, as
/// `(first, end)`.
#[inline]
fn valid_outputs(k: usize, s: usize, d: usize, p: usize, n: usize, out: usize) -> (usize, usize) {
    let off = k * d; // input coordinate of output 0, plus p
                     // o * s + off >= p  <=>  o >= ceil((p - off) / s)
    let first = if off >= p { 0 } else { (p - off).div_ceil(s) };
    // o * s + off - p <= n - 1  <=>  o <= (n - 1 + p - off) / s
    let end = match (n + p).checked_sub(off + 1) {
        Some(room) => (room / s + 1).min(out),
        None => 0,
    };
    (first, end.max(first))
}

/// The convolution: depthwise geometries by [`super::depthwise`], on the Cortex-M4F the others
/// that fit by [`super::dsp`], the rest by [`portable`].
pub(crate) fn conv2d(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    if super::depthwise::takes(g) {
        super::depthwise::conv2d(g, input, output, weight, records, ends);
        return;
    }
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if super::dsp::conv2d(g, input, output, weight, records, ends) {
        return;
    }
    portable(g, input, output, weight, records, ends);
}

/// The portable loop (any geometry).
#[allow(clippy::indexing_slicing)] // geometry and lengths validated at load time
pub(crate) fn portable(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    let Ends { zx, zy, clamp } = ends;
    let groups = g.groups.max(1);
    let (cpg, opg) = (g.c_in / groups, g.c_out / groups);
    let taps = cpg * g.kh * g.kw;
    let (sh, sw) = (g.sh.max(1), g.sw.max(1));
    let plane = g.h * g.w;
    let mut o = 0;
    while o < g.c_out {
        // A pair of output channels of the same group, or the last one alone.
        let pair = o + 1 < g.c_out && (o + 1) / opg.max(1) == o / opg.max(1);
        let (c0, c1) = (channel(records, o), channel(records, o + usize::from(pair)));
        let cin0 = (o / opg.max(1)) * cpg;
        let w0 = &weight[o * taps..(o + 1) * taps];
        let w1 = if pair {
            &weight[(o + 1) * taps..(o + 2) * taps]
        } else {
            w0
        };
        for oy in 0..g.oh {
            let mut ox0 = 0;
            while ox0 < g.ow {
                let n = (g.ow - ox0).min(ROW);
                let mut a0 = [c0.bias; ROW];
                let mut a1 = [c1.bias; ROW];
                for ci in 0..cpg {
                    let x = &input[(cin0 + ci) * plane..(cin0 + ci + 1) * plane];
                    for ky in 0..g.kh {
                        let iy = (oy * sh + ky * g.dh) as isize - g.pt as isize;
                        if iy < 0 || iy as usize >= g.h {
                            continue;
                        }
                        let row = &x[iy as usize * g.w..(iy as usize + 1) * g.w];
                        let wt = (ci * g.kh + ky) * g.kw;
                        for kx in 0..g.kw {
                            let (f, e) = valid_outputs(kx, sw, g.dw, g.pl, g.w, g.ow);
                            // This chunk's part of the valid outputs.
                            let (f, e) = (f.max(ox0), e.min(ox0 + n));
                            if f >= e {
                                continue;
                            }
                            // Inside the input, as `f` is a valid output.
                            let ix = f * sw + kx * g.dw - g.pl;
                            let (k0, k1) = (i32::from(w0[wt + kx]), i32::from(w1[wt + kx]));
                            let xs = row[ix..].iter().step_by(sw);
                            for ((p0, p1), &xv) in a0[f - ox0..e - ox0]
                                .iter_mut()
                                .zip(&mut a1[f - ox0..e - ox0])
                                .zip(xs)
                            {
                                let v = i32::from(xv) - zx;
                                *p0 = p0.wrapping_add(v.wrapping_mul(k0));
                                *p1 = p1.wrapping_add(v.wrapping_mul(k1));
                            }
                        }
                    }
                }
                let out0 = (o * g.oh + oy) * g.ow + ox0;
                for (y, &acc) in output[out0..out0 + n].iter_mut().zip(&a0) {
                    *y = finish(acc, c0.requant, zy, clamp);
                }
                if pair {
                    let out1 = ((o + 1) * g.oh + oy) * g.ow + ox0;
                    for (y, &acc) in output[out1..out1 + n].iter_mut().zip(&a1) {
                        *y = finish(acc, c1.requant, zy, clamp);
                    }
                }
                ox0 += n;
            }
        }
        o += 1 + usize::from(pair);
    }
}
