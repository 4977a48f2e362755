//! The convolution's micro-kernel: [`LANES`] output channels × [`PIX`] output pixels,
//! accumulated over a list of taps. In: the accumulators, the input (read in place, or a
//! zero-padded patch of it), a table of tap offsets and the taps' decoded weights. Out: the
//! accumulators, each having added `w * x` once per tap, in the table's order.
//!
//! The portable loop runs everywhere. On Arm cores with a single-precision FPU and the
//! hard-float ABI (Cortex-M4F, M7, M33, ...) an assembly loop runs instead for pixel strides 1
//! to 4: it keeps the 16 accumulators in registers and loads four weights, and at stride 1
//! four inputs, with one instruction each; for a 3-wide kernel row (strides 1 and 2) it loads
//! the inputs the row reads for four pixels once for its three taps (six at stride 1, nine at
//! stride 2), for a pair of neighbouring taps (rows of an even width) once for both.
//! [`accumulate_row`] runs a row of blocks in one call, their partial sums loaded from and
//! stored to the output planes by the loop itself; [`accumulate`] runs it on one block. Both give the same bits: `VMLA.F32` rounds
//! the product before adding it (it is not a fused multiply-add), exactly like `acc += w * x`,
//! and each accumulator sees the taps in the same order. The QEMU tests compare the two, bit
//! for bit.

/// Output channels of a block (one 4-channel block of the weight layout).
pub(crate) const LANES: usize = nnblob_format::layout::CONV_OC_BLOCK;
/// Output pixels of a block: neighbours along a row, `sw` input columns apart.
pub(crate) const PIX: usize = 4;
/// True on bare-metal cores without an Arm FPU (Cortex-M0+/M3, RISC-V): their RAM is often
/// small, and their soft-float arithmetic makes the buffers' size matter little, so the
/// convolution's stack buffers are smaller there. The results are the same bits either way
/// (partial sums between tiles are stored as the f32 they are).
pub(crate) const SMALL_STACK: bool = cfg!(all(
    target_os = "none",
    not(all(target_arch = "arm", target_abi = "eabihf"))
));

/// True under an operating system (Linux, macOS, Windows, ...), whose threads have stacks of
/// megabytes: there the convolution's stack buffers are larger, so that tiles hold more taps
/// and padded bands more rows (fewer passes over the partial sums, fewer weight decodings).
/// The results are the same bits either way.
pub(crate) const HOSTED: bool = cfg!(not(target_os = "none"));

/// Taps in a table at most.
pub(crate) const MAX_TAPS: usize = if SMALL_STACK {
    64
} else if HOSTED {
    256
} else {
    128
};

/// The accumulators of a block: `acc[lane][pixel]`, a lane's pixels side by side as in the
/// output planes.
pub(crate) type Block = [[f32; PIX]; LANES];

/// The offsets of a tile's taps from a block's first input, in tap order, and their maximum,
/// which bounds every read of [`accumulate`]. Each entry stands for `run` consecutive taps
/// one input apart (1; 3 for the kernel rows of a 3-wide kernel at dilation 1 and stride 1
/// or 2; 2 for the pairs of taps of rows of an even width at dilation 1 and strides 1 to 4:
/// the assembly loop adds an entry's taps from one load of their inputs).
pub(crate) struct TapTable {
    offs: [usize; MAX_TAPS],
    len: usize,
    max: usize,
    run: usize,
}

impl TapTable {
    pub fn new() -> Self {
        TapTable {
            offs: [0; MAX_TAPS],
            len: 0,
            max: 0,
            run: 1,
        }
    }

    /// Empties the table, for entries of `run` taps (at least 1).
    pub fn clear(&mut self, run: usize) {
        self.len = 0;
        self.max = 0;
        self.run = run.max(1);
    }

    /// The taps of the table.
    fn taps(&self) -> usize {
        self.len * self.run
    }

    /// How far past its offset an entry reads, for one pixel.
    fn reach(&self) -> usize {
        self.run - 1
    }

    /// Appends a tap; a full table (impossible: tiles have at most [`MAX_TAPS`] taps) keeps
    /// its length, which the callers' length checks then catch.
    pub fn push(&mut self, offset: usize) {
        if let Some(o) = self.offs.get_mut(self.len) {
            *o = offset;
            self.len += 1;
            self.max = self.max.max(offset);
        }
    }

