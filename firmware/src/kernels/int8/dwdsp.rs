//! int8 depthwise 3x3 convolution at stride 1 or 2 (dilation 1, any padding) for Arm cores
//! with the DSP extension. In: what [`super::depthwise::conv2d`] takes. Out: the same bits, or
//! `false` (nothing written) for a geometry this path does not take.
//!
//! The input channel goes through bands of row pairs: word `c` of pair `j` holds input rows
//! `2j` and `2j + 1` of the band (from `oy0 * stride - pt`) at column `c` (from
//! `ox0 * stride - pl`) as two 16-bit values, the zero point standing for the padding. Every
//! output is then `bias - x_zero_point * sum(w) + sum x * w` (wrapping i32 arithmetic, as in
//! [`super::depthwise`]), three kernel columns of two kernel rows per word:
//!
//! - stride 1, two output rows at once from pairs `P = (r0, r1)` and `Q = (r2, r3)`, with the
//!   weights packed as `A_c = (k0c, k1c)` and `B_c = (k1c, k2c)` (`kyc`: row `y`, column `c`):
//!   the upper row adds `SMLAD(P, A_c)` (`r0 k0c + r1 k1c`) and `SMLABT(Q, B_c)` (`r2 k2c`),
//!   the lower one `SMLATB(P, A_c)` (`r1 k0c`) and `SMLAD(Q, B_c)` (`r2 k1c + r3 k2c`): 18 MACs
//!   in 12 instructions and 6 loads;
//! - stride 2, two output rows at once from pairs `P = (r0, r1)`, `Q = (r2, r3)` and
//!   `R = (r4, r5)`: the upper row adds `SMLAD(P, A_c)` and `SMLABT(Q, B_c)`, the lower one
//!   `SMLAD(Q, A_c)` and `SMLABT(R, B_c)`: 18 MACs in 12 instructions and 9 loads.
//!
//! The assembly loop runs several passes per call; their accumulators go to a buffer on the
//! stack, and a second loop rescales them
//! ([`super::ops::Scale`]: for rescalings by less than 1/2, `SMMLA` adds the rounding term to
//! the product's high word in one instruction).
//!
//! Same bits as the portable loop: the inputs and weights are int8 values, exact in 16 bits,
//! the products are exact and every instruction accumulates modulo 2^32. The unit tests run this
//! code on the host with the Rust model of the instructions ([`super::ops`]).

use super::ops::{pack, Scale};
use super::{channel, Ends, Requant};
use crate::kernels::conv::Geom;
use nnblob_format::meta::QCHANNEL_LEN;

/// Words of a band's row pair: the widest pass reads `COLS + 2` (stride 1) or `COLS + 1`
/// (stride 2, [`COLS`] / 2 pixels) columns. A fixed stride, so that the assembly loops reach
/// the next pairs at constant offsets.
const STRIDE: usize = COLS + 2;

/// Row pairs of a band (2,112 bytes of stack).
const PAIRS: usize = 8;

/// Output columns per pass at stride 1 (half as many at stride 2).
const COLS: usize = 64;

/// Accumulator pairs (two output rows of a pixel) of the passes a loop runs at once (2 KiB of
/// stack): at least a pass of [`COLS`] pixels.
const ACC: usize = 256;

/// A band: [`PAIRS`] row pairs of [`STRIDE`] words.
type Band = [u32; PAIRS * STRIDE];

/// Whether [`conv2d`] takes this geometry: a depthwise 3x3 kernel, dilation 1, stride 1 or 2
/// in both directions.
pub(crate) fn takes(g: &Geom) -> bool {
    super::depthwise::takes(g)
        && (g.kh, g.kw, g.dh, g.dw) == (3, 3, 1, 1)
        && matches!((g.sh, g.sw), (1, 1) | (2, 2))
}

