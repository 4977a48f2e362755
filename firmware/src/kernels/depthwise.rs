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
/// other. Where the assembly runs, only 3-wide kernels (its own): the general path, with
/// its own assembly, is faster than the portable loop for the others.
pub(crate) fn takes(g: &Geom, wbuf_len: usize, plane_len: usize) -> bool {
    g.c_in == g.groups
        && g.c_out == g.groups
        && g.dw == 1
        && (g.sw == 1 || g.sw == 2)
        && (g.kw == 3
            || !cfg!(all(
                target_arch = "arm",
                target_abi = "eabihf",
                target_os = "none"
            )))
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
    let (wp, band) = (plane_width(g), band_rows(g, plane.len()));
    let per_decode = wbuf.len() / taps.max(1);
    if band == 0 || per_decode == 0 {
        return;
    }
    // The plane rows of the largest band and the slack after them. The padding columns are
    // zeroed here once: the bands only write input columns, or whole rows of zeros (and
    // not even those when one band holds the whole channel: its padding rows stay zero).
    let used = ((band - 1) * g.sh + window_rows(g)) * wp + slack(g.sw);
    let Some(plane) = plane.get_mut(..used) else {
        return;
    };
    plane.fill(0.0);
    let ow = g.ow.max(1);
    let full = Runs::new(g, band);
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
        for (i, rows) in out.chunks_mut(band * ow).enumerate() {
            let n = rows.len() / ow;
            let last_band;
            let runs = match n == band {
                true => &full,
                false => {
                    last_band = Runs::new(g, n);
                    &last_band
                }
            };
            fill_band(g, x, i * band * g.sh, runs.rows_in, plane, band < g.oh);
            if runs.whole.count > 0 {
                for r in 0..n {
                    let xs = plane.get(r * runs.row_step..).unwrap_or_default();
                    let o = rows.get_mut(r * ow..).unwrap_or_default();
                    blocks(o, xs, &runs.whole, wt, &b);
                }
            }
            if runs.last.count > 0 {
                let xs = plane.get(runs.last_x..).unwrap_or_default();
                let o = rows.get_mut(runs.last_out..).unwrap_or_default();
                blocks(o, xs, &runs.last, wt, &b);
            }
        }
    }
}

/// How a band of output rows is computed: the whole blocks of each row (one run per row,
/// from the row's start), then the rows' last blocks (one run down the band, from input
/// `last_x` and output `last_out`). Rows of at most one block have only the latter.
#[derive(Clone, Copy)]
struct Runs {
    /// Plane rows the band reads.
    rows_in: usize,
    /// Plane values from an output row's inputs to the next's.
    row_step: usize,
    whole: Run,
    last: Run,
    last_x: usize,
    last_out: usize,
}

impl Runs {
    /// The runs of a band of `rows` output rows.
    fn new(g: &Geom, rows: usize) -> Self {
        let (ow, block, wp) = (g.ow.max(1), block_len(g.sw), plane_width(g));
        let whole = if ow > block { ow / block } else { 0 };
        let row_step = g.sh * wp;
        let last = ow - whole * block;
        Runs {
            rows_in: (rows.max(1) - 1) * g.sh + window_rows(g),
            row_step,
            whole: Run::new(g, whole, block, block * g.sw, block),
            last: Run::new(g, if last > 0 { rows } else { 0 }, last, row_step, ow),
            last_x: whole * block * g.sw,
            last_out: whole * block,
        }
    }
}

/// Copies `rows` plane rows from padded row `first` of channel `x` into `plane`: an input
/// row goes to its columns (the padding columns are left as they are: zero), a row in the
/// padding is zeroed whole if `zero_padding` (else it must be zero already).
fn fill_band(
    g: &Geom,
    x: &[f32],
    first: usize,
    rows: usize,
    plane: &mut [f32],
    zero_padding: bool,
) {
    let wp = plane_width(g);
    let lead = g.pl.min(wp);
    // The band rows holding input rows: `r0..r1`.
    let r0 = g.pt.saturating_sub(first).min(rows);
    let r1 = (g.h + g.pt).saturating_sub(first).clamp(r0, rows);
    if zero_padding {
        for r in (0..r0).chain(r1..rows) {
            if let Some(row) = plane.get_mut(r * wp..(r + 1) * wp) {
                row.fill(0.0);
            }
        }
    }
    let src = x.get((first + r0).saturating_sub(g.pt) * g.w..);
    let dst = plane.get_mut(r0 * wp + lead..);
    if let (Some(src), Some(dst)) = (src, dst) {
        let cols = g.w.min(wp - lead);
        copy_rows(dst, wp, src, g.w, r1 - r0, cols);
    }
}