    /// Whether `blocks` blocks (at least one) side by side, `PIX * sw` inputs apart from
    /// `x[base]` on, read only inside `x` (`x_len` elements), and `wt_len` weights cover the
    /// table's taps (at least one). In constant time: `max` bounds every offset.
    fn reads_fit(
        &self,
        x_len: usize,
        base: usize,
        sw: usize,
        blocks: usize,
        wt_len: usize,
    ) -> bool {
        let last = blocks.checked_sub(1).and_then(|b| {
            b.checked_mul(PIX * sw)?
                .checked_add(base)?
                .checked_add(self.max + self.reach())?
                .checked_add((PIX - 1) * sw)
        });
        self.len > 0 && wt_len >= self.taps() * LANES && last.is_some_and(|l| l < x_len)
    }

    fn offsets(&self) -> &[usize] {
        self.offs.get(..self.len).unwrap_or_default()
    }
}

/// `acc[l][j] += wt[t * LANES + l] * x[base + offs[t] + j * sw]` for every tap `t` in order.
/// Returns false, and adds nothing, when a read would fall outside `x` (the caller then reads
/// a patch instead) or when `wt` holds fewer weights than the table has taps.
pub(crate) fn accumulate(
    acc: &mut Block,
    x: &[f32],
    base: usize,
    sw: usize,
    taps: &TapTable,
    wt: &[f32],
) -> bool {
    if taps.len == 0 {
        return true;
    }
    if !taps.reads_fit(x.len(), base, sw, 1, wt.len()) {
        return false;
    }
    let (Some(x), Some(wt)) = (x.get(base..), wt.get(..taps.taps() * LANES)) else {
        return false;
    };
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if arm::takes(taps.run, sw) {
        // The block is a row of one block whose lanes lie `PIX` apart.
        arm::accumulate_row(acc.as_flattened_mut(), PIX, 1, x, sw, taps, wt);
        return true;
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if x86::accumulate(acc, x, sw, taps, wt) {
        return true;
    }
    portable(acc, x, sw, taps, wt);
    true
}

/// [`accumulate`] for `blocks` blocks side by side, from and to `out`: block `b` reads its
/// inputs from `base + b * PIX * sw` and its accumulators from lane `l`'s pixels
/// `out[l * stride + at + b * PIX..][..PIX]`, where it stores them back. Returns false, and
/// changes nothing, when a read or write would fall outside `x`, `out` or `wt`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn accumulate_row(
    out: &mut [f32],
    stride: usize,
    at: usize,
    blocks: usize,
    x: &[f32],
    base: usize,
    sw: usize,
    taps: &TapTable,
    wt: &[f32],
) -> bool {
    if !taps.reads_fit(x.len(), base, sw, blocks, wt.len())
        || !writes_fit(out.len(), stride, at, blocks)
    {
        return false;
    }
    let (Some(x), Some(wt)) = (x.get(base..), wt.get(..taps.taps() * LANES)) else {
        return false;
    };
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if arm::takes(taps.run, sw) {
        if let Some(out) = out.get_mut(at..) {
            arm::accumulate_row(out, stride, blocks, x, sw, taps, wt);
        }
        return true;
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(out) = out.get_mut(at..) {
        if x86::accumulate_row(out, stride, blocks, x, sw, taps, wt) {
            return true;
        }
    }
    for b in 0..blocks {
        let p = at + b * PIX;
        let mut acc: Block = core::array::from_fn(|l| {
            let lane = out.get(l * stride + p..l * stride + p + PIX);
            lane.and_then(|v| v.try_into().ok()).unwrap_or([0.0; PIX])
        });
        portable(
            &mut acc,
            x.get(b * PIX * sw..).unwrap_or_default(),
            sw,
            taps,
            wt,
        );
        for (l, a) in acc.iter().enumerate() {
            if let Some(lane) = out.get_mut(l * stride + p..l * stride + p + PIX) {
                lane.copy_from_slice(a);
            }
        }
    }
    true
}

/// [`accumulate`] for every block of `rows` output rows of `ow` pixels (the last block of a
/// row may be partial): row `r`'s block `b` reads its inputs from
/// `base + r * row_step + b * PIX * sw` and its accumulators from lane `l`'s pixels
/// `out[l * stride + r * ow + b * PIX..]`, where it stores them back (only the row's pixels).
/// Where a SIMD path exists (x86-64), rows of fewer than 8 pixels are computed several blocks at a time, across
/// rows, for more independent sums; returns false, and changes nothing, elsewhere or when a
/// read or write would fall outside `x`, `out` or `wt`.
#[allow(clippy::too_many_arguments)]
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) fn accumulate_grid(
    out: &mut [f32],
    stride: usize,
    ow: usize,
    rows: usize,
    x: &[f32],
    (base, row_step, sw): (usize, usize, usize),
    taps: &TapTable,
    wt: &[f32],
) -> bool {
    let (Some(x), Some(wt)) = (x.get(base..), wt.get(..taps.taps() * LANES)) else {
        return false;
    };
    x86::accumulate_grid(out, stride, ow, rows, x, row_step, sw, taps, wt)
}