/// The convolution, or `false` (nothing written) when [`takes`] refuses the geometry or a
/// slice is shorter than the geometry says.
#[allow(clippy::indexing_slicing)] // lengths checked on entry; band ranges below `PAIRS`
pub(crate) fn conv2d(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) -> bool {
    let (plane, oplane) = (g.h * g.w, g.oh * g.ow);
    if !takes(g)
        || input.len() < g.c_in * plane
        || output.len() < g.c_out * oplane
        || weight.len() < g.c_out * 9
        || records.len() < g.c_out * QCHANNEL_LEN
    {
        return false;
    }
    let Ends { zx, zy, clamp } = ends;
    let s = g.sh;
    let mult = g.c_out / g.groups;
    // Columns per pass, and output rows per band: at stride 1 a pass of two rows reads two
    // pairs, the next one's first being its second; at stride 2 three, the third likewise.
    let (cols, per_band) = if s == 1 {
        (COLS, 2 * (PAIRS - 1))
    } else {
        (COLS / 2, 2 * ((PAIRS - 1) / 2))
    };
    let mut band: Band = [0; PAIRS * STRIDE];
    let mut acc = [[0i32; 2]; ACC];
    for o in 0..g.c_out {
        let x = &input[(o / mult) * plane..(o / mult + 1) * plane];
        let k = &weight[o * 9..o * 9 + 9];
        let y = &mut output[o * oplane..(o + 1) * oplane];
        let ch = channel(records, o);
        let sum_w = k.iter().fold(0i32, |a, &v| a.wrapping_add(i32::from(v)));
        let bias = ch.bias.wrapping_sub(zx.wrapping_mul(sum_w));
        let kw = |r: usize, c: usize| i32::from(k[3 * r + c]);
        let wa: [u32; 3] = core::array::from_fn(|c| pack(kw(0, c), kw(1, c)));
        let wb: [u32; 3] = core::array::from_fn(|c| pack(kw(1, c), kw(2, c)));
        let fin = Finish::new(bias, ch.requant, zy, clamp);
        let mut ox0 = 0;
        while ox0 < g.ow {
            let nc = (g.ow - ox0).min(cols);
            // The band's columns: those the pass's windows read.
            let span = (nc - 1) * s + 3;
            // Passes (of two output rows) per call of the loop.
            let per_call = (ACC / nc).max(1);
            let mut oy0 = 0;
            while oy0 < g.oh {
                let n = per_band.min(g.oh - oy0);
                // Pairs read: `n / 2 + 1` at stride 1 (`n` even), `n + 1` at stride 2, one
                // more for an odd `n` (the last pass's lower row, computed and dropped).
                let used = if s == 1 { n / 2 + 1 } else { n + 1 } + n % 2;
                let top = (oy0 * s) as isize - g.pt as isize;
                let left = (ox0 * s) as isize - g.pl as isize;
                fill_band(&mut band[..used * STRIDE], span, g, x, (top, left), zx);
                let mut rows = y[oy0 * g.ow..(oy0 + n) * g.ow].chunks_exact_mut(g.ow);
                let mut t0 = 0;
                while 2 * t0 < n {
                    let passes = n.div_ceil(2).min(t0 + per_call) - t0;
                    let from = if s == 1 { t0 } else { 2 * t0 } * STRIDE;
                    let a = &mut acc[..passes * nc];
                    if s == 1 {
                        rows_s1(&band[from..], (wa, wb), nc, a);
                    } else {
                        rows_s2(&band[from..], (wa, wb), nc, a);
                    }
                    // Pass `t`'s rows: the next two of the band's (one for an odd last).
                    for a in a.chunks_exact(nc) {
                        let Some(up) = rows.next() else { break };
                        let lo = rows.next().map(|l| &mut l[ox0..ox0 + nc]);
                        fin.rows(a, &mut up[ox0..ox0 + nc], lo);
                    }
                    t0 += passes;
                }
                oy0 += n;
            }
            ox0 += nc;
        }
    }
    true
}

