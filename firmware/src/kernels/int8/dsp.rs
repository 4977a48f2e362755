//! int8 convolution through a widened patch, for Arm cores with the DSP extension (Cortex-M4,
//! M7, M33 with it: the engine's `eabihf` bare-metal targets). In: what [`super::conv::conv2d`]
//! takes. Out: the same bits, or `false` (nothing written) for a geometry this path does not
//! take, which then runs portably.
//!
//! Output pixels go two at a time (any two consecutive pixels of the output plane, so rows
//! wrap and the last odd pixel runs alone). For each pair and group, the pair's taps
//! `x - x_zero_point` (0 in the padding) are written once to a patch of 16-bit values on the
//! stack, and every output channel of the group then sums its weights against it: two 16-bit
//! products and an addition per `SMLAD`, its int8 weights widened four at a time by two
//! `SXTB16` (taps 0 and 2 of a group of four, then 1 and 3), which is why the patch keeps each
//! group of four taps in the order 0, 2, 1, 3.
//!
//! Same bits as the portable loop: `|x - x_zero_point| <= 255` and `|w| <= 128` fit 16 bits,
//! their products are exact, and `SMLAD` adds them to the accumulator modulo 2^32 (it sets the
//! Q flag on overflow and wraps), like the portable `wrapping_add`; integer sums do not depend
//! on their order. The QEMU tests compare every output bit with the host's.
//!
//! On the host, the unit tests run this path with a Rust model of the three instructions in
//! place of the assembly, against the portable kernel.

use super::ops::Scale;
use super::{record, Ends};
use crate::kernels::conv::Geom;
use nnblob_format::meta::QCHANNEL_LEN;

/// Taps (`C / groups * kh * kw`) a patch holds at most, a multiple of 4: ResNet-8's 64-channel
/// 3x3 convolution. The patch costs `2 * 2 * MAX_TAPS` = 2,304 bytes of stack.
pub(crate) const MAX_TAPS: usize = 576;
const _: () = assert!(MAX_TAPS % 4 == 0);

/// Output channels whose records [`conv2d`] decodes at once (16 bytes each on the stack).
const CHUNK: usize = 64;

/// The widened taps of two output pixels: for each group `g` of four taps, pixel 0's taps
/// `4g, 4g + 2, 4g + 1, 4g + 3`, then pixel 1's, as 16-bit values (the last group padded with
/// zeros). Word aligned: the loop reads it a word at a time.
#[repr(C, align(4))]
struct Patch([i16; 2 * MAX_TAPS]);

/// Where tap `t` of pixel `j` (0 or 1) lies in the patch.
#[inline(always)]
fn slot(t: usize, j: usize) -> usize {
    ((t & !3) << 1) | (j << 2) | ((t & 1) << 1) | ((t >> 1) & 1)
}

/// Whether [`conv2d`] takes this geometry: at least four taps (a group for the loop) and at
/// most [`MAX_TAPS`] (depthwise geometries go to their own kernel before this one).
pub(crate) fn takes(g: &Geom) -> bool {
    let groups = g.groups.max(1);
    let taps = g.c_in / groups * g.kh * g.kw;
    (4..=MAX_TAPS).contains(&taps)
}

/// The input offsets of a window's taps from its first input (`ci * H * W + ky * dh * W +
/// kx * dw`), in slot order (taps `4g, 4g + 2, 4g + 1, 4g + 3` of each group; 0 for the last
/// group's padding), 16 bits each ([`conv2d`] runs only when the largest fits), and the largest.
struct Offsets {
    offs: [u16; MAX_TAPS],
    max: usize,
}

impl Offsets {
    /// The table of `g`'s window, or `None` if an offset does not fit 16 bits.
    fn new(g: &Geom, cpg: usize) -> Option<Self> {
        let mut o = Offsets {
            offs: [0; MAX_TAPS],
            max: 0,
        };
        let mut t = 0;
        for ci in 0..cpg {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let off = ci * g.h * g.w + ky * g.dh * g.w + kx * g.dw;
                    let at = (t & !3) | ((t & 1) << 1) | ((t >> 1) & 1);
                    *o.offs.get_mut(at)? = u16::try_from(off).ok()?;
                    o.max = o.max.max(off);
                    t += 1;
                }
            }
        }
        Some(o)
    }
}

