//! Depthwise convolution (one input and one output channel per group) at row stride 1 or 2
//! and row dilation 1. In: the input planes, the packed weights, the bias, and the
//! convolution's buffers. Out: the output planes (activation not applied). Summation order
//! as for every convolution ([`super::conv`]): bias, then the taps in `(ky, kx)` order, a tap
//! in the padding contributing `w * 0.0`.
//!
//! Per channel, the input rows that a band of output rows reads are copied into a plane
//! buffer with their zero padding around them, so that every output pixel reads the plane
//! the same way, with no border case. Each output row is cut into blocks of at most
//! [`block_len`] pixels whose accumulators stay in registers over the whole window.
//!
//! The portable loop runs everywhere. On Arm cores with a single-precision FPU and the
//! hard-float ABI an assembly loop runs instead for 3-wide kernels: per kernel row it loads
//! the row's three weights and the inputs of the whole block with one instruction each, then
//! jumps into an unrolled run of multiply-adds so that only the block's pixels are computed.
//! Both give the same bits (`VMLA.F32` rounds the product before adding it, like
//! `acc += w * x`, and each accumulator sees the taps in the same order); the QEMU tests
//! compare the device's outputs with the host's, bit for bit.

use super::conv::Geom;
use crate::weights::{Matrix, Vector};

/// Output pixels of a block at most, at any stride: the length of the bias row.
const MAX_BLOCK: usize = 12;

/// Output pixels of a block at row stride `sw` (1 or 2): with the inputs of a block's kernel
/// row and the three weights, as many accumulators as the 32 FPU registers hold.
const fn block_len(sw: usize) -> usize {
    match sw {
        1 => MAX_BLOCK,
        _ => 9,
    }
}

/// Inputs past a band's last plane row that a row's last block may read (for pixels it does
/// not store): a block reads `(block_len - 1) * sw + kw` inputs per kernel row.
const fn slack(sw: usize) -> usize {
    (block_len(sw) - 1) * sw
}

/// Columns of a plane row: those the output row's windows cover, padding included.
fn plane_width(g: &Geom) -> usize {
    (g.ow.max(1) - 1) * g.sw + g.kw
}

/// Input rows a window covers (with dilation).
fn window_rows(g: &Geom) -> usize {
    (g.kh.max(1) - 1) * g.dh + 1
}

/// Output rows per band, for a plane buffer of `plane_len`: all of them if the padded
/// channel fits, 0 if not even one output row's window does.
fn band_rows(g: &Geom, plane_len: usize) -> usize {
    let plane_rows = plane_len.saturating_sub(slack(g.sw)) / plane_width(g).max(1);
    match plane_rows.checked_sub(window_rows(g)) {
        Some(extra) => (extra / g.sh.max(1) + 1).min(g.oh),
        None => 0,
    }
}

/// Whether [`depthwise`] takes the convolution, given the lengths of its weight buffer and
/// plane buffer: one input and one output channel per group, row stride 1 or 2, row
/// dilation 1, a channel's weights fitting the one buffer and one output row's window the
/// other.
pub(crate) fn takes(g: &Geom, wbuf_len: usize, plane_len: usize) -> bool {
    g.c_in == g.groups
        && g.c_out == g.groups
        && g.dw == 1
        && (g.sw == 1 || g.sw == 2)
        && g.kh * g.kw <= wbuf_len
        && band_rows(g, plane_len) > 0
}