/// Writes the band's first `band.len() / STRIDE` row pairs, `span` words each: input rows
/// `top + 2j` and `top + 2j + 1`, columns from `left`, the zero point `zx` outside the input.
#[allow(clippy::indexing_slicing)] // column range clipped to the band and the input row
fn fill_band(
    band: &mut [u32],
    span: usize,
    g: &Geom,
    x: &[i8],
    (top, left): (isize, isize),
    zx: i32,
) {
    let span = span.min(STRIDE);
    // Band columns `c0..c1` hold input columns `lo..hi`.
    let c0 = (-left).clamp(0, span as isize) as usize;
    let c1 = (g.w as isize - left).clamp(c0 as isize, span as isize) as usize;
    let lo = (left + c0 as isize) as usize;
    let hi = lo + (c1 - c0);
    // A row of zero points stands for the rows outside the input.
    let zeros = [zx as i8; STRIDE];
    let row = |r: isize| match r {
        r if r >= 0 && (r as usize) < g.h => &x[r as usize * g.w + lo..r as usize * g.w + hi],
        _ => &zeros[..c1 - c0],
    };
    let zz = pack(zx, zx);
    for (j, words) in band.chunks_exact_mut(STRIDE).enumerate() {
        let r = top + 2 * j as isize;
        let words = &mut words[..span];
        words[..c0].fill(zz);
        words[c1..].fill(zz);
        let (a, b) = (row(r), row(r + 1));
        for ((w, &a), &b) in words[c0..c1].iter_mut().zip(a).zip(b) {
            *w = pack(i32::from(a), i32::from(b));
        }
    }
}

/// Stride 1: `acc[t * nc + i] = [upper, lower]`, the sums `x * w` (without the bias) of pixel
/// `i` of pass `t`'s two output rows, from the row pairs at `band[t * STRIDE..]` (`P`: the
/// upper window's rows 0 and 1) and one `STRIDE` further (`Q`: rows 2 and 3), each `nc + 2`
/// columns.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
#[allow(clippy::indexing_slicing)] // lengths checked on entry
fn rows_s1(band: &[u32], (wa, wb): ([u32; 3], [u32; 3]), nc: usize, acc: &mut [[i32; 2]]) {
    use super::ops::{smlabt, smlad, smlatb};
    let passes = acc.len() / nc.max(1);
    if nc == 0 || passes == 0 || band.len() < passes * STRIDE + nc + 2 {
        return;
    }
    for (t, acc) in acc.chunks_exact_mut(nc).enumerate() {
        let (p, q) = (
            &band[t * STRIDE..][..nc + 2],
            &band[(t + 1) * STRIDE..][..nc + 2],
        );
        for ((p, q), a) in p.windows(3).zip(q.windows(3)).zip(acc) {
            let (mut up, mut lo) = (0, 0);
            for c in 0..3 {
                up = smlad(p[c], wa[c], up);
                lo = smlatb(p[c], wa[c], lo);
                up = smlabt(q[c], wb[c], up);
                lo = smlad(q[c], wb[c], lo);
            }
            *a = [up, lo];
        }
    }
}

/// Stride 2: `acc[t * nc + i] = [upper, lower]`, pixel `i` of pass `t`'s two output rows
/// (pixels two columns apart), from the row pairs at `band[2 * t * STRIDE..]` (`P`), one
/// `STRIDE` further (`Q`: the upper window's row 2 and the lower one's rows 0 and 1) and two
/// (`R`: the lower one's row 2), each `2 * nc + 1` columns.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
#[allow(clippy::indexing_slicing)] // lengths checked on entry
fn rows_s2(band: &[u32], (wa, wb): ([u32; 3], [u32; 3]), nc: usize, acc: &mut [[i32; 2]]) {
    use super::ops::{smlabt, smlad};
    let passes = acc.len() / nc.max(1);
    if nc == 0 || passes == 0 || band.len() < 2 * passes * STRIDE + 2 * nc + 1 {
        return;
    }
    for (t, acc) in acc.chunks_exact_mut(nc).enumerate() {
        let row = |j: usize| {
            band[(2 * t + j) * STRIDE..][..2 * nc + 1]
                .windows(3)
                .step_by(2)
        };
        for (((p, q), r), a) in row(0).zip(row(1)).zip(row(2)).zip(acc) {
            let (mut up, mut lo) = (0, 0);
            for c in 0..3 {
                up = smlad(p[c], wa[c], up);
                up = smlabt(q[c], wb[c], up);
                lo = smlad(q[c], wa[c], lo);
                lo = smlabt(r[c], wb[c], lo);
            }
            *a = [up, lo];
        }
    }
}

#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
use arm::{rows_s1, rows_s2};