/// Pixels `a` and `b`'s taps, whose windows lie inside the input and start at `xa[0]` and
/// `xb[0]`, to the patch's first `groups4` groups: each slot's input at its offset, minus the
/// zero point.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
#[allow(clippy::indexing_slicing)] // offsets below `offs.max`, checked by the caller
fn fill_inside(patch: &mut Patch, offs: &Offsets, groups4: usize, xa: &[i8], xb: &[i8], zx: i32) {
    let groups = patch.0.chunks_exact_mut(8).zip(offs.offs.chunks_exact(4));
    for (dst, o) in groups.take(groups4) {
        for r in 0..4 {
            let o = usize::from(o[r]);
            dst[r] = (i32::from(xa[o]) - zx) as i16;
            dst[4 + r] = (i32::from(xb[o]) - zx) as i16;
        }
    }
}

/// The same on the Cortex-M4F, a slot pair at a time: two inputs loaded by their offsets,
/// packed into the two halves of a word (`PKHBT`) and the zero point subtracted from both
/// (`SSUB16`: `|x - zx| <= 255`, exact in 16 bits).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
fn fill_inside(patch: &mut Patch, offs: &Offsets, groups4: usize, xa: &[i8], xb: &[i8], zx: i32) {
    // The reads and writes below, restated so that no change of a caller can make them
    // unsound: every offset (at most `max`) inside both inputs, `groups4` groups of offsets
    // and of patch values.
    if groups4 == 0 || groups4 > MAX_TAPS / 4 || offs.max >= xa.len() || offs.max >= xb.len() {
        return;
    }
    // The zero point in both halves (`zx` is an int8 value).
    let zz = (zx as u32 & 0xffff).wrapping_mul(0x1_0001);
    // One pixel pair's word: slots `$k` and `$k + 1` of pixel a at `dst + 2k`, of pixel b at
    // `dst + 8 + 2k` (bytes).
    macro_rules! word {
        ($da:literal, $db:literal) => {
            concat!(
                "ldrh {oa}, [{op}], #2\n",
                "ldrh {ob}, [{op}], #2\n",
                "ldrsb {a0}, [{xa}, {oa}]\n",
                "ldrsb {a1}, [{xa}, {ob}]\n",
                "ldrsb {oa}, [{xb}, {oa}]\n",
                "ldrsb {ob}, [{xb}, {ob}]\n",
                "pkhbt {a0}, {a0}, {a1}, lsl #16\n",
                "pkhbt {oa}, {oa}, {ob}, lsl #16\n",
                "ssub16 {a0}, {a0}, {zz}\n",
                "ssub16 {oa}, {oa}, {zz}\n",
                "str {a0}, [{dst}, #",
                $da,
                "]\n",
                "str {oa}, [{dst}, #",
                $db,
                "]\n",
            )
        };
    }
    // SAFETY: the checks above: the loop reads `4 * groups4` offsets, inputs at those offsets
    // from `xa` and `xb`, and writes `8 * groups4` values of the patch (word aligned).
    unsafe {
        core::arch::asm!(
            "2:",
            word!("0", "8"),
            word!("4", "12"),
            "add {dst}, {dst}, #16",
            "subs {n}, {n}, #1",
            "bne 2b",
            op = inout(reg) offs.offs.as_ptr() => _,
            dst = inout(reg) patch.0.as_mut_ptr() => _,
            n = inout(reg) groups4 => _,
            xa = in(reg) xa.as_ptr(),
            xb = in(reg) xb.as_ptr(),
            zz = in(reg) zz,
            oa = out(reg) _,
            ob = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            options(nostack),
        );
    }
}

