//! int8 2-D convolution: any groups, stride, dilation and padding, in the direct form.
//! In: `[C][H][W]` int8, weights `[O][C / groups][kh][kw]` int8, per-channel records. Out:
//! `[O][OH][OW]` int8.
//!
//! A tap in the padding stands for the real 0, `x_zero_point`, and so contributes nothing once
//! the zero point is subtracted: each output sums only the taps inside the input, in
//! `(ic, ky, kx)` order.

use super::{channel, finish, Ends};
use crate::kernels::conv::Geom;

/// The range of kernel positions `k` (stride `s`, dilation `d`, padding `p` before) whose input
/// coordinate `o * s - p + k * d` lies in `0..n`, and that coordinate for `k = 0` (may be negative).
#[inline]
pub(crate) fn valid_taps(
    o: usize,
    s: usize,
    d: usize,
    p: usize,
    k: usize,
    n: usize,
) -> (usize, usize, isize) {
    let first = (o * s) as isize - p as isize;
    let d = d.max(1) as isize;
    // smallest k with first + k*d >= 0
    let lo = if first >= 0 {
        0
    } else {
        ((-first) + d - 1) / d
    } as usize;
    // largest k with first + k*d <= n - 1, plus one
    let room = n as isize - 1 - first;
    let hi = if room < 0 { 0 } else { (room / d + 1) as usize };
    (lo.min(k), hi.min(k), first)
}

/// The convolution.
#[allow(clippy::indexing_slicing)] // geometry and lengths validated at load time
pub(crate) fn conv2d(
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
    for o in 0..g.c_out {
        let ch = channel(records, o);
        let cin0 = (o / opg.max(1)) * cpg;
        let wo = &weight[o * taps..(o + 1) * taps];
        for oy in 0..g.oh {
            let (ky0, ky1, iy0) = valid_taps(oy, g.sh, g.dh, g.pt, g.kh, g.h);
            for ox in 0..g.ow {
                let (kx0, kx1, ix0) = valid_taps(ox, g.sw, g.dw, g.pl, g.kw, g.w);
                let mut acc = ch.bias;
                for ci in 0..cpg {
                    let plane = &input[(cin0 + ci) * g.h * g.w..(cin0 + ci + 1) * g.h * g.w];
                    for ky in ky0..ky1 {
                        let iy = (iy0 + (ky * g.dh) as isize) as usize;
                        let row = &plane[iy * g.w..(iy + 1) * g.w];
                        let wrow = &wo[(ci * g.kh + ky) * g.kw..(ci * g.kh + ky + 1) * g.kw];
                        for (kx, &wv) in wrow.iter().enumerate().take(kx1).skip(kx0) {
                            let ix = (ix0 + (kx * g.dw) as isize) as usize;
                            let x = i32::from(row[ix]) - zx;
                            acc = acc.wrapping_add(x.wrapping_mul(i32::from(wv)));
                        }
                    }
                }
                output[(o * g.oh + oy) * g.ow + ox] = finish(acc, ch.requant, zy, clamp);
            }
        }
    }
}