/// The loops of [`rows_s1`] and [`rows_s2`] in assembly: the six weight words, the two
/// accumulators, the loaded word, the band and accumulator pointers and the pixel counter take
/// the twelve registers inline assembly can name; each pixel's first product starts its sums
/// (`SMUAD`, `SMULTB`), so the bias is added with the rescaling. Between passes the loop keeps
/// its state (pixels per pass, passes left, the step to the next pass's pairs) in a block of
/// three words whose address it pushes on the stack.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::STRIDE;

    /// The passes' loop around one pass's loop `$pass` (which ends with `{p}` advanced by
    /// `$consumed` bytes per pixel), to the next pass's pairs `$advance` bytes from a pass's first.
    macro_rules! passes {
        ($band:expr, $acc:expr, $nc:expr, $passes:expr, $advance:expr, $consumed:expr, $w:expr, $pass:expr, $($name:ident = $off:expr),*) => {{
            let (wa, wb): ([u32; 3], [u32; 3]) = $w;
            let mut state: [u32; 3] = [$nc as u32, $passes as u32, ($advance - $consumed * $nc) as u32];
            // SAFETY: see the callers: the reads and writes are checked there.
            unsafe {
                core::arch::asm!(
                    "push {{{d}}}",
                    "ldr {n}, [{d}]",
                    "2:",
                    $pass,
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    "ldr {d}, [sp]",
                    "ldr {up}, [{d}, #4]",
                    "subs {up}, {up}, #1",
                    "beq 3f",
                    "str {up}, [{d}, #4]",
                    "ldr {n}, [{d}]",
                    "ldr {up}, [{d}, #8]",
                    "add {p}, {p}, {up}",
                    "b 2b",
                    "3:",
                    "add sp, sp, #4",
                    $($name = const $off,)*
                    p = inout(reg) $band.as_ptr() => _,
                    out = inout(reg) $acc.as_mut_ptr() => _,
                    d = inout(reg) state.as_mut_ptr() => _,
                    a0 = in(reg) wa[0],
                    a1 = in(reg) wa[1],
                    a2 = in(reg) wa[2],
                    b0 = in(reg) wb[0],
                    b1 = in(reg) wb[1],
                    b2 = in(reg) wb[2],
                    n = out(reg) _,
                    up = out(reg) _,
                    lo = out(reg) _,
                );
            }
        }};
    }

    /// See the portable [`super::rows_s1`].
    pub(super) fn rows_s1(band: &[u32], w: ([u32; 3], [u32; 3]), nc: usize, acc: &mut [[i32; 2]]) {
        let passes = acc.len() / nc.max(1);
        // The reads below, restated so that no change of a caller can make them unsound: for
        // pass `t < passes`, `nc + 2` words from `band[t * STRIDE]` and `band[(t + 1) * STRIDE]`,
        // `nc` pairs written from `acc[t * nc]`.
        if nc == 0 || passes == 0 || band.len() < passes * STRIDE + nc + 2 {
            return;
        }
        // One pixel: `ldr` post-increments `p` by 4, so the other offsets are 4 less.
        passes!(
            band,
            acc,
            nc,
            passes,
            4 * STRIDE,
            4,
            w,
            concat!(
                "ldr {d}, [{p}], #4\n",
                "smuad {up}, {d}, {a0}\n",
                "smultb {lo}, {d}, {a0}\n",
                "ldr {d}, [{p}, #{q0}]\n",
                "smlabt {up}, {d}, {b0}, {up}\n",
                "smlad {lo}, {d}, {b0}, {lo}\n",
                "ldr {d}, [{p}]\n",
                "smlad {up}, {d}, {a1}, {up}\n",
                "smlatb {lo}, {d}, {a1}, {lo}\n",
                "ldr {d}, [{p}, #{q1}]\n",
                "smlabt {up}, {d}, {b1}, {up}\n",
                "smlad {lo}, {d}, {b1}, {lo}\n",
                "ldr {d}, [{p}, #4]\n",
                "smlad {up}, {d}, {a2}, {up}\n",
                "smlatb {lo}, {d}, {a2}, {lo}\n",
                "ldr {d}, [{p}, #{q2}]\n",
                "smlabt {up}, {d}, {b2}, {up}\n",
                "smlad {lo}, {d}, {b2}, {lo}\n",
                "strd {up}, {lo}, [{out}], #8\n",
            ),
            q0 = 4 * STRIDE - 4,
            q1 = 4 * STRIDE,
            q2 = 4 * STRIDE + 4
        );
    }

    /// See the portable [`super::rows_s2`].
    pub(super) fn rows_s2(band: &[u32], w: ([u32; 3], [u32; 3]), nc: usize, acc: &mut [[i32; 2]]) {
        let passes = acc.len() / nc.max(1);
        // The reads below, restated: for pass `t < passes`, `2 * nc + 1` words from
        // `band[2 * t * STRIDE]` and the two pairs after it, `nc` pairs written.
        if nc == 0 || passes == 0 || band.len() < 2 * passes * STRIDE + 2 * nc + 1 {
            return;
        }
        // One pixel: `ldr` post-increments `p` by 8, so the other offsets are 8 less.
        passes!(
            band,
            acc,
            nc,
            passes,
            8 * STRIDE,
            8,
            w,
            concat!(
                "ldr {d}, [{p}], #8\n",
                "smuad {up}, {d}, {a0}\n",
                "ldr {d}, [{p}, #-4]\n",
                "smlad {up}, {d}, {a1}, {up}\n",
                "ldr {d}, [{p}]\n",
                "smlad {up}, {d}, {a2}, {up}\n",
                "ldr {d}, [{p}, #{q0}]\n",
                "smlabt {up}, {d}, {b0}, {up}\n",
                "smuad {lo}, {d}, {a0}\n",
                "ldr {d}, [{p}, #{q1}]\n",
                "smlabt {up}, {d}, {b1}, {up}\n",
                "smlad {lo}, {d}, {a1}, {lo}\n",
                "ldr {d}, [{p}, #{q2}]\n",
                "smlabt {up}, {d}, {b2}, {up}\n",
                "smlad {lo}, {d}, {a2}, {lo}\n",
                "ldr {d}, [{p}, #{r0}]\n",
                "smlabt {lo}, {d}, {b0}, {lo}\n",
                "ldr {d}, [{p}, #{r1}]\n",
                "smlabt {lo}, {d}, {b1}, {lo}\n",
                "ldr {d}, [{p}, #{r2}]\n",
                "smlabt {lo}, {d}, {b2}, {lo}\n",
                "strd {up}, {lo}, [{out}], #8\n",
            ),
            q0 = 4 * STRIDE - 8,
            q1 = 4 * STRIDE - 4,
            q2 = 4 * STRIDE,
            r0 = 8 * STRIDE - 8,
            r1 = 8 * STRIDE - 4,
            r2 = 8 * STRIDE
        );
    }
}

