//! int8 depthwise convolution: one input channel per group (`groups == C`, `O / C` output
//! channels per input channel), any kernel, stride, dilation and padding. In: `[C][H][W]` int8,
//! weights `[O][1][kh][kw]` int8, per-channel records. Out: `[O][OH][OW]` int8, the same bits
//! as the general kernel ([`super::conv`]).
//!
//! Output pixels one at a time, each in a register. The pixels whose window lies inside the
//! input (most of them) read their taps without checks on coordinates and start from
//! `bias - x_zero_point * sum(w)`: in wrapping i32 arithmetic
//! `bias + sum (x - zx) * w == bias - zx * sum(w) + sum x * w` exactly, so one subtraction per
//! channel replaces one per tap. The pixels of the border add only their taps inside the input.

use super::{channel, finish, Ends};
use crate::kernels::conv::Geom;

/// Whether [`conv2d`] takes this geometry: one input channel per group, more than one group
/// (a convolution of a one-channel input is an ordinary one, which the general kernel pairs).
pub(crate) fn takes(g: &Geom) -> bool {
    g.groups > 1 && g.groups == g.c_in && g.c_out % g.groups == 0
}

/// The outputs `o` in `0..out` whose whole window (kernel `k`, stride `s`, dilation `d`,
/// padding `p` before, input length `n`) lies in `0..n`, as `(first, end)`.
fn interior(k: usize, s: usize, d: usize, p: usize, n: usize, out: usize) -> (usize, usize) {
    let first = p.div_ceil(s);
    let end = match (n + p).checked_sub((k - 1) * d + 1) {
        Some(room) => (room / s + 1).min(out),
        None => 0,
    };
    (first.min(out), end.max(first.min(out)))
}

/// Bytes of the zero-point-padded band of one input channel that [`conv2d`] copies to the stack.
const BAND: usize = 2048;

/// The convolution: through padded bands when a band of at least one output row fits
/// [`BAND`], else pixel by pixel ([`direct`]). Not inlined, so that the band takes stack only
/// while a depthwise convolution runs.
#[allow(clippy::indexing_slicing)] // geometry and lengths validated at load time
#[inline(never)]
pub(crate) fn conv2d(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if super::dwdsp::conv2d(g, input, output, weight, records, ends) {
        return;
    }
    let Ends { zx, zy, clamp } = ends;
    let (sh, sw) = (g.sh.max(1), g.sw.max(1));
    let (kh, kw) = (g.kh.max(1), g.kw.max(1));
    // The band's width: the columns the windows of a row of outputs read, from column -pl.
    let span_w = (g.ow.max(1) - 1) * sw + (kw - 1) * g.dw + 1;
    let rows_for = |n: usize| (n - 1) * sh + (kh - 1) * g.dh + 1;
    // Output rows per band.
    let per_band = match BAND.checked_div(span_w) {
        Some(rows) if rows >= rows_for(1) => ((rows - rows_for(1)) / sh + 1).min(g.oh.max(1)),
        _ => 0,
    };
    if per_band == 0 {
        direct(g, input, output, weight, records, ends);
        return;
    }
    let taps = kh * kw;
    let mult = g.c_out / g.groups.max(1);
    let (plane, oplane) = (g.h * g.w, g.oh * g.ow);
    let zero = zx as i8;
    let mut band = [0i8; BAND];
    for o in 0..g.c_out {
        let c = o / mult.max(1);
        let x = &input[c * plane..(c + 1) * plane];
        let w = &weight[o * taps..(o + 1) * taps];
        let y = &mut output[o * oplane..(o + 1) * oplane];
        let ch = channel(records, o);
        // Every tap reads a value of the band, the padding's being the zero point: so every
        // output is `bias - zx * sum(w) + sum x * w`.
        let sum_w = w.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
        let bias = ch.bias.wrapping_sub(zx.wrapping_mul(sum_w));
        let mut oy0 = 0;
        while oy0 < g.oh {
            let n = per_band.min(g.oh - oy0);
            // The input rows from `oy0 * sh - pt`, columns from `-pl`, padded with `zx`.
            for r in 0..rows_for(n) {
                let row = &mut band[r * span_w..(r + 1) * span_w];
                row.fill(zero);
                let iy = (oy0 * sh + r) as isize - g.pt as isize;
                if iy < 0 || iy as usize >= g.h {
                    continue;
                }
                let src = &x[iy as usize * g.w..(iy as usize + 1) * g.w];
                // Input columns `0..w` land at `pl..pl + w`, clipped to the band.
                let (from, to) = (g.pl.min(span_w), (g.pl + g.w).min(span_w));
                row[from..to].copy_from_slice(&src[..to - from]);
            }
            for oy in 0..n {
                let yrow = &mut y[(oy0 + oy) * g.ow..(oy0 + oy + 1) * g.ow];
                let top = oy * sh * span_w;
                if let (3, 3) = (kh, kw) {
                    let k: [i32; 9] = core::array::from_fn(|i| i32::from(w[i]));
                    let (rd, cd) = (g.dh * span_w, g.dw);
                    for (ox, v) in yrow.iter_mut().enumerate() {
                        let at = top + ox * sw;
                        let win = &band[at..at + 2 * rd + 2 * cd + 1];
                        let t = |i: usize| i32::from(win[i]);
                        let mut acc = bias;
                        acc = acc.wrapping_add(k[0] * t(0) + k[1] * t(cd) + k[2] * t(2 * cd));
                        acc = acc
                            .wrapping_add(k[3] * t(rd) + k[4] * t(rd + cd) + k[5] * t(rd + 2 * cd));
                        acc = acc.wrapping_add(
                            k[6] * t(2 * rd) + k[7] * t(2 * rd + cd) + k[8] * t(2 * rd + 2 * cd),
                        );
                        *v = finish(acc, ch.requant, zy, clamp);
                    }
                } else {
                    for (ox, v) in yrow.iter_mut().enumerate() {
                        let at = top + ox * sw;
                        let mut acc = bias;
                        for ky in 0..kh {
                            let r = at + ky * g.dh * span_w;
                            for kx in 0..kw {
                                let xv = i32::from(band[r + kx * g.dw]);
                                acc = acc.wrapping_add(xv * i32::from(w[ky * kw + kx]));
                            }
                        }
                        *v = finish(acc, ch.requant, zy, clamp);
                    }
                }
            }
            oy0 += n;
        }
    }
}