/// Writes the taps of output pixels `p` and `q` (pixel 0 and 1 of the patch; the group's input
/// channels from `cin0`) to the patch's first `groups4` groups.
#[allow(clippy::indexing_slicing)] // lengths checked by `conv2d`, slots below `8 * groups4`
#[allow(clippy::too_many_arguments)]
fn fill(
    patch: &mut Patch,
    offs: &Offsets,
    groups4: usize,
    g: &Geom,
    input: &[i8],
    cin0: usize,
    (p, q): (usize, usize),
    zx: i32,
) {
    let plane = g.h * g.w;
    let x = &input[cin0 * plane..];
    // The first input of a pixel's window, if the whole window lies inside the input.
    let inside = |p: usize| {
        let (iy0, ix0) = ((p / g.ow) * g.sh, (p % g.ow) * g.sw);
        let (iy0, ix0) = (iy0.checked_sub(g.pt)?, ix0.checked_sub(g.pl)?);
        let fits = iy0 + (g.kh - 1) * g.dh < g.h && ix0 + (g.kw - 1) * g.dw < g.w;
        fits.then_some(iy0 * g.w + ix0)
    };
    if let (Some(a), Some(b)) = (inside(p), inside(q)) {
        // Both windows inside: each slot's input at its offset, no coordinate checks.
        fill_inside(patch, offs, groups4, &x[a..], &x[b..], zx);
        return;
    }
    // A window across the border: its taps inside the input form a rectangle of kernel rows
    // and columns; the others are 0.
    let cpg = g.c_in / g.groups.max(1);
    for (j, p) in [(0, p), (1, q)] {
        for dst in patch.0.chunks_exact_mut(8).take(groups4) {
            dst[4 * j..4 * j + 4].fill(0);
        }
        let (oy, ox) = (p / g.ow, p % g.ow);
        let rows = kernel_range(oy * g.sh, g.pt, g.dh, g.kh, g.h);
        let cols = kernel_range(ox * g.sw, g.pl, g.dw, g.kw, g.w);
        for ci in 0..cpg {
            for ky in rows.0..rows.1 {
                let iy = oy * g.sh + ky * g.dh - g.pt;
                for kx in cols.0..cols.1 {
                    let ix = ox * g.sw + kx * g.dw - g.pl;
                    let t = (ci * g.kh + ky) * g.kw + kx;
                    patch.0[slot(t, j)] = (i32::from(x[ci * plane + iy * g.w + ix]) - zx) as i16;
                }
            }
        }
    }
}

/// The kernel positions `k` in `0..n_k` whose input coordinate `at + k * d - pad` lies in
/// `0..n`, as `(first, end)`.
fn kernel_range(at: usize, pad: usize, d: usize, n_k: usize, n: usize) -> (usize, usize) {
    // at + k * d >= pad  <=>  k >= ceil((pad - at) / d)
    let first = pad.saturating_sub(at).div_ceil(d).min(n_k);
    // at + k * d - pad <= n - 1  <=>  k <= (n - 1 + pad - at) / d
    let end = match (n + pad).checked_sub(at + 1) {
        Some(room) => (room / d + 1).min(n_k),
        None => 0,
    };
    (first, end.max(first))
}

/// The convolution, or `false` (nothing written) when [`takes`] refuses the geometry or a
/// slice is shorter than the geometry says.
#[allow(clippy::indexing_slicing)] // lengths checked on entry
pub(crate) fn conv2d(
    g: &Geom,
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) -> bool {
    let Ends { zx, zy, clamp } = ends;
    let groups = g.groups.max(1);
    let (cpg, opg) = (g.c_in / groups, g.c_out / groups);
    let taps = cpg * g.kh * g.kw;
    let npix = g.oh * g.ow;
    if !takes(g)
        || g.c_in % groups != 0
        || g.c_out % groups != 0
        || input.len() < g.c_in * g.h * g.w
        || output.len() < g.c_out * npix
        || weight.len() < g.c_out * taps
        || records.len() < g.c_out * QCHANNEL_LEN
    {
        return false;
    }
    let mut g = *g;
    g.sh = g.sh.max(1);
    g.sw = g.sw.max(1);
    let (full, tail) = (taps / 4, taps % 4);
    let Some(offs) = Offsets::new(&g, cpg) else {
        return false;
    };
    let groups4 = taps.div_ceil(4);
    let mut patch = Patch([0; 2 * MAX_TAPS]);
    for grp in 0..groups {
        // The group's output channels a chunk at a time, their records decoded once for every
        // pixel pair: the patch is filled once per pair and chunk.
        let mut c0 = grp * opg;
        while c0 < (grp + 1) * opg {
            let n = ((grp + 1) * opg - c0).min(CHUNK);
            let mut chunk = [(0i32, Scale::default()); CHUNK];
            let recs =
                records[c0 * QCHANNEL_LEN..(c0 + n) * QCHANNEL_LEN].chunks_exact(QCHANNEL_LEN);
            for (c, r) in chunk.iter_mut().zip(recs) {
                let ch = record(r);
                *c = (ch.bias, Scale::new(ch.requant, zy));
            }
            let ws = &weight[c0 * taps..(c0 + n) * taps];
            let out = &mut output[c0 * npix..(c0 + n) * npix];
            let mut p = 0;
            while p < npix {
                // The pair's second pixel (the first again for an odd last one, computed and
                // dropped).
                let q = if p + 1 < npix { p + 1 } else { p };
                fill(&mut patch, &offs, groups4, &g, input, grp * cpg, (p, q), zx);
                let channels = ws
                    .chunks_exact(taps)
                    .zip(&chunk)
                    .zip(out.chunks_exact_mut(npix));
                for ((w, &(bias, r)), y) in channels {
                    let (mut a0, mut a1) = dot(bias, w, &patch, full);
                    for (t, &wt) in w.iter().enumerate().skip(taps - tail) {
                        let wt = i32::from(wt);
                        a0 = a0.wrapping_add(wt * i32::from(patch.0[slot(t, 0)]));
                        a1 = a1.wrapping_add(wt * i32::from(patch.0[slot(t, 1)]));
                    }
                    y[p] = r.apply(a0, zy, clamp);
                    y[q] = r.apply(a1, zy, clamp);
                }
                p += 2;
            }
            c0 += n;
        }
    }
    true
}