/// Whether the accumulators of `blocks` blocks, lane `l`'s at `out[l * stride + at..]`, lie in
/// `out` (`out_len` elements).
fn writes_fit(out_len: usize, stride: usize, at: usize, blocks: usize) -> bool {
    let end = stride
        .checked_mul(LANES - 1)
        .and_then(|w| w.checked_add(at)?.checked_add(blocks.checked_mul(PIX)?));
    end.is_some_and(|e| e <= out_len)
}

/// The portable loop; `x` starts at the block's base. The accumulators stay in locals (in
/// vector registers on the host) until the end.
fn portable(acc: &mut Block, x: &[f32], sw: usize, taps: &TapTable, wt: &[f32]) {
    let mut sums = *acc;
    let each_tap = taps.offsets().iter().flat_map(|&o| o..o + taps.run);
    for (tap, w) in each_tap.zip(wt.chunks_exact(LANES)) {
        let xs: [f32; PIX] = if sw == 1 {
            match x.get(tap..tap + PIX).map(<[f32; PIX]>::try_from) {
                Some(Ok(xs)) => xs,
                _ => break,
            }
        } else {
            let Some(xs) = x.get(tap..tap + (PIX - 1) * sw + 1) else {
                break;
            };
            core::array::from_fn(|j| xs.get(j * sw).copied().unwrap_or(0.0))
        };
        for (a, &w) in sums.iter_mut().zip(w) {
            for (a, x) in a.iter_mut().zip(xs) {
                *a += w * x;
            }
        }
    }
    *acc = sums;
}