/// Copies `rows` rows of `cols` values, `src_step` apart in `src`, to `dst`, `dst_step`
/// apart (nothing, or only the rows that fit, if one would not fit).
fn copy_rows(
    dst: &mut [f32],
    dst_step: usize,
    src: &[f32],
    src_step: usize,
    rows: usize,
    cols: usize,
) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    arm::copy_rows(dst, dst_step, src, src_step, rows, cols);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    for r in 0..rows {
        let s = src.get(r * src_step..r * src_step + cols);
        let d = dst.get_mut(r * dst_step..r * dst_step + cols);
        if let (Some(s), Some(d)) = (s, d) {
            super::copy_row(d, s);
        }
    }
}

/// Blocks of equal width, evenly spaced, and the extent of what they read and write (set by
/// [`Run::new`], the only way to make one). Pixel `j` of block `i` is
/// `out[i * out_step + j] = b[j] + Σ w[ky * kw + kx] * x[i * x_step + ky * pitch + j * sw + kx]`
/// over the taps in `(ky, kx)` order, for `j < n`.
#[derive(Clone, Copy)]
struct Run {
    count: usize,
    n: usize,
    x_step: usize,
    out_step: usize,
    kh: usize,
    kw: usize,
    sw: usize,
    pitch: usize,
}

impl Run {
    #[inline(never)]
    fn new(g: &Geom, count: usize, n: usize, x_step: usize, out_step: usize) -> Self {
        let pitch = plane_width(g).saturating_mul(g.dh);
        Run {
            count,
            n,
            x_step,
            out_step,
            kh: g.kh,
            kw: g.kw,
            sw: g.sw,
            pitch,
        }
    }

    /// Inputs read from the run's start: every block reads its kernel rows' inputs for
    /// [`block_len`] pixels, those it does not store included (the plane's [`slack`] covers
    /// them). `usize::MAX` if that overflows. Computed from the fields the loops use, so
    /// that a check against it holds for them.
    fn reads(&self) -> usize {
        let last = self.count.saturating_sub(1);
        last.saturating_mul(self.x_step)
            .saturating_add((self.kh.max(1) - 1).saturating_mul(self.pitch))
            .saturating_add(
                (block_len(self.sw) - 1)
                    .saturating_mul(self.sw)
                    .saturating_add(self.kw),
            )
    }

    /// Outputs written from the run's start (`usize::MAX` if that overflows).
    fn writes(&self) -> usize {
        let last = self.count.saturating_sub(1);
        last.saturating_mul(self.out_step).saturating_add(self.n)
    }
}

/// The blocks of `run`, reading the plane from `x` and writing from `out` (nothing if the
/// run's extent does not fit them).
fn blocks(out: &mut [f32], x: &[f32], run: &Run, wt: &[f32], b: &[f32; MAX_BLOCK]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    arm::blocks3(out, x, run, wt, b);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    if run.reads() <= x.len() && run.writes() <= out.len() && wt.len() >= run.kh * run.kw {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if x86::blocks(out, x, run, wt, b[0]) {
            return;
        }
        for i in 0..run.count {
            let o = out.get_mut(i * run.out_step..i * run.out_step + run.n);
            let xs = x.get(i * run.x_step..);
            if let (Some(o), Some(xs)) = (o, xs) {
                match run.sw {
                    1 => portable::<1, { block_len(1) }>(o, xs, run, wt, b[0]),
                    _ => portable::<2, { block_len(2) }>(o, xs, run, wt, b[0]),
                }
            }
        }
    }
}