/// `bias` plus the sums of the first `groups` groups of four taps of `w` against the patch's
/// two pixels.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
fn dot(bias: i32, w: &[i8], patch: &Patch, groups: usize) -> (i32, i32) {
    // The reads below, restated so that no change of a caller can make them unsound: four
    // weights and eight patch values per group.
    let (Some(w), Some(x)) = (w.get(..4 * groups), patch.0.get(..8 * groups)) else {
        return (bias, bias);
    };
    if groups == 0 {
        return (bias, bias);
    }
    let (mut a0, mut a1) = (bias, bias);
    // One group: four weights (an unaligned word: the M4 and M7 load it in one access), the
    // pair's eight patch values (two words per pixel, word aligned), eight products.
    macro_rules! group {
        () => {
            concat!(
                "ldr {w}, [{wp}], #4\n",
                "ldm {pp}!, {{r2, r3, r4, r5}}\n",
                "sxtb16 {wl}, {w}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                "smlad {a0}, {wl}, r2, {a0}\n",
                "smlad {a0}, {w}, r3, {a0}\n",
                "smlad {a1}, {wl}, r4, {a1}\n",
                "smlad {a1}, {w}, r5, {a1}\n",
            )
        };
    }
    // SAFETY: the loop reads `4 * groups` bytes from `w` and `8 * groups` 16-bit values from
    // `x`, both checked above; `x` is word aligned (`Patch`'s alignment, a group is 4 words).
    unsafe {
        core::arch::asm!(
            // An odd group first, then an odd pair, then the rest four at a time.
            "lsrs {n}, {n}, #1",
            "bcc 1f",
            group!(),
            "1:",
            "lsrs {n}, {n}, #1",
            "bcc 2f",
            group!(),
            group!(),
            "2:",
            "cmp {n}, #0",
            "beq 4f",
            "3:",
            group!(),
            group!(),
            group!(),
            group!(),
            "subs {n}, {n}, #1",
            "bne 3b",
            "4:",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            wp = inout(reg) w.as_ptr() => _,
            pp = inout(reg) x.as_ptr() => _,
            n = inout(reg) groups => _,
            w = out(reg) _,
            wl = out(reg) _,
            out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            options(nostack, readonly, pure),
        );
    }
    (a0, a1)
}