/// The SIMD loops for x86-64: SSE2 (4 pixels a vector) and AVX2 (8), chosen at run time
/// ([`crate::kernels::simd`]). A lane's pixels side by side in a vector, one vector per
/// output channel and group of pixels, each vector element an accumulator that adds
/// `w * x` (the product rounded, then added: no fused multiply-add) for every tap in the
/// table's order, as the portable loop does, so both give the same bits. A row of blocks is
/// computed 3, 2 or 1 vectors of pixels at a time per output channel (12 accumulators at
/// most, with the inputs of a tap and a broadcast weight: the 16 vector registers).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod x86 {
    use super::{writes_fit, Block, TapTable, LANES, PIX};
    use crate::kernels::simd::x86::{Avx2, F32s, Sse2};
    use crate::kernels::simd::{active, Level};
    use core::arch::x86_64::__m128;

    /// Adds the table's taps to `C` vectors of pixels per output channel: `acc[l][c]` holds
    /// lane `l`'s pixels `c * N..(c + 1) * N`, whose inputs start at `x` (`SW` apart).
    ///
    /// # Safety
    /// For every tap `t` of the table (offset plus run position), `x + t` up to the last
    /// input of pixel `C * N - 1` (`(C * N - 1) * SW` further) is readable, and `wt` holds
    /// `LANES` weights per tap.
    #[inline(always)]
    unsafe fn add_taps<V: F32s, const C: usize, const SW: usize>(
        v: V,
        acc: &mut [[V::V; C]; LANES],
        x: *const f32,
        taps: &TapTable,
        wt: *const f32,
    ) {
        let mut w = wt;
        for &o in taps.offsets() {
            for k in 0..taps.run {
                // SAFETY: the contract: every input of every pixel under the tap is readable
                // (`load_even` reads `2N - 1` values from its start: up to the last pixel's).
                let xs: [V::V; C] = core::array::from_fn(|c| unsafe {
                    let p = x.add(o + k + c * V::N * SW);
                    match SW {
                        1 => v.load(p),
                        _ => v.load_even(p),
                    }
                });
                for (l, lane) in acc.iter_mut().enumerate() {
                    // SAFETY: `LANES` weights per tap.
                    let wl = v.splat(unsafe { *w.add(l) });
                    for (a, &xv) in lane.iter_mut().zip(&xs) {
                        *a = v.add(*a, v.mul(wl, xv));
                    }
                }
                // SAFETY: the next tap's weights, or one past the last (never read).
                w = unsafe { w.add(LANES) };
            }
        }
    }

    /// One group of `C * N` pixels of a row of blocks: the partial sums loaded from the
    /// output planes (lane `l` at `out + l * stride`), the taps added, stored back.
    ///
    /// # Safety
    /// [`add_taps`]'s contract, and `out + l * stride..+ C * N` writable for every lane.
    #[inline(always)]
    unsafe fn group<V: F32s, const C: usize, const SW: usize>(
        v: V,
        out: *mut f32,
        stride: usize,
        x: *const f32,
        taps: &TapTable,
        wt: *const f32,
    ) {
        // SAFETY: the contract.
        unsafe {
            let mut acc: [[V::V; C]; LANES] = core::array::from_fn(|l| {
                core::array::from_fn(|c| v.load(out.add(l * stride + c * V::N)))
            });
            add_taps::<V, C, SW>(v, &mut acc, x, taps, wt);
            for (l, lane) in acc.iter().enumerate() {
                for (c, &a) in lane.iter().enumerate() {
                    v.store(out.add(l * stride + c * V::N), a);
                }
            }
        }
    }

    /// A row of `pixels` (a multiple of [`PIX`]) in groups of 3, 2, 1 vectors, then the
    /// last [`PIX`] pixels with SSE2 vectors when `V` is wider.
    ///
    /// # Safety
    /// [`group`]'s contract for the whole row.
    #[inline(always)]
    unsafe fn row<V: F32s, const SW: usize>(
        v: V,
        out: *mut f32,
        stride: usize,
        pixels: usize,
        x: *const f32,
        taps: &TapTable,
        wt: *const f32,
    ) {
        let mut p = 0;
        // SAFETY: every group lies in the row.
        unsafe {
            while p + 2 * V::N <= pixels {
                group::<V, 2, SW>(v, out.add(p), stride, x.add(p * SW), taps, wt);
                p += 2 * V::N;
            }
            if p + V::N <= pixels {
                group::<V, 1, SW>(v, out.add(p), stride, x.add(p * SW), taps, wt);
                p += V::N;
            }
            let sse = Sse2::new();
            while p + PIX <= pixels {
                group::<Sse2, 1, SW>(sse, out.add(p), stride, x.add(p * SW), taps, wt);
                p += PIX;
            }
        }
    }

    /// [`row`] with AVX2's registers (VEX-encoded throughout).
    ///
    /// # Safety
    /// [`row`]'s contract; AVX2 runs (an [`Avx2`] exists).
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn row_avx2(
        v: Avx2,
        out: *mut f32,
        stride: usize,
        pixels: usize,
        x: *const f32,
        sw: usize,
        taps: &TapTable,
        wt: *const f32,
    ) {
        // SAFETY: the contract.
        unsafe {
            match sw {
                1 => row::<Avx2, 1>(v, out, stride, pixels, x, taps, wt),
                _ => row::<Avx2, 2>(v, out, stride, pixels, x, taps, wt),
            }
        }
    }

    /// [`super::accumulate_row`] for `sw` 1 or 2 at level SSE2 or AVX2; `out` starts at the
    /// first block's lane 0, `x` at its first input. False (nothing done) at other strides
    /// or levels, or if a read or write would leave the slices.
    pub(super) fn accumulate_row(
        out: &mut [f32],
        stride: usize,
        blocks: usize,
        x: &[f32],
        sw: usize,
        taps: &TapTable,
        wt: &[f32],
    ) -> bool {
        // The checks the loops' reads and writes rely on, restated here (in constant time:
        // the table's maximum bounds every offset) so that no change of a caller can make
        // them unsound: every input a block's tap reads inside `x` (the loops read only
        // those, `load_even` included), `LANES` weights per tap, every partial sum in `out`.
        if !(sw == 1 || sw == 2)
            || !taps.reads_fit(x.len(), 0, sw, blocks, wt.len())
            || !writes_fit(out.len(), stride, 0, blocks)
        {
            return false;
        }
        let (o, xp, w, pixels) = (out.as_mut_ptr(), x.as_ptr(), wt.as_ptr(), blocks * PIX);
        if let Some(avx) = Avx2::new() {
            // SAFETY: the checks above; AVX2 runs (`avx` exists).
            unsafe { row_avx2(avx, o, stride, pixels, xp, sw, taps, w) };
        } else if active() >= Level::Sse2 {
            let sse = Sse2::new();
            // SAFETY: the checks above.
            unsafe {
                match sw {
                    1 => row::<Sse2, 1>(sse, o, stride, pixels, xp, taps, w),
                    _ => row::<Sse2, 2>(sse, o, stride, pixels, xp, taps, w),
                }
            }
        } else {
            return false;
        }
        true
    }

    /// [`super::accumulate`] for `sw` 1 or 2 at level SSE2 or above (4 pixels: one SSE2
    /// vector per lane); `x` starts at the block's base. False (nothing done) otherwise.
    pub(super) fn accumulate(
        acc: &mut Block,
        x: &[f32],
        sw: usize,
        taps: &TapTable,
        wt: &[f32],
    ) -> bool {
        // Restated as in `accumulate_row`, for one block.
        if !(sw == 1 || sw == 2)
            || active() < Level::Sse2
            || !taps.reads_fit(x.len(), 0, sw, 1, wt.len())
        {
            return false;
        }
        let sse = Sse2::new();
        let out = acc.as_flattened_mut().as_mut_ptr();
        // SAFETY: the checks above; `acc` holds `LANES` lanes of `PIX` pixels, `PIX` apart.
        unsafe {
            match sw {
                1 => group::<Sse2, 1, 1>(sse, out, PIX, x.as_ptr(), taps, wt.as_ptr()),
                _ => group::<Sse2, 1, 2>(sse, out, PIX, x.as_ptr(), taps, wt.as_ptr()),
            }
        }
        true
    }

    /// `C` blocks anywhere: block `c` reads its inputs from `x + xs[c]`, its partial sums from
    /// `out + os[c] + l * stride` for lane `l`, of which it stores the first `n[c]` (1 to
    /// [`PIX`]; the other pixels are computed from zeros and dropped).
    ///
    /// # Safety
    /// [`add_taps`]'s contract for each block (one SSE2 vector), and `n[c]` partial sums of
    /// each lane readable and writable.
    #[inline(always)]
    #[allow(clippy::indexing_slicing)] // `c < C`, the arrays' length (`from_fn`'s indices)
    unsafe fn scattered<const C: usize, const SW: usize>(
        v: Sse2,
        out: *mut f32,
        stride: usize,
        x: *const f32,
        (xs, os, n): ([usize; C], [usize; C], [usize; C]),
        taps: &TapTable,
        wt: *const f32,
    ) {
        // SAFETY: the contract.
        unsafe {
            let mut acc: [[__m128; C]; LANES] = core::array::from_fn(|l| {
                core::array::from_fn(|c| {
                    let p = out.add(os[c] + l * stride);
                    if n[c] >= PIX {
                        v.load(p)
                    } else {
                        let mut part = [0.0f32; PIX];
                        for (j, d) in part.iter_mut().enumerate() {
                            if j < n[c] {
                                *d = *p.add(j);
                            }
                        }
                        v.load(part.as_ptr())
                    }
                })
            });
            let mut w = wt;
            for &o in taps.offsets() {
                for k in 0..taps.run {
                    let xv: [__m128; C] = core::array::from_fn(|c| {
                        let p = x.add(xs[c] + o + k);
                        match SW {
                            1 => v.load(p),
                            _ => v.load_even(p),
                        }
                    });
                    for (l, lane) in acc.iter_mut().enumerate() {
                        let wl = v.splat(*w.add(l));
                        for (a, &xc) in lane.iter_mut().zip(&xv) {
                            *a = v.add(*a, v.mul(wl, xc));
                        }
                    }
                    w = w.add(LANES);
                }
            }
            for (l, lane) in acc.iter().enumerate() {
                for (c, &a) in lane.iter().enumerate() {
                    v.store_first(out.add(os[c] + l * stride), a, n[c]);
                }
            }
        }
    }

    /// [`super::accumulate_grid`] for `sw` 1 or 2 at level SSE2 or above, for rows of fewer
    /// than 8 pixels (wider ones fill AVX2 vectors in [`accumulate_row`]): the grid's blocks
    /// in row-major order, two at a time (8 independent vector sums). `x` starts at the grid's first input. False (nothing done) otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accumulate_grid(
        out: &mut [f32],
        stride: usize,
        ow: usize,
        rows: usize,
        x: &[f32],
        row_step: usize,
        sw: usize,
        taps: &TapTable,
        wt: &[f32],
    ) -> bool {
        let per_row = ow.div_ceil(PIX);
        // The checks the loops' reads and writes rely on, restated so that no change of a
        // caller can make them unsound: every input the last row's last block reads (the
        // farthest: inputs grow with the row and the block) inside `x`, with at least one
        // tap and `LANES` weights per tap; every row's pixels of every lane inside `out`.
        let last_read = (rows.checked_sub(1), per_row.checked_sub(1));
        let last_read = match last_read {
            (Some(r), Some(b)) => r
                .checked_mul(row_step)
                .and_then(|a| a.checked_add(b.checked_mul(PIX * sw)?)),
            _ => None,
        };
        let reads_fit =
            last_read.is_some_and(|base| taps.reads_fit(x.len(), base, sw, 1, wt.len()));
        let writes_fit = rows
            .checked_mul(ow)
            .and_then(|n| n.checked_add(stride.checked_mul(LANES - 1)?))
            .is_some_and(|end| end <= out.len());
        if !(sw == 1 || sw == 2) || active() < Level::Sse2 || ow >= 8 || !reads_fit || !writes_fit {
            return false;
        }
        let block = |i: usize| {
            let (r, b) = (i / per_row, i % per_row);
            let n = (ow - b * PIX).min(PIX);
            (r * row_step + b * PIX * sw, r * ow + b * PIX, n)
        };
        let (o, xp, w, sse) = (out.as_mut_ptr(), x.as_ptr(), wt.as_ptr(), Sse2::new());
        let count = rows * per_row;
        let mut i = 0;
        // SAFETY: the checks above: every block of the grid reads and writes inside them.
        unsafe {
            while i + 2 <= count {
                let (a, b) = (block(i), block(i + 1));
                let blocks = ([a.0, b.0], [a.1, b.1], [a.2, b.2]);
                match sw {
                    1 => scattered::<2, 1>(sse, o, stride, xp, blocks, taps, w),
                    _ => scattered::<2, 2>(sse, o, stride, xp, blocks, taps, w),
                }
                i += 2;
            }
            if i < count {
                let a = block(i);
                let blocks = ([a.0], [a.1], [a.2]);
                match sw {
                    1 => scattered::<1, 1>(sse, o, stride, xp, blocks, taps, w),
                    _ => scattered::<1, 2>(sse, o, stride, xp, blocks, taps, w),
                }
            }
        }
        true
    }

    const _: () = assert!(PIX == 4, "a block is one SSE2 vector wide");
}