/// The portable loop for one block of [`blocks`] at stride `SW`, over a whole block of `B`
/// pixels (the sums of those past `out` are dropped).
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
#[allow(clippy::indexing_slicing)] // `j * SW` < `(B - 1) * SW + 1` = `xs.len()`
fn portable<const SW: usize, const B: usize>(
    out: &mut [f32],
    x: &[f32],
    run: &Run,
    wt: &[f32],
    b: f32,
) {
    let mut acc = [b; B];
    for (ky, ws) in wt.chunks_exact(run.kw.max(1)).take(run.kh).enumerate() {
        for (kx, &w) in ws.iter().enumerate() {
            let at = ky * run.pitch + kx;
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

/// The SIMD loops for x86-64: SSE2 (4 pixels a vector) and AVX2 (8), chosen at run time
/// ([`crate::kernels::simd`]). A vector holds neighbouring pixels of an output row, each
/// element an accumulator that starts from the bias and adds `w * x` (rounded, then added:
/// no fused multiply-add) for every tap in `(ky, kx)` order, as the portable loop does, so
/// both give the same bits. A run of whole blocks side by side is one row of pixels; a run
/// down the band, block by block. Pixels are computed 4 vectors at a time, then one, then
/// (AVX2) one SSE2 vector, then one by one, reading no input the portable loop does not.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod x86 {
    use super::{block_len, Run};
    use crate::kernels::simd::x86::{Avx2, F32s, Sse2};
    use crate::kernels::simd::{active, Level};

    /// What the run's pixels read: pixel `j` of a row has its window at `x + j * SW` (kernel
    /// rows `pitch` apart), its `kh * kw` weights at `wt`; every sum starts from `bias`.
    #[derive(Clone, Copy)]
    struct Window {
        kh: usize,
        kw: usize,
        pitch: usize,
        wt: *const f32,
        bias: f32,
    }

    /// `C` vectors of pixels: vector `c`'s first pixel's window at `x[c]`, its first output
    /// at `out[c]`, of which the first `stored[c]` (at most `N`) are written.
    ///
    /// # Safety
    /// Every window of every vector's `N` pixels lies in the run's input (`load_even` reads
    /// from a vector's first pixel's input to its last pixel's), and `out[c]..+ stored[c]`
    /// in its output.
    #[inline(always)]
    unsafe fn group<V: F32s, const C: usize, const SW: usize>(
        v: V,
        w: &Window,
        x: [*const f32; C],
        out: [*mut f32; C],
        stored: [usize; C],
    ) {
        let mut acc = [v.splat(w.bias); C];
        for ky in 0..w.kh {
            for kx in 0..w.kw {
                // SAFETY: the contract; `kh * kw` weights.
                unsafe {
                    let wv = v.splat(*w.wt.add(ky * w.kw + kx));
                    let at = ky * w.pitch + kx;
                    for (a, &x) in acc.iter_mut().zip(&x) {
                        let xs = match SW {
                            1 => v.load(x.add(at)),
                            _ => v.load_even(x.add(at)),
                        };
                        *a = v.add(*a, v.mul(wv, xs));
                    }
                }
            }
        }
        for ((&a, &o), &n) in acc.iter().zip(&out).zip(&stored) {
            // SAFETY: the contract: `stored[c]` outputs from `out[c]`.
            unsafe {
                if n >= V::N {
                    v.store(o, a);
                } else {
                    v.store_first(o, a, n);
                }
            }
        }
    }

    /// A row of pixels: `stored` outputs from `out`, windows from `x`, those of the first
    /// `readable` pixels inside the input (pixels past `stored` are computed, not stored):
    /// 4 vectors at a time, then 1, then (AVX2) an SSE2 vector, then pixel by pixel.
    ///
    /// # Safety
    /// As said: `readable >= stored`, the windows of `readable` pixels readable, `stored`
    /// outputs writable.
    #[inline(always)]
    unsafe fn row<V: F32s, const SW: usize>(
        v: V,
        w: &Window,
        x: *const f32,
        out: *mut f32,
        stored: usize,
        readable: usize,
    ) {
        let n = V::N;
        let mut p = 0;
        // SAFETY: every group ends at or below `readable`, stores below `stored`; the
        // single pixels read as the portable loop does, below `stored`.
        unsafe {
            let at = |p: usize| (x.add(p * SW), out.add(p));
            while p < stored && p + 4 * n <= readable {
                let (xs, os) = (
                    core::array::from_fn(|c| at(p + c * n).0),
                    core::array::from_fn(|c| at(p + c * n).1),
                );
                let left = core::array::from_fn(|c| stored.saturating_sub(p + c * n).min(n));
                group::<V, 4, SW>(v, w, xs, os, left);
                p += 4 * n;
            }
            while p < stored && p + n <= readable {
                group::<V, 1, SW>(v, w, [at(p).0], [at(p).1], [stored - p]);
                p += n;
            }
            let sse = Sse2::new();
            while p < stored && p + Sse2::N <= readable {
                group::<Sse2, 1, SW>(sse, w, [at(p).0], [at(p).1], [stored - p]);
                p += Sse2::N;
            }
            while p < stored {
                let mut a = w.bias;
                for ky in 0..w.kh {
                    for kx in 0..w.kw {
                        let xv = *x.add(ky * w.pitch + kx + p * SW);
                        a += *w.wt.add(ky * w.kw + kx) * xv;
                    }
                }
                *out.add(p) = a;
                p += 1;
            }
        }
    }

    /// The run's blocks: side by side, one row of all their pixels; else, when a block's
    /// `n` pixels fit one vector, 4 blocks at a time with one vector each (then one by one),
    /// else block by block as rows.
    ///
    /// # Safety
    /// [`blocks`]'s checks.
    #[inline(always)]
    unsafe fn run_blocks<V: F32s, const SW: usize>(
        v: V,
        w: &Window,
        run: &Run,
        x: *const f32,
        out: *mut f32,
    ) {
        let block = block_len(SW);
        let (count, n) = (run.count, run.n);
        // SAFETY: every block's windows of `block_len` pixels lie in the input (`blocks`
        // checked the run's extent), its `n` outputs in the output.
        unsafe {
            let at = |i: usize| (x.add(i * run.x_step), out.add(i * run.out_step));
            if n == block && run.out_step == block && run.x_step == block * SW {
                row::<V, SW>(v, w, x, out, count * block, count * block);
                return;
            }
            let mut i = 0;
            if n <= V::N && V::N <= block {
                while i + 4 <= count {
                    let (xs, os) = (
                        core::array::from_fn(|c| at(i + c).0),
                        core::array::from_fn(|c| at(i + c).1),
                    );
                    group::<V, 4, SW>(v, w, xs, os, [n; 4]);
                    i += 4;
                }
            }
            while i < count {
                row::<V, SW>(v, w, at(i).0, at(i).1, n, block);
                i += 1;
            }
        }
    }

    /// [`run_blocks`] with AVX2's registers (VEX-encoded throughout).
    ///
    /// # Safety
    /// [`run_blocks`]'s contract; AVX2 runs (an [`Avx2`] exists).
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(v: Avx2, w: &Window, run: &Run, x: *const f32, out: *mut f32) {
        // SAFETY: the contract.
        unsafe {
            match run.sw {
                1 => run_blocks::<Avx2, 1>(v, w, run, x, out),
                _ => run_blocks::<Avx2, 2>(v, w, run, x, out),
            }
        }
    }

    /// [`super::blocks`] at level SSE2 or AVX2; false (nothing done) at other levels or if
    /// the run does not fit `x`, `out` or `wt`.
    pub(super) fn blocks(out: &mut [f32], x: &[f32], run: &Run, wt: &[f32], bias: f32) -> bool {
        let Run {
            n,
            kh,
            kw,
            sw,
            pitch,
            ..
        } = *run;
        let block = block_len(sw);
        // The checks the loops' reads and writes rely on, restated so that no change of a
        // caller can make them unsound: stride 1 or 2, blocks of at most `block_len`
        // pixels, the run's extent (every block's windows for `block_len` pixels, its `n`
        // outputs) inside `x` and `out`, `kh * kw` weights.
        if !(sw == 1 || sw == 2)
            || active() < Level::Sse2
            || n > block
            || run.reads() > x.len()
            || run.writes() > out.len()
            || wt.len() < kh.saturating_mul(kw)
        {
            return false;
        }
        let (out, x) = (out.as_mut_ptr(), x.as_ptr());
        let w = Window {
            kh,
            kw,
            pitch,
            wt: wt.as_ptr(),
            bias,
        };
        match Avx2::new() {
            // SAFETY: the checks above; AVX2 runs (`avx` exists).
            Some(avx) => unsafe { run_avx2(avx, &w, run, x, out) },
            // SAFETY: the checks above.
            None => unsafe {
                match sw {
                    1 => run_blocks::<Sse2, 1>(Sse2::new(), &w, run, x, out),
                    _ => run_blocks::<Sse2, 2>(Sse2::new(), &w, run, x, out),
                }
            },
        }
        true
    }

    const _: () = assert!(block_len(1) >= 4 && block_len(2) >= 4);
}

/// The assembly loop for Arm's single-precision FPU (VFPv4-D16 and later, hard-float ABI).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::{block_len, Run, MAX_BLOCK};

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

    /// What the loop reads from memory besides its registers (byte offsets in the asm).
    #[repr(C)]
    struct Params {
        /// The bias row.
        bias: *const f32,
        /// The weights, 3 per kernel row.
        w: *const f32,
        kh: usize,
        /// Bytes from a block's inputs to the next block's.
        x_step: usize,
        /// Bytes from a block's outputs to the next block's.
        out_step: usize,
        /// Bytes of stores to jump over: those of the pixels past the block.
        store_skip: usize,
    }

    /// The loop over the blocks of a run. Per block, the accumulators are loaded from the
    /// bias row; per kernel row, its weights go to s0-s2 and the block's inputs to
    /// `$inputs`; `{mla}` jumps over the multiply-adds of the pixels past the block (12 bytes
    /// each: three `VMLA`s), the parameter `store_skip` over their stores (4 bytes each).
    /// `add pc` branches to its own address + 4 plus the offset, hence the `nop` (2 bytes)
    /// after it.
    macro_rules! blocks_loop {
        ($acc:literal, $inputs:literal, $pixels:expr, $stores:expr,
         $params:expr, $x:expr, $out:expr, $count:expr, $mla:expr, $pitch:expr) => {
            // SAFETY: see `blocks3`.
            unsafe {
                core::arch::asm!(
                    "3:",
                    "ldr {t}, [{p}]",
                    concat!("vldmia {t}, {{", $acc, "}}"),
                    "ldr {w}, [{p}, #4]",
                    "ldr {k}, [{p}, #8]",
                    "mov {x}, {xb}",
                    "4:",
                    "vldmia {w}!, {{s0-s2}}",
                    concat!("vldmia {x}, {{", $inputs, "}}"),
                    "add {x}, {pitch}",
                    "add pc, {mla}",
                    "nop",
                    $pixels,
                    "subs {k}, #1",
                    "bne 4b",
                    "ldr {t}, [{p}, #20]",
                    "add pc, {t}",
                    "nop",
                    $stores,
                    "ldr {t}, [{p}, #16]",
                    "add {out}, {t}",
                    "ldr {t}, [{p}, #12]",
                    "add {xb}, {t}",
                    "subs {count}, #1",
                    "bne 3b",
                    p = in(reg) &$params,
                    xb = inout(reg) $x.as_ptr() => _,
                    out = inout(reg) $out.as_mut_ptr() => _,
                    count = inout(reg) $count => _,
                    mla = in(reg) $mla,
                    pitch = in(reg) $pitch,
                    x = out(reg) _,
                    w = out(reg) _,
                    k = out(reg) _,
                    t = out(reg) _,
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

    /// [`super::blocks`] for 3-wide kernels at stride 1 or 2: `w` holds the run's `3 * kh`
    /// weights, `b` the bias (its first [`block_len`] values are read).
    pub(super) fn blocks3(out: &mut [f32], x: &[f32], run: &Run, w: &[f32], b: &[f32; MAX_BLOCK]) {
        // The checks the reads and writes below rely on: a 3-wide kernel at stride 1 or 2,
        // at least one block of 1 to `block_len` pixels, at least one kernel row and its
        // weights, and the run's extent (its inputs of whole blocks, `(block_len - 1) * sw
        // + 3` per kernel row, and its outputs) inside `x` and `out`.
        let Run {
            count,
            n,
            x_step,
            out_step,
            kh,
            kw,
            sw,
            pitch,
        } = *run;
        let max = block_len(sw);
        if kw != 3
            || !(sw == 1 || sw == 2)
            || count == 0
            || n == 0
            || n > max
            || kh == 0
            || w.len() < 3 * kh
            || run.reads() > x.len()
            || run.writes() > out.len()
        {
            return;
        }
        let params = Params {
            bias: b.as_ptr(),
            w: w.as_ptr(),
            kh,
            x_step: x_step.wrapping_mul(4),
            out_step: out_step.wrapping_mul(4),
            store_skip: (max - n) * 4,
        };
        let mla = (max - n) * 12;
        // Bytes from a kernel row's inputs to the next's.
        let pitch = pitch.wrapping_mul(4);
        if sw == 1 {
            // Accumulator `s20 + j` for pixel `j`; its inputs are `s3 + j` to `s5 + j`.
            blocks_loop!(
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
                params,
                x,
                out,
                count,
                mla,
                pitch
            );
        } else if sw == 2 {
            // Accumulator `s23 + j` for pixel `j`; its inputs are `s3 + 2j` to `s5 + 2j`.
            blocks_loop!(
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
                params,
                x,
                out,
                count,
                mla,
                pitch
            );
        }
    }

    /// Copies one value (`$i`, at byte offset `4 * $i`).
    macro_rules! copy {
        ($i:literal) => {
            concat!(
                "vldr s0, [{s}, #4*",
                $i,
                "]\n vstr s0, [{d}, #4*",
                $i,
                "]\n"
            )
        };
    }

    /// [`super::copy_rows`]: per row, 16 values at a time with one load and one store, then
    /// a jump into the copies of single values (8 bytes each) for the rest. Copies nothing
    /// when there is no row or a row would not fit.
    pub(super) fn copy_rows(
        dst: &mut [f32],
        dst_step: usize,
        src: &[f32],
        src_step: usize,
        rows: usize,
        cols: usize,
    ) {
        // The checks the reads and writes below rely on: at least one row of at least one
        // value, and every row inside `src` and `dst`.
        let fits = |step: usize, len: usize| {
            (rows.max(1) - 1)
                .checked_mul(step)
                .and_then(|l| l.checked_add(cols))
                .is_some_and(|end| end <= len)
        };
        if rows == 0 || cols == 0 || !fits(src_step, src.len()) || !fits(dst_step, dst.len()) {
            return;
        }
        // SAFETY: the checks above; each row reads `cols` values from `src` and writes them
        // to `dst`, and the next row starts `src_step`/`dst_step` values further.
        unsafe {
            core::arch::asm!(
                "3:",
                "mov {s}, {src}",
                "mov {d}, {dst}",
                "mov {c}, {chunks}",
                "cmp {c}, #0",
                "beq 5f",
                "4:",
                "vldmia {s}!, {{s0-s15}}",
                "vstmia {d}!, {{s0-s15}}",
                "subs {c}, #1",
                "bne 4b",
                "5:",
                "add pc, {skip}",
                "nop",
                copy!(14), copy!(13), copy!(12), copy!(11), copy!(10),
                copy!(9), copy!(8), copy!(7), copy!(6), copy!(5),
                copy!(4), copy!(3), copy!(2), copy!(1), copy!(0),
                "add {src}, {src_step}",
                "add {dst}, {dst_step}",
                "subs {rows}, #1",
                "bne 3b",
                src = inout(reg) src.as_ptr() => _,
                dst = inout(reg) dst.as_mut_ptr() => _,
                rows = inout(reg) rows => _,
                src_step = in(reg) src_step * 4,
                dst_step = in(reg) dst_step * 4,
                chunks = in(reg) cols / 16,
                skip = in(reg) (15 - cols % 16) * 8,
                s = out(reg) _,
                d = out(reg) _,
                c = out(reg) _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                options(nostack),
            )
        }
    }

    const _: () = assert!(
        block_len(1) == 12 && block_len(2) == 9,
        "the assembly holds 12 pixels at stride 1, 9 at stride 2"
    );
}