/// The convolution pixel by pixel, for maps too wide for a band.
#[allow(clippy::indexing_slicing)] // geometry and lengths validated at load time
pub(crate) fn direct(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    let Ends { zx, zy, clamp } = ends;
    let (sh, sw) = (g.sh.max(1), g.sw.max(1));
    let (kh, kw) = (g.kh.max(1), g.kw.max(1));
    let taps = kh * kw;
    let mult = g.c_out / g.groups.max(1);
    let (plane, oplane) = (g.h * g.w, g.oh * g.ow);
    let (ry0, ry1) = interior(kh, sh, g.dh, g.pt, g.h, g.oh);
    let (rx0, rx1) = interior(kw, sw, g.dw, g.pl, g.w, g.ow);
    for o in 0..g.c_out {
        let c = o / mult.max(1);
        let x = &input[c * plane..(c + 1) * plane];
        let w = &weight[o * taps..(o + 1) * taps];
        let y = &mut output[o * oplane..(o + 1) * oplane];
        let ch = channel(records, o);
        let sum_w = w.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
        let inner_bias = ch.bias.wrapping_sub(zx.wrapping_mul(sum_w));
        let out = |acc: i32| finish(acc, ch.requant, zy, clamp);
        // A border pixel: only the taps inside the input.
        let border = |oy: usize, ox: usize| {
            let mut acc = ch.bias;
            let iy0 = (oy * sh) as isize - g.pt as isize;
            let ix0 = (ox * sw) as isize - g.pl as isize;
            for ky in 0..kh {
                let iy = iy0 + (ky * g.dh) as isize;
                if iy < 0 || iy as usize >= g.h {
                    continue;
                }
                for kx in 0..kw {
                    let ix = ix0 + (kx * g.dw) as isize;
                    if ix < 0 || ix as usize >= g.w {
                        continue;
                    }
                    let v = i32::from(x[iy as usize * g.w + ix as usize]) - zx;
                    acc = acc.wrapping_add(v * i32::from(w[ky * kw + kx]));
                }
            }
            acc
        };
        for oy in 0..g.oh {
            let row = &mut y[oy * g.ow..(oy + 1) * g.ow];
            if oy < ry0 || oy >= ry1 {
                for (ox, v) in row.iter_mut().enumerate() {
                    *v = out(border(oy, ox));
                }
                continue;
            }
            for (ox, v) in row[..rx0].iter_mut().enumerate() {
                *v = out(border(oy, ox));
            }
            for (ox, v) in row.iter_mut().enumerate().skip(rx1) {
                *v = out(border(oy, ox));
            }
            // Inside: the window's first input is `x[top + ox * sw - pl]`.
            let top = (oy * sh - g.pt) * g.w;
            let inner = &mut row[rx0..rx1];
            if let (3, 3) = (kh, kw) {
                let k: [i32; 9] = core::array::from_fn(|i| i32::from(w[i]));
                let (rd, cd) = (g.dh * g.w, g.dw);
                for (j, v) in inner.iter_mut().enumerate() {
                    let at = top + (rx0 + j) * sw - g.pl;
                    let r0 = &x[at..at + 2 * rd + 2 * cd + 1];
                    let t = |i: usize| i32::from(r0[i]);
                    let mut acc = inner_bias;
                    acc = acc.wrapping_add(k[0] * t(0) + k[1] * t(cd) + k[2] * t(2 * cd));
                    acc =
                        acc.wrapping_add(k[3] * t(rd) + k[4] * t(rd + cd) + k[5] * t(rd + 2 * cd));
                    acc = acc.wrapping_add(
                        k[6] * t(2 * rd) + k[7] * t(2 * rd + cd) + k[8] * t(2 * rd + 2 * cd),
                    );
                    *v = out(acc);
                }
            } else {
                for (j, v) in inner.iter_mut().enumerate() {
                    let at = top + (rx0 + j) * sw - g.pl;
                    let mut acc = inner_bias;
                    for ky in 0..kh {
                        let r = at + ky * g.dh * g.w;
                        for kx in 0..kw {
                            let xv = i32::from(x[r + kx * g.dw]);
                            acc = acc.wrapping_add(xv * i32::from(w[ky * kw + kx]));
                        }
                    }
                    *v = out(acc);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    extern crate std;
    use super::super::cases::{case, geom, portable, Rng};
    use std::vec;

    /// Maps wider than a band (the pixel-by-pixel path) and taller than one (several bands,
    /// windows across their seams), against the portable loop.
    #[test]
    fn wide_and_tall_maps() {
        let mut rng = Rng(5);
        let kernels = [
            ([3, 3], [1, 1], [1, 1, 1, 1]),
            ([2, 5], [2, 1], [0, 3, 1, 0]),
        ];
        for (k, d, p) in kernels {
            for (h, w) in [(4, 2100), (300, 40), (301, 33)] {
                let g = geom((2, h, w), 4, k, [1 + h % 2, 2], d, p, 2).unwrap();
                let c = case(&mut rng, g);
                let want = portable(&c);
                let mut got = vec![0; want.len()];
                super::conv2d(&c.g, &c.input, &mut got, &c.weight, &c.records, c.ends);
                assert_eq!(got, want, "{:?}", c.g);
            }
        }
    }

    /// 3x3 and other kernels, channel multipliers, strides, dilations, padding wider than the
    /// kernel's reach and maps smaller than the window: the same bits as the portable loop.
    #[test]
    fn depthwise_equals_the_portable_loop() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut taken = 0;
        for i in 0..400 {
            let c_in = rng.int(2, 5) as usize;
            let mult = rng.int(1, 3) as usize;
            let k = if i % 2 == 0 {
                [3, 3]
            } else {
                [rng.int(1, 5) as usize, rng.int(1, 5) as usize]
            };
            let s = [rng.int(1, 3) as usize, rng.int(1, 3) as usize];
            let d = [rng.int(1, 3) as usize, rng.int(1, 3) as usize];
            let p = [0; 4].map(|_| rng.int(0, 4) as usize);
            let (h, w) = (rng.int(1, 12) as usize, rng.int(1, 12) as usize);
            let Some(g) = geom((c_in, h, w), c_in * mult, k, s, d, p, c_in) else {
                continue;
            };
            assert!(super::takes(&g));
            let c = case(&mut rng, g);
            let want = portable(&c);
            let mut got = vec![0; want.len()];
            super::conv2d(&c.g, &c.input, &mut got, &c.weight, &c.records, c.ends);
            assert_eq!(got, want, "{:?}", c.g);
            taken += 1;
        }
        assert!(taken > 200, "only {taken} cases taken");
    }
}