/// A Rust model of the assembly's instructions, for the unit tests on the host.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
#[allow(clippy::indexing_slicing)]
fn dot(bias: i32, w: &[i8], patch: &Patch, groups: usize) -> (i32, i32) {
    // SXTB16: bytes 0 and 2 (or 1 and 3, rotated) sign-extended into the two halves.
    let sxtb16 = |v: u32| [i32::from(v as u8 as i8), i32::from((v >> 16) as u8 as i8)];
    // SMLAD: both halves' products added to the accumulator, modulo 2^32.
    let smlad = |a: i32, x: [i32; 2], y: [i16; 2]| {
        a.wrapping_add(x[0] * i32::from(y[0]) + x[1] * i32::from(y[1]))
    };
    let (mut a0, mut a1) = (bias, bias);
    for k in 0..groups {
        let v = u32::from_le_bytes(
            [w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]].map(|b| b as u8),
        );
        let (lo, hi) = (sxtb16(v), sxtb16(v.rotate_right(8)));
        let x = &patch.0[8 * k..8 * k + 8];
        a0 = smlad(a0, lo, [x[0], x[1]]);
        a0 = smlad(a0, hi, [x[2], x[3]]);
        a1 = smlad(a1, lo, [x[4], x[5]]);
        a1 = smlad(a1, hi, [x[6], x[7]]);
    }
    (a0, a1)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    extern crate std;
    use super::super::cases::{case, geom, portable, small_rescalings, Rng};
    use std::vec;

    /// Odd channel counts, an odd number of pixels (the last pair's second pixel dropped),
    /// rows that wrap within a pair, tails of 1 to 3 taps, padding, strides, dilation and
    /// groups: the same bits as the portable loop.
    #[test]
    fn patch_path_equals_the_portable_loop() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut taken = 0;
        for _ in 0..400 {
            let groups = [1, 1, 2, 3][rng.int(0, 3) as usize];
            let cpg = rng.int(1, 7) as usize;
            let opg = rng.int(1, 5) as usize;
            let k = [rng.int(1, 4) as usize, rng.int(1, 4) as usize];
            let s = [rng.int(1, 3) as usize, rng.int(1, 3) as usize];
            let d = [rng.int(1, 2) as usize, rng.int(1, 2) as usize];
            let p = [0; 4].map(|_| rng.int(0, 2) as usize);
            let (h, w) = (rng.int(1, 9) as usize, rng.int(1, 9) as usize);
            let Some(g) = geom((groups * cpg, h, w), groups * opg, k, s, d, p, groups) else {
                continue;
            };
            if !super::takes(&g) {
                continue;
            }
            let mut c = case(&mut rng, g);
            // Half the cases with rescalings by less than 1/2.
            if taken % 2 == 0 {
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
        assert!(taken > 100, "only {taken} cases taken");
    }

    /// More output channels per group than a chunk of records (the patch filled once per chunk).
    #[test]
    fn channels_past_a_chunk() {
        let mut rng = Rng(11);
        for (c_out, groups) in [(super::CHUNK * 2 + 3, 1), (2 * (super::CHUNK + 1), 2)] {
            let g = geom(
                (4, 5, 3),
                c_out,
                [2, 2],
                [1, 1],
                [1, 1],
                [1, 0, 0, 1],
                groups,
            )
            .unwrap();
            let c = case(&mut rng, g);
            let want = portable(&c);
            let mut got = vec![0; want.len()];
            assert!(super::conv2d(
                &c.g, &c.input, &mut got, &c.weight, &c.records, c.ends
            ));
            assert_eq!(got, want);
        }
    }

    /// The largest patch, at the extremes of the values: every input and zero point making
    /// `|x - zx| = 255`, weights of -128.
    #[test]
    fn extreme_values_at_the_largest_patch() {
        let mut rng = Rng(7);
        let g = geom((64, 5, 5), 3, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1).unwrap();
        assert_eq!(g.c_in * g.kh * g.kw, super::MAX_TAPS);
        for (x, zx) in [(127i8, -128), (-128i8, 127)] {
            let mut c = case(&mut rng, g);
            c.input.fill(x);
            c.weight.fill(-128);
            c.ends.zx = zx;
            let want = portable(&c);
            let mut got = vec![0; want.len()];
            assert!(super::conv2d(
                &c.g, &c.input, &mut got, &c.weight, &c.records, c.ends
            ));
            assert_eq!(got, want);
        }
        let big = geom((65, 3, 3), 2, [3, 3], [1, 1], [1, 1], [0; 4], 1).unwrap();
        assert!(!super::takes(&big), "too many taps for the patch");
    }
}