/// The assembly loop for Arm's single-precision FPU (VFPv4-D16 and later, hard-float ABI).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::{TapTable, LANES, PIX};

    /// The 16 multiply-accumulates of one tap: its weights in registers `$w0..$w3`, the
    /// four pixels' inputs in `$x0..$x3`, `acc[l][j]` in `s(16 + 4l + j)`.
    macro_rules! mla_4x4 {
        ($w0:literal, $w1:literal, $w2:literal, $w3:literal,
         $x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
            concat!(
                "vmla.f32 s16, ",
                $w0,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s17, ",
                $w0,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s18, ",
                $w0,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s19, ",
                $w0,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s20, ",
                $w1,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s21, ",
                $w1,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s22, ",
                $w1,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s23, ",
                $w1,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s24, ",
                $w2,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s25, ",
                $w2,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s26, ",
                $w2,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s27, ",
                $w2,
                ", ",
                $x3,
                "\n",
                "vmla.f32 s28, ",
                $w3,
                ", ",
                $x0,
                "\n",
                "vmla.f32 s29, ",
                $w3,
                ", ",
                $x1,
                "\n",
                "vmla.f32 s30, ",
                $w3,
                ", ",
                $x2,
                "\n",
                "vmla.f32 s31, ",
                $w3,
                ", ",
                $x3,
                "\n",
            )
        };
    }

    /// One tap with weights in s0-s3 and inputs in s8-s11.
    macro_rules! tap_4x4 {
        () => {
            mla_4x4!("s0", "s1", "s2", "s3", "s8", "s9", "s10", "s11")
        };
    }

    /// A loop over the table's entries: `{p}` gets each entry's input address (from the
    /// offsets at `$offs` and the block's first input at `{x}`), `$body` adds the entry's taps,
    /// `$n` counts the entries down.
    macro_rules! entries_loop {
        ($offs:literal, $n:literal, $body:expr) => {
            concat!(
                "3:\n",
                "ldr {p}, [",
                $offs,
                "], #4\n",
                "add {p}, {x}, {p}, lsl #2\n",
                $body,
                "subs ",
                $n,
                ", ",
                $n,
                ", #1\n",
                "bne 3b\n",
            )
        };
    }

    /// The next tap's four weights from `$w` into s0-s3.
    macro_rules! weights_4 {
        ($w:literal) => {
            concat!("vldmia ", $w, "!, {{s0-s3}}\n")
        };
    }

    /// The loop over single taps: `$load` brings a tap's four inputs into s8-s11.
    macro_rules! taps_loop {
        ($offs:literal, $w:literal, $n:literal, $load:expr) => {
            entries_loop!($offs, $n, concat!($load, "\n", weights_4!($w), tap_4x4!()))
        };
    }

    /// The loop over kernel rows of three taps at stride 2: one load of the nine inputs the
    /// row reads for four pixels (s4-s12; pixel `j`'s under tap `k` is `s(4 + 2j + k)`), a
    /// tap's four weights at a time.
    macro_rules! rows3_s2_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s4-s12}}\n",
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s4", "s6", "s8", "s10"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s5", "s7", "s9", "s11"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s6", "s8", "s10", "s12"),
                )
            )
        };
    }

    /// The loop over kernel rows of three taps at stride 1: one load of the six inputs the
    /// row reads for four pixels (s8-s13), its twelve weights in two loads.
    macro_rules! rows3_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s8-s13}}\n",
                    "vldmia ",
                    $w,
                    "!, {{s0-s7}}\n",
                    mla_4x4!("s0", "s1", "s2", "s3", "s8", "s9", "s10", "s11"),
                    mla_4x4!("s4", "s5", "s6", "s7", "s9", "s10", "s11", "s12"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s10", "s11", "s12", "s13"),
                )
            )
        };
    }

    /// The loop over pairs of taps one input apart (kernel rows of an even width at
    /// dilation 1) at stride 1: one load of the five inputs the pair reads for four pixels
    /// (s8-s12), its eight weights in one load.
    macro_rules! pairs_s1_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s8-s12}}\n",
                    "vldmia ",
                    $w,
                    "!, {{s0-s7}}\n",
                    mla_4x4!("s0", "s1", "s2", "s3", "s8", "s9", "s10", "s11"),
                    mla_4x4!("s4", "s5", "s6", "s7", "s9", "s10", "s11", "s12"),
                )
            )
        };
    }

    /// Pairs of taps at stride 2: the eight inputs `x[0..8]` (s8-s15), pixel `j`'s under
    /// tap `k` in `s(8 + 2j + k)`.
    macro_rules! pairs_s2_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s8-s15}}\n",
                    "vldmia ",
                    $w,
                    "!, {{s0-s7}}\n",
                    mla_4x4!("s0", "s1", "s2", "s3", "s8", "s10", "s12", "s14"),
                    mla_4x4!("s4", "s5", "s6", "s7", "s9", "s11", "s13", "s15"),
                )
            )
        };
    }

    /// Pairs of taps at stride 3: the eleven inputs `x[0..11]` (s4-s14), pixel `j`'s under
    /// tap `k` in `s(4 + 3j + k)`, a tap's four weights at a time.
    macro_rules! pairs_s3_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldmia {p}, {{s4-s14}}\n",
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s4", "s7", "s10", "s13"),
                    weights_4!($w),
                    mla_4x4!("s0", "s1", "s2", "s3", "s5", "s8", "s11", "s14"),
                )
            )
        };
    }

    /// Pairs of taps at stride 4: each pixel's two inputs with one doubleword load (d4-d7,
    /// which are s8-s15: pixel `j`'s under tap `k` in `s(8 + 2j + k)`).
    macro_rules! pairs_s4_loop {
        ($offs:literal, $w:literal, $n:literal) => {
            entries_loop!(
                $offs,
                $n,
                concat!(
                    "vldr d4, [{p}]\n vldr d5, [{p}, #16]\n",
                    "vldr d6, [{p}, #32]\n vldr d7, [{p}, #48]\n",
                    "vldmia ",
                    $w,
                    "!, {{s0-s7}}\n",
                    mla_4x4!("s0", "s1", "s2", "s3", "s8", "s10", "s12", "s14"),
                    mla_4x4!("s4", "s5", "s6", "s7", "s9", "s11", "s13", "s15"),
                )
            )
        };
    }

    /// The loads of a tap's four inputs at strides 1 to 4.
    macro_rules! load_s4 {
        () => {
            "vldr s8, [{p}]\n vldr s9, [{p}, #16]\n vldr s10, [{p}, #32]\n vldr s11, [{p}, #48]"
        };
    }
    macro_rules! load_s3 {
        () => {
            "vldr s8, [{p}]\n vldr s9, [{p}, #12]\n vldr s10, [{p}, #24]\n vldr s11, [{p}, #36]"
        };
    }
    macro_rules! load_s2 {
        () => {
            "vldr s8, [{p}]\n vldr s9, [{p}, #8]\n vldr s10, [{p}, #16]\n vldr s11, [{p}, #24]"
        };
    }
    macro_rules! load_s1 {
        () => {
            "vldmia {p}, {{s8-s11}}"
        };
    }

    /// The registers the loops use: the weights, the inputs and the accumulators.
    macro_rules! block_asm {
        ($($template:expr),* ; $($operands:tt)*) => {
            // SAFETY: see the callers: every read and write was checked to be in bounds.
            unsafe {
                core::arch::asm!(
                    $($template),*,
                    $($operands)*
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

    /// Whether the loops below take tables of `run`-tap entries at pixel stride `sw`: single
    /// taps and pairs at strides 1 to 4, kernel rows of three at strides 1 and 2.
    pub(super) fn takes(run: usize, sw: usize) -> bool {
        matches!((run, sw), (1 | 2, 1..=4) | (3, 1 | 2))
    }

    /// [`super::accumulate_row`] for the tables and strides of [`takes`]; `out` starts at the
    /// first block's lane 0 (lanes `stride` apart), `x` at its first input. Inlined into
    /// its two callers: a call per row of blocks would save and restore s16-s31 each time.
    #[inline(always)]
    pub(super) fn accumulate_row(
        out: &mut [f32],
        stride: usize,
        blocks: usize,
        x: &[f32],
        sw: usize,
        taps: &TapTable,
        wt: &[f32],
    ) {
        // Restated as in `accumulate`, for every block, and for the partial sums.
        let offs = taps.offsets();
        if !taps.reads_fit(x.len(), 0, sw, blocks, wt.len())
            || !super::writes_fit(out.len(), stride, 0, blocks)
        {
            return;
        }
        // What the taps loop starts each block with: offsets, weights, tap count (loaded
        // into r3, r4, r5 with one instruction).
        let start = [offs.as_ptr() as usize, wt.as_ptr() as usize, offs.len()];
        macro_rules! run {
            ($taps_loop:expr, $step:literal) => {
                block_asm!(
                    "2:",
                    "mov {p}, {out}",
                    "vldmia {p}, {{s16-s19}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s20-s23}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s24-s27}}",
                    "add {p}, {p}, {stride}",
                    "vldmia {p}, {{s28-s31}}",
                    "ldm {start}, {{r3, r4, r5}}",
                    $taps_loop,
                    "mov {p}, {out}",
                    "vstmia {p}, {{s16-s19}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s20-s23}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s24-s27}}",
                    "add {p}, {p}, {stride}",
                    "vstmia {p}, {{s28-s31}}",
                    "add {out}, {out}, #16",
                    concat!("add {x}, {x}, #", $step),
                    "subs {blocks}, {blocks}, #1",
                    "bne 2b";
                    out = inout(reg) out.as_mut_ptr() => _,
                    stride = in(reg) stride * 4,
                    x = inout(reg) x.as_ptr() => _,
                    blocks = inout(reg) blocks => _,
                    start = in(reg) start.as_ptr(),
                    p = out(reg) _,
                    out("r3") _, out("r4") _, out("r5") _,
                )
            };
        }
        match (taps.run, sw) {
            (1, 1) => run!(taps_loop!("r3", "r4", "r5", load_s1!()), "16"),
            (1, 2) => run!(taps_loop!("r3", "r4", "r5", load_s2!()), "32"),
            (1, 3) => run!(taps_loop!("r3", "r4", "r5", load_s3!()), "48"),
            (1, 4) => run!(taps_loop!("r3", "r4", "r5", load_s4!()), "64"),
            (2, 1) => run!(pairs_s1_loop!("r3", "r4", "r5"), "16"),
            (2, 2) => run!(pairs_s2_loop!("r3", "r4", "r5"), "32"),
            (2, 3) => run!(pairs_s3_loop!("r3", "r4", "r5"), "48"),
            (2, 4) => run!(pairs_s4_loop!("r3", "r4", "r5"), "64"),
            (3, 1) => run!(rows3_loop!("r3", "r4", "r5"), "16"),
            (3, 2) => run!(rows3_s2_loop!("r3", "r4", "r5"), "32"),
            // The caller sends no other kind; reading as one of the above could overrun.
            _ => {}
        }
    }

    const _: () = assert!(LANES == 4 && PIX == 4, "the assembly holds a 4x4 block");
}