/// A channel's bias, rescaling, zero point and clamp, applied to rows of sums.
#[derive(Clone, Copy)]
struct Finish {
    bias: i32,
    scale: Scale,
    zy: i32,
    clamp: [i8; 2],
}

impl Finish {
    fn new(bias: i32, requant: Requant, zy: i32, clamp: [i8; 2]) -> Self {
        let scale = Scale::new(requant, zy);
        Finish {
            bias,
            scale,
            zy,
            clamp,
        }
    }

    /// `up[i] = finish(bias + acc[i][0])`, and `lo[i]` the same from `acc[i][1]`: through
    /// [`Scale::fast`] where it applies, `SSAT` for the whole int8 range.
    #[inline]
    fn rows(&self, acc: &[[i32; 2]], up: &mut [i8], lo: Option<&mut [i8]>) {
        let Finish {
            bias,
            scale,
            zy,
            clamp,
        } = *self;
        if !scale.is_fast() {
            let f = |a: i32| scale.apply(a.wrapping_add(bias), zy, clamp);
            for (v, a) in up.iter_mut().zip(acc) {
                *v = f(a[0]);
            }
            for (v, a) in lo.into_iter().flatten().zip(acc) {
                *v = f(a[1]);
            }
            return;
        }
        let scaled = |a: i32| scale.fast(a.wrapping_add(bias));
        let (l, h) = (i32::from(clamp[0]), i32::from(clamp[1]));
        let full = clamp == [i8::MIN, i8::MAX];
        match lo {
            Some(lo) if full => {
                for ((u, v), a) in up.iter_mut().zip(lo).zip(acc) {
                    *u = scaled(a[0]).clamp(-128, 127) as i8;
                    *v = scaled(a[1]).clamp(-128, 127) as i8;
                }
            }
            Some(lo) => {
                for ((u, v), a) in up.iter_mut().zip(lo).zip(acc) {
                    *u = scaled(a[0]).max(l).min(h) as i8;
                    *v = scaled(a[1]).max(l).min(h) as i8;
                }
            }
            None if full => {
                for (u, a) in up.iter_mut().zip(acc) {
                    *u = scaled(a[0]).clamp(-128, 127) as i8;
                }
            }
            None => {
                for (u, a) in up.iter_mut().zip(acc) {
                    *u = scaled(a[0]).max(l).min(h) as i8;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    extern crate std;
    use super::super::cases::{case, geom, portable, small_rescalings, Rng};
    use std::vec;

    /// Strides 1 and 2, padding from none to more than the kernel reaches on each side
    /// (asymmetric), maps from smaller than the window to wider than a pass of columns and
    /// taller than a band, odd and even row counts, channel multipliers: the same bits as the
    /// portable loop.
    #[test]
    fn dsp_depthwise_equals_the_portable_loop() {
        let mut rng = Rng(0x51_7cc1_b727_220a);
        let mut taken = 0;
        for i in 0..600 {
            let c_in = rng.int(2, 4) as usize;
            let mult = [1, 1, 2, 3][rng.int(0, 3) as usize];
            let s = rng.int(1, 2) as usize;
            let p = [0; 4].map(|_| rng.int(0, 3) as usize);
            let (h, w) = match i % 10 {
                0 => (rng.int(1, 4) as usize, rng.int(120, 200) as usize),
                1 => (rng.int(20, 60) as usize, rng.int(30, 70) as usize),
                _ => (rng.int(1, 14) as usize, rng.int(1, 14) as usize),
            };
            let Some(g) = geom((c_in, h, w), c_in * mult, [3, 3], [s, s], [1, 1], p, c_in) else {
                continue;
            };
            assert!(super::takes(&g));
            let mut c = case(&mut rng, g);
            // Half the cases with rescalings by less than 1/2.
            if i % 2 == 0 {
                small_rescalings(&mut rng, &mut c);
            }
            let want = portable(&c);
            let mut got = vec![0; want.len()];
            assert!(super::conv2d(
                &c.g, &c.input, &mut got, &c.weight, &c.records, c.ends
            ));
            assert_eq!(got, want, "{:?}", c.g);
            taken += 1;
        }
        assert!(taken > 400, "only {taken} cases taken");
    }

    /// The extremes: inputs and zero points making `|x - zx| = 255`, weights of -128, every
    /// clamp and rescalings of both kinds (by less than 1/2 and more).
    #[test]
    fn extreme_values() {
        let mut rng = Rng(3);
        for s in [1, 2] {
            let g = geom((3, 9, 7), 3, [3, 3], [s, s], [1, 1], [1, 2, 1, 0], 3).unwrap();
            for (x, zx) in [(127i8, -128), (-128i8, 127), (5, 5)] {
                for shift in [20i32, 31, 32, 33, 40, 62] {
                    let mut c = case(&mut rng, g);
                    c.input.fill(x);
                    c.weight.fill(-128);
                    c.ends.zx = zx;
                    for r in c.records.chunks_exact_mut(12) {
                        r[8..12].copy_from_slice(&shift.to_le_bytes());
                    }
                    let want = portable(&c);
                    let mut got = vec![0; want.len()];
                    assert!(super::conv2d(
                        &c.g, &c.input, &mut got, &c.weight, &c.records, c.ends
                    ));
                    assert_eq!(got, want, "{x} {zx} {shift}");
                }
            }
        }
    }

    /// Geometries left to the other kernels.
    #[test]
    fn refuses_other_geometries() {
        let dilated = geom((2, 9, 9), 2, [3, 3], [1, 1], [2, 2], [0; 4], 2).unwrap();
        let mixed = geom((2, 9, 9), 2, [3, 3], [1, 2], [1, 1], [0; 4], 2).unwrap();
        let five = geom((2, 9, 9), 2, [5, 5], [1, 1], [1, 1], [0; 4], 2).unwrap();
        let dense = geom((2, 9, 9), 2, [3, 3], [1, 1], [1, 1], [0; 4], 1).unwrap();
        for g in [dilated, mixed, five, dense] {
            assert!(!super::takes(&g), "{g:?}");
        }
    }
}