/// The depthwise convolution ([`takes`] must hold): per channel and band of output rows,
/// the band's input rows are copied with their padding into `plane`, then every output
/// row is computed block by block from the bias and the taps. Weights are decoded into
/// `wbuf` for as many channels at once as it holds.
// Not inlined: its locals would otherwise add to the general path's stack frame.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    wbuf: &mut [f32],
    plane: &mut [f32],
) {
    let (hw, ohw, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let (wp, band, block) = (plane_width(g), band_rows(g, plane.len()), block_len(g.sw));
    let per_decode = wbuf.len() / taps.max(1);
    if band == 0 || per_decode == 0 {
        return;
    }
    // The plane rows of the largest band and the slack after them. The padding columns are
    // zeroed here once: the bands only write input columns, or whole rows of zeros.
    let used = ((band - 1) * g.sh + window_rows(g)) * wp + slack(g.sw);
    let Some(plane) = plane.get_mut(..used) else {
        return;
    };
    plane.fill(0.0);
    for c in 0..g.c_out {
        let (Some(x), Some(out)) = (
            input.get(c * hw..(c + 1) * hw),
            output.get_mut(c * ohw..(c + 1) * ohw),
        ) else {
            return;
        };
        let k = c % per_decode;
        if k == 0 {
            let n = per_decode.min(g.c_out - c);
            weight.decode(c * taps, wbuf.get_mut(..n * taps).unwrap_or_default());
        }
        let wt = wbuf.get(k * taps..(k + 1) * taps).unwrap_or_default();
        let b = [bias.map_or(0.0, |b| b.get(c)); MAX_BLOCK];
        for (i, rows) in out.chunks_mut(band * g.ow.max(1)).enumerate() {
            let oy0 = i * band;
            let n = rows.len() / g.ow.max(1);
            fill_band(
                g,
                x,
                oy0 * g.sh,
                (n.max(1) - 1) * g.sh + window_rows(g),
                plane,
            );
            for (r, orow) in rows.chunks_exact_mut(g.ow.max(1)).enumerate() {
                let Some(prow) = plane.get(r * g.sh * wp..) else {
                    return;
                };
                for (j, o) in orow.chunks_mut(block).enumerate() {
                    let xs = prow.get(j * block * g.sw..).unwrap_or_default();
                    row_block(o, xs, g, wp * g.dh, wt, &b);
                }
            }
        }
    }
}

/// Copies `rows` plane rows from padded row `first` of channel `x` into `plane`: an input
/// row goes to its columns (the padding columns are left as they are: zero), a row in the
/// padding is zeroed whole.
fn fill_band(g: &Geom, x: &[f32], first: usize, rows: usize, plane: &mut [f32]) {
    let wp = plane_width(g);
    let lead = g.pl.min(wp);
    let cols = g.w.min(wp - lead);
    for (r, dst) in plane.chunks_exact_mut(wp).take(rows).enumerate() {
        let iy = (first + r).wrapping_sub(g.pt);
        let src = match iy < g.h {
            true => x.get(iy * g.w..iy * g.w + cols),
            false => None,
        };
        match (src, dst.get_mut(lead..lead + cols)) {
            (Some(s), Some(d)) => d.copy_from_slice(s),
            _ => dst.fill(0.0),
        }
    }
}

/// One block of output pixels: `out[j] = b[j] + Σ w[ky * kw + kx] * x[ky * pitch + j * sw + kx]`
/// over the taps in `(ky, kx)` order, for `j < out.len()` (at most [`block_len`]). `x` must
/// hold the inputs of a whole block ([`slack`]) for the row's last blocks.
fn row_block(out: &mut [f32], x: &[f32], g: &Geom, pitch: usize, wt: &[f32], b: &[f32; MAX_BLOCK]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if g.kw == 3 {
        arm::block3(out, x, pitch, g.kh, g.sw, wt, b);
        return;
    }
    let b = b[0];
    match g.sw {
        1 => portable::<1, { block_len(1) }>(out, x, pitch, g.kw, wt, b),
        _ => portable::<2, { block_len(2) }>(out, x, pitch, g.kw, wt, b),
    }
}

/// The portable loop for [`row_block`] at stride `SW`, over a whole block of `B` pixels (the
/// sums of those past `out` are dropped).
#[allow(clippy::indexing_slicing)] // `j * SW` < `(B - 1) * SW + 1` = `xs.len()`
fn portable<const SW: usize, const B: usize>(
    out: &mut [f32],
    x: &[f32],
    pitch: usize,
    kw: usize,
    wt: &[f32],
    b: f32,
) {
    let mut acc = [b; B];
    for (ky, ws) in wt.chunks_exact(kw.max(1)).enumerate() {
        for (kx, &w) in ws.iter().enumerate() {
            let at = ky * pitch + kx;
            let Some(xs) = x.get(at..at + (B - 1) * SW + 1) else {
                return;
            };
            for (j, a) in acc.iter_mut().enumerate() {
                *a += w * xs[j * SW];
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a;
    }
}

/// The assembly loop for Arm's single-precision FPU (VFPv4-D16 and later, hard-float ABI).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::{block_len, MAX_BLOCK};

    /// The three multiply-adds of one pixel (accumulator `s$a`, inputs `s$x0..`), weights in
    /// s0-s2.
    macro_rules! pixel {
        ($a:literal, $x0:literal, $x1:literal, $x2:literal) => {
            concat!(
                "vmla.f32 s",
                $a,
                ", s0, s",
                $x0,
                "\n",
                "vmla.f32 s",
                $a,
                ", s1, s",
                $x1,
                "\n",
                "vmla.f32 s",
                $a,
                ", s2, s",
                $x2,
                "\n",
            )
        };
    }

    /// Stores accumulator `s$a` as pixel `$j`.
    macro_rules! store {
        ($a:literal, $j:literal) => {
            concat!("vstr s", $a, ", [{out}, #4*", $j, "]\n")
        };
    }

    /// The loop over the kernel rows, then the stores. The accumulators are loaded from the
    /// bias row; per kernel row, its weights go to s0-s2 and the block's inputs to `$inputs`;
    /// `{skip}` jumps over the pixels past the block (12 bytes each, their three `VMLA`s, and
    /// 4 bytes each, their `VSTR`). `add pc` branches to its own address + 4 plus the offset,
    /// hence the `nop` (2 bytes) after it.
    macro_rules! block_loop {
        ($acc:literal, $inputs:literal, $pixels:expr, $stores:expr,
         $out:expr, $x:expr, $pitch:expr, $kh:expr, $w:expr, $b:expr, $skip:expr) => {
            // SAFETY: see `block3`.
            unsafe {
                core::arch::asm!(
                    concat!("vldmia {b}, {{", $acc, "}}"),
                    "2:",
                    "vldmia {w}!, {{s0-s2}}",
                    concat!("vldmia {x}, {{", $inputs, "}}"),
                    "add {x}, {pitch}",
                    "add pc, {mla}",
                    "nop",
                    $pixels,
                    "subs {kh}, #1",
                    "bne 2b",
                    "add pc, {st}",
                    "nop",
                    $stores,
                    b = in(reg) $b.as_ptr(),
                    w = inout(reg) $w.as_ptr() => _,
                    x = inout(reg) $x.as_ptr() => _,
                    pitch = in(reg) $pitch * 4,
                    kh = inout(reg) $kh => _,
                    mla = in(reg) $skip * 12,
                    st = in(reg) $skip * 4,
                    out = in(reg) $out.as_mut_ptr(),
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                    out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                    out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                    out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                    out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                    out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                    out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                )
            }
        };
    }

    /// [`super::row_block`] for 3-wide kernels of `kh` rows at stride `sw` 1 or 2: `w` holds
    /// `3 * kh` weights, `b` the bias (its first [`block_len`] values are read).
    pub(super) fn block3(
        out: &mut [f32],
        x: &[f32],
        pitch: usize,
        kh: usize,
        sw: usize,
        w: &[f32],
        b: &[f32; MAX_BLOCK],
    ) {
        // The checks the reads and writes below rely on: 1 to `block_len` pixels, at least
        // one kernel row and its weights, and each kernel row's `(block_len - 1) * sw + 3`
        // inputs (a whole block's) inside `x`.
        let (n, max) = (out.len(), block_len(sw));
        let last = (kh.max(1) - 1)
            .checked_mul(pitch)
            .and_then(|l| l.checked_add((max - 1) * sw + 3));
        if n == 0 || n > max || kh == 0 || w.len() < 3 * kh || last.is_none_or(|l| l > x.len()) {
            return;
        }
        let skip = max - n;
        // Accumulator `s20 + j` for pixel `j`; its inputs are `s3 + j`, `s4 + j`, `s5 + j`.
        if sw == 1 {
            block_loop!(
                "s20-s31",
                "s3-s16",
                concat!(
                    pixel!(31, 14, 15, 16),
                    pixel!(30, 13, 14, 15),
                    pixel!(29, 12, 13, 14),
                    pixel!(28, 11, 12, 13),
                    pixel!(27, 10, 11, 12),
                    pixel!(26, 9, 10, 11),
                    pixel!(25, 8, 9, 10),
                    pixel!(24, 7, 8, 9),
                    pixel!(23, 6, 7, 8),
                    pixel!(22, 5, 6, 7),
                    pixel!(21, 4, 5, 6),
                    pixel!(20, 3, 4, 5),
                ),
                concat!(
                    store!(31, 11),
                    store!(30, 10),
                    store!(29, 9),
                    store!(28, 8),
                    store!(27, 7),
                    store!(26, 6),
                    store!(25, 5),
                    store!(24, 4),
                    store!(23, 3),
                    store!(22, 2),
                    store!(21, 1),
                    store!(20, 0),
                ),
                out,
                x,
                pitch,
                kh,
                w,
                b,
                skip
            );
        } else if sw == 2 {
            // Accumulator `s23 + j` for pixel `j`; its inputs are `s3 + 2j` to `s5 + 2j`.
            block_loop!(
                "s23-s31",
                "s3-s21",
                concat!(
                    pixel!(31, 19, 20, 21),
                    pixel!(30, 17, 18, 19),
                    pixel!(29, 15, 16, 17),
                    pixel!(28, 13, 14, 15),
                    pixel!(27, 11, 12, 13),
                    pixel!(26, 9, 10, 11),
                    pixel!(25, 7, 8, 9),
                    pixel!(24, 5, 6, 7),
                    pixel!(23, 3, 4, 5),
                ),
                concat!(
                    store!(31, 8),
                    store!(30, 7),
                    store!(29, 6),
                    store!(28, 5),
                    store!(27, 4),
                    store!(26, 3),
                    store!(25, 2),
                    store!(24, 1),
                    store!(23, 0),
                ),
                out,
                x,
                pitch,
                kh,
                w,
                b,
                skip
            );
        }
    }

    const _: () = assert!(
        block_len(1) == 12 && block_len(2) == 9,
        "the assembly holds 12 pixels at stride 1, 9 at stride 2"
    );
}
