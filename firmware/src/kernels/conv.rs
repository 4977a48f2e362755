//! 2-D convolution. In: the input planes, the packed weights ([`nnblob_format::layout`]),
//! the bias. Out: the output planes (activation not applied).
//!
//! Depthwise convolutions (one input and one output channel per group) at stride 1 or 2
//! and dilation 1 have their own path ([`depthwise`]). Every other convolution is blocked
//! three ways:
//! - output channels: [`LANES`] at a time (one 4-channel block of the layout; a group's last
//!   block may have fewer, the missing lanes having zero weights);
//! - taps: a tile of whole input channels (or kernel rows, or parts of a row for very wide
//!   kernels) whose weights are decoded once into a stack buffer, then used for every pixel;
//! - output pixels: [`PIX`] neighbours of a row at a time, added up by the micro-kernel
//!   ([`super::micro`]) with their accumulators in registers. A pointwise convolution (1x1,
//!   stride 1, unpadded) takes its pixels as one contiguous row.
//!
//! Zero padding is real zeros, as in PyTorch's definition. A padded convolution copies, tile
//! by tile, the input rows a band of output rows reads with their padding (whole maps when
//! they are small) and runs unpadded on the copy ([`Band`]). Blocks read their inputs in place
//! through a table of tap offsets; a block that would still read outside its input (in a
//! convolution too wide for a band, or the last block of an unpadded one) reads a patch: a
//! copy of the inputs it needs, with zeros in the padding, and its own table. The
//! micro-kernel's loop carries no tests.
//!
//! Summation order (fixed, documented in docs/FIRMWARE.md): every output is
//! `bias (or 0) + t_0 + t_1 + ...` over *all* its taps in `(ic, ky, kx)` order, a tap in the
//! padding contributing `w * 0.0`; partial sums between tiles are stored in the output as
//! f32, which does not change the result.

use super::depthwise::{depthwise, takes as takes_depthwise};
use super::micro::{
    accumulate, accumulate_row, Block, TapTable, HOSTED, LANES, MAX_TAPS, PIX, SMALL_STACK,
};
use crate::weights::{Matrix, Vector};

/// Decoded weights per tile, in f32s (2 KiB of stack, 1 KiB with [`SMALL_STACK`]):
/// [`MAX_TAPS`] taps of [`LANES`].
const TILE_LEN: usize = MAX_TAPS * LANES;
/// Kernel columns per tile at most, which bounds a patch row.
const MAX_TILE_COLS: usize = 32;
/// Length of the patch (1 KiB of stack).
const PATCH_LEN: usize = 2 * MAX_TILE_COLS * PIX;
/// Length of the buffer for zero-padded copies of input bands (3 KiB of stack, 1 KiB with
/// [`SMALL_STACK`], beside the patch: a convolution uses one or the other).
const PADDED_LEN: usize = if SMALL_STACK {
    256
} else if HOSTED {
    8192
} else {
    768
};

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
    // Validation refuses zero strides, dilations and groups; `max` lets the compiler see it.
    g.sh = g.sh.max(1);
    g.sw = g.sw.max(1);
    g.dh = g.dh.max(1);
    g.dw = g.dw.max(1);
    g.groups = g.groups.max(1);
    if g.w == 1 && g.ow == 1 && g.kw == 1 && g.pl == 0 && g.h > 1 {
        // A column (a K x 1 kernel down a map one pixel wide) is laid out as a row: run it
        // as a 1 x K kernel along a map one row high, whose blocks take 4 pixels, not 1.
        // The taps keep their order.
        g = Geom {
            h: 1,
            w: g.h,
            oh: 1,
            ow: g.oh,
            kh: 1,
            kw: g.kh,
            sh: 1,
            sw: g.sh,
            dh: 1,
            dw: g.dh,
            pt: 0,
            pl: g.pt,
            ..g
        };
    }
    let unpadded = g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w;
    if g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && unpadded {
        // Pointwise: a matrix product over the pixels, which are one contiguous row.
        g.w *= g.h;
        g.ow = g.w;
        g.h = 1;
        g.oh = 1;
    }
    let mut wbuf = [0.0f32; TILE_LEN];
    let mut scratch = [0.0f32; PATCH_LEN + PADDED_LEN];
    if takes_depthwise(&g, TILE_LEN, scratch.len()) {
        depthwise(&g, input, output, weight, bias, &mut wbuf, &mut scratch);
        return;
    }
    let Some((patch, padded)) = scratch.split_first_chunk_mut::<PATCH_LEN>() else {
        return;
    };
    run(&g, input, output, weight, bias, &mut wbuf, patch, padded);
}

/// A tile: the taps `(ic, ky, kx)` of the box `ic × ky × kx` (half-open ranges), which are
/// consecutive in `(ic, ky, kx)` order.
#[derive(Clone, Copy)]
struct Tile {
    ic: (usize, usize),
    ky: (usize, usize),
    kx: (usize, usize),
}

impl Tile {
    fn cols(&self) -> usize {
        self.kx.1 - self.kx.0
    }
    fn len(&self) -> usize {
        (self.ic.1 - self.ic.0) * (self.ky.1 - self.ky.0) * self.cols()
    }
}

/// Where a block's inputs go in the patch: kernel row `r` of the tile starts at `r * pitch`,
/// the input of tap column `kx` for pixel `j` is at `kx * tap + j * pixel`.
#[derive(Clone, Copy)]
struct PatchLayout {
    pitch: usize,
    tap: usize,
    pixel: usize,
}

impl PatchLayout {
    /// The smaller of two layouts for a row of `cols` taps: the inputs the row spans, as in
    /// the input (overlapping windows share them), or each tap's [`PIX`] inputs side by side.
    fn new(g: &Geom, cols: usize) -> Self {
        let span = (PIX - 1) * g.sw + (cols - 1) * g.dw + 1;
        if span <= cols * PIX {
            PatchLayout {
                pitch: span,
                tap: g.dw,
                pixel: g.sw,
            }
        } else {
            PatchLayout {
                pitch: cols * PIX,
                tap: PIX,
                pixel: 1,
            }
        }
    }
}

/// Calls `f` on the tiles of `ipg` input channels, in tap order: at most [`MAX_TAPS`] taps,
/// and kernel rows whose patch (with its row of zeros) fits [`PATCH_LEN`]. Whole input
/// channels when one fits (at most `max_channels`), split evenly; else kernel rows of a
/// channel; else parts of a row (at most [`MAX_TILE_COLS`]).
fn for_each_tile(g: &Geom, ipg: usize, max_channels: usize, mut f: impl FnMut(Tile)) {
    let (kh, kw) = (g.kh, g.kw);
    let cols = kw.min(MAX_TILE_COLS);
    // Kernel rows per tile: their patch rows and a row of zeros fit the patch (at least one
    // row does, since a row takes at most `cols * PIX`).
    let rows = (PATCH_LEN / PatchLayout::new(g, cols).pitch - 1)
        .min(MAX_TAPS / cols)
        .max(1);
    if cols == kw && kh <= rows {
        let per_tile = ipg.div_ceil(ipg.div_ceil((rows / kh).min(max_channels)));
        let mut ic = 0;
        while ic < ipg {
            let end = (ic + per_tile).min(ipg);
            f(Tile {
                ic: (ic, end),
                ky: (0, kh),
                kx: (0, kw),
            });
            ic = end;
        }
    } else {
        // Rows of one channel, whole when the kernel is narrow enough, else one at a time
        // (so that the taps of a tile stay consecutive).
        let rows = if cols == kw {
            kh.div_ceil(kh.div_ceil(rows))
        } else {
            1
        };
        for ic in 0..ipg {
            let mut ky = 0;
            while ky < kh {
                let ky_end = (ky + rows).min(kh);
                let mut kx = 0;
                while kx < kw {
                    let kx_end = (kx + cols).min(kw);
                    f(Tile {
                        ic: (ic, ic + 1),
                        ky: (ky, ky_end),
                        kx: (kx, kx_end),
                    });
                    kx = kx_end;
                }
                ky = ky_end;
            }
        }
    }
}

/// Decodes the weights of output channels `first..first + LANES` of group `grp` (zeros past
/// the group's last channel) for the tile's taps into `wt`, tap-major: `wt[t * LANES + lane]`.
fn decode_tile(
    g: &Geom,
    weight: Matrix<'_>,
    grp: usize,
    first: usize,
    tile: &Tile,
    wt: &mut [f32],
) {
    let opg = g.c_out / g.groups;
    let taps = g.c_in / g.groups * g.kh * g.kw;
    if first >= opg {
        return;
    }
    // The layout block holding channel `first`: `lanes` channels interleaved tap by tap.
    let lanes = LANES.min(opg - first);
    if lanes < LANES {
        wt.fill(0.0);
    }
    let block = (grp * opg + first) * taps;
    if tile.ky == (0, g.kh) && tile.kx == (0, g.kw) {
        // Whole channels: their taps are consecutive in the packed weight.
        let tap = tile.ic.0 * g.kh * g.kw;
        let dst = wt.get_mut(..tile.len() * LANES).unwrap_or_default();
        weight.decode_interleaved(block + tap * lanes, lanes, dst, LANES, 0);
        return;
    }
    let n = tile.cols();
    let mut t = 0;
    for ic in tile.ic.0..tile.ic.1 {
        for ky in tile.ky.0..tile.ky.1 {
            // One run of consecutive taps in the packed weight.
            let tap = (ic * g.kh + ky) * g.kw + tile.kx.0;
            let dst = wt.get_mut(t * LANES..(t + n) * LANES).unwrap_or_default();
            weight.decode_interleaved(block + tap * lanes, lanes, dst, LANES, 0);
            t += n;
        }
    }
}

/// The kernel rows of `tile` that read inside the input at output row `oy`: a range of `ky`
/// (kernel rows in the padding are at the ends, since input rows grow with `ky`).
fn rows_inside(g: &Geom, tile: &Tile, oy: usize) -> (usize, usize) {
    let inside = |ky: &usize| (oy * g.sh + ky * g.dh).wrapping_sub(g.pt) < g.h;
    let lo = (tile.ky.0..tile.ky.1).find(inside).unwrap_or(tile.ky.1);
    let hi = (lo..tile.ky.1).rfind(inside).map_or(lo, |ky| ky + 1);
    (lo, hi)
}

/// Copies the inputs of the block of pixels from column `bx` of output row `oy` under the
/// tile's kernel rows `rows` (those inside the input) into `patch`, laid out as `layout`,
/// with zeros where they fall in the padding columns. The other kernel rows read a row of
/// zeros elsewhere (see [`tile_pass`]) and are not written.
#[allow(clippy::too_many_arguments)]
fn fill_patch(
    g: &Geom,
    x: &[f32],
    tile: &Tile,
    layout: PatchLayout,
    rows: (usize, usize),
    oy: usize,
    bx: usize,
    patch: &mut [f32],
) {
    let (hw, pitch) = (g.h * g.w, layout.pitch);
    // Input column of pixel 0 under the tile's first tap column, before removing the padding.
    let col0 = bx * g.sw + tile.kx.0 * g.dw;
    let ix0 = col0.wrapping_sub(g.pl);
    // A patch row laid out like the input reads input columns `ix0 + i`: those inside are
    // `lead..end`, the same for every row.
    let lead = g.pl.saturating_sub(col0).min(pitch);
    let end = (g.w + g.pl).saturating_sub(col0).clamp(lead, pitch);
    let kh = tile.ky.1 - tile.ky.0;
    for (i, ic) in (tile.ic.0..tile.ic.1).enumerate() {
        for ky in rows.0..rows.1 {
            let r = i * kh + ky - tile.ky.0;
            let src = ic * hw + (oy * g.sh + ky * g.dh - g.pt) * g.w;
            let (Some(dst), Some(row)) = (
                patch.get_mut(r * pitch..(r + 1) * pitch),
                x.get(src..src + g.w),
            ) else {
                return;
            };
            if layout.pixel != g.sw {
                // Each tap's inputs side by side.
                for (kx, taps) in dst.chunks_exact_mut(PIX).enumerate() {
                    for (j, d) in taps.iter_mut().enumerate() {
                        let ix = ix0.wrapping_add(kx * g.dw + j * g.sw);
                        *d = row.get(ix).copied().unwrap_or(0.0);
                    }
                }
                continue;
            }
            let inside = row.get(ix0.wrapping_add(lead)..ix0.wrapping_add(end));
            let (head, rest) = dst.split_at_mut(lead);
            let (mid, tail) = rest.split_at_mut(end - lead);
            for (d, s) in mid.iter_mut().zip(inside.unwrap_or_default()) {
                *d = *s;
            }
            for d in head.iter_mut().chain(tail) {
                *d = 0.0;
            }
        }
    }
}

/// Fills `table` with the offsets of the tile's taps from a block's first input, in `g`'s
/// input: at dilation 1, one entry per kernel row when its taps are 3 consecutive inputs at
/// pixel stride 1 or 2, one per pair of taps when the row has an even width and the stride is
/// at most 4 (the micro-kernel adds an entry's taps from one load); else one per tap.
fn in_place_taps(g: &Geom, tile: &Tile, table: &mut TapTable) {
    let cols = tile.cols();
    let run = match (cols, g.sw, g.dw) {
        (3, 1 | 2, 1) => 3,
        (c, 1..=4, 1) if c % 2 == 0 => 2,
        _ => 1,
    };
    table.clear(run);
    for ic in 0..tile.ic.1 - tile.ic.0 {
        for ky in 0..tile.ky.1 - tile.ky.0 {
            let row = ic * g.h * g.w + ky * g.dh * g.w;
            for kx in (0..cols).step_by(run) {
                table.push(row + kx * g.dw);
            }
        }
    }
}

/// Adds one tile's taps to the partial sums in `out` (`lanes` output planes, `ohw` apart),
/// block by block with the micro-kernel: in place when a block's taps all read inside the
/// input (a run of such blocks in one call), else from a patch.
#[allow(clippy::too_many_arguments)]
fn tile_pass(
    g: &Geom,
    x: &[f32],
    out: &mut [f32],
    wt: &[f32],
    tile: &Tile,
    lanes: usize,
    ohw: usize,
    tables: (&TapTable, &mut TapTable),
    patch: &mut [f32; PATCH_LEN],
) {
    let (in_place, patched) = tables;
    let hw = g.h * g.w;
    // Narrow rows whose every window lies inside the input (an unpadded convolution, or a
    // padded band's copy): the whole grid of blocks in one call, where a SIMD path takes it.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let inside = g.pt == 0
            && g.pl == 0
            && (g.oh - 1) * g.sh + (tile.ky.1 - 1) * g.dh < g.h
            && (g.ow - 1) * g.sw + (tile.kx.1 - 1) * g.dw < g.w;
        let base = tile.ic.0 * hw + tile.ky.0 * g.dh * g.w + tile.kx.0 * g.dw;
        let grid = (base, g.sh * g.w, g.sw);
        if lanes == LANES
            && inside
            && super::micro::accumulate_grid(out, ohw, g.ow, g.oh, x, grid, in_place, wt)
        {
            return;
        }
    }
    let layout = PatchLayout::new(g, tile.cols());
    let kh = tile.ky.1 - tile.ky.0;
    let rows = (tile.ic.1 - tile.ic.0) * kh;
    // The patch: a row per kernel row of the tile, then a row of zeros, which the kernel
    // rows in the padding read.
    let zero_row = rows * layout.pitch;
    let Some(patch) = patch.get_mut(..zero_row + layout.pitch) else {
        return;
    };
    if let Some(zeros) = patch.get_mut(zero_row..) {
        zeros.fill(0.0);
    }
    // The taps' offsets in the patch, built for the kernel rows inside the input when a
    // block first needs them.
    let mut patched_rows = None;
    // Input columns of a block's first pixel, from its first to its last tap.
    let (first_col, last_col) = (tile.kx.0 * g.dw, (tile.kx.1 - 1) * g.dw);
    for oy in 0..g.oh {
        let inside = rows_inside(g, tile, oy);
        let all_rows = inside == tile.ky;
        let top = (oy * g.sh + tile.ky.0 * g.dh).wrapping_sub(g.pt);
        // The pixels a block stores read no padding; those past the row's end may read the
        // next row (their sums are dropped) as long as the reads stay in `x`.
        let cols_inside = |bx: usize, pixels: usize| {
            bx * g.sw + first_col >= g.pl && (bx + pixels - 1) * g.sw + last_col < g.w + g.pl
        };
        let base = |bx: usize| tile.ic.0 * hw + top * g.w + bx * g.sw + first_col - g.pl;
        let mut bx = 0;
        while bx < g.ow {
            let pixels = PIX.min(g.ow - bx);
            let p0 = oy * g.ow + bx;
            if all_rows && lanes == LANES && pixels == PIX && cols_inside(bx, PIX) {
                // A run of whole blocks inside the input.
                let mut blocks = 1;
                while bx + (blocks + 1) * PIX <= g.ow && cols_inside(bx + blocks * PIX, PIX) {
                    blocks += 1;
                }
                let (stride, sw) = (ohw, g.sw);
                if accumulate_row(out, stride, p0, blocks, x, base(bx), sw, in_place, wt) {
                    bx += blocks * PIX;
                    continue;
                }
            }
            let mut acc: Block = core::array::from_fn(|l| load(out, l * ohw + p0, pixels));
            let read_in_place = all_rows
                && cols_inside(bx, pixels)
                && accumulate(&mut acc, x, base(bx), g.sw, in_place, wt);
            if !read_in_place {
                if patched_rows != Some(inside) {
                    patched.clear(1);
                    for r in 0..rows {
                        let ky = tile.ky.0 + r % kh;
                        let row = match ky >= inside.0 && ky < inside.1 {
                            true => r * layout.pitch,
                            false => zero_row,
                        };
                        for kx in 0..tile.cols() {
                            patched.push(row + kx * layout.tap);
                        }
                    }
                    patched_rows = Some(inside);
                }
                fill_patch(g, x, tile, layout, inside, oy, bx, patch);
                accumulate(&mut acc, patch, 0, layout.pixel, patched, wt);
            }
            for (l, a) in acc.iter().enumerate().take(lanes) {
                store(a, out, l * ohw + p0, pixels);
            }
            bx += PIX;
        }
    }
}

/// A lane's partial sums: `pixels` of them from `out[at..]` (zeros past them and past `out`).
fn load(out: &[f32], at: usize, pixels: usize) -> [f32; PIX] {
    match out.get(at..at + PIX).map(<[f32; PIX]>::try_from) {
        Some(Ok(whole)) if pixels == PIX => whole,
        // Element by element: a copy loop of unknown length would become a call to memcpy.
        _ => core::array::from_fn(|j| match j < pixels {
            true => out.get(at + j).copied().unwrap_or(0.0),
            false => 0.0,
        }),
    }
}

/// Stores the first `pixels` sums of a lane to `out[at..]`.
fn store(acc: &[f32; PIX], out: &mut [f32], at: usize, pixels: usize) {
    match out
        .get_mut(at..at + pixels)
        .map(<&mut [f32; PIX]>::try_from)
    {
        Some(Ok(whole)) => *whole = *acc,
        _ => {
            for (j, v) in acc.iter().enumerate().take(pixels) {
                if let Some(o) = out.get_mut(at + j) {
                    *o = *v;
                }
            }
        }
    }
}

/// The general convolution: blocks of [`LANES`] output channels × [`PIX`] pixels, tile by
/// tile. A padded convolution copies the input rows a band of output rows reads, for a
/// tile's channels, with their padding into [`PADDED_LEN`] (whole maps when they fit), then
/// runs as an unpadded convolution on the copy: its blocks all read in place.
#[allow(clippy::too_many_arguments)]
fn run(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    wbuf: &mut [f32; TILE_LEN],
    patch: &mut [f32; PATCH_LEN],
    padded: &mut [f32],
) {
    let ipg = g.c_in / g.groups;
    let hw = g.h * g.w;
    let band = Band::plan(g, ipg);
    let mut tables = (TapTable::new(), TapTable::new());
    for grp in 0..g.groups {
        let Some(x) = input.get(grp * ipg * hw..(grp + 1) * ipg * hw) else {
            return;
        };
        let mut oy0 = 0;
        while oy0 < g.oh {
            let rows = band.map_or(g.oh, |b| b.rows.min(g.oh - oy0));
            let mut ox0 = 0;
            while ox0 < g.ow {
                let cols = band.map_or(g.ow, |b| b.cols.min(g.ow - ox0));
                let at = (oy0 * g.ow + ox0, rows, cols);
                let bufs = (&mut *wbuf, &mut *patch, &mut *padded);
                run_band(g, x, output, weight, bias, grp, band, at, bufs, &mut tables);
                ox0 += cols;
            }
            oy0 += rows;
        }
    }
}

/// The buffers of [`run`]: decoded weights, the patch, the padded copy.
type Buffers<'a> = (
    &'a mut [f32; TILE_LEN],
    &'a mut [f32; PATCH_LEN],
    &'a mut [f32],
);

/// One band of group `grp`'s output (`x`: the group's input channels): `rows` output rows of
/// `cols` pixels from output pixel `at` of the planes, tile by tile, each tile's inputs
/// read in place (no band: `at` is 0 and the band the whole output) or from the band's padded
/// copy.
#[allow(clippy::too_many_arguments)]
fn run_band(
    g: &Geom,
    x: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    grp: usize,
    band: Option<Band>,
    (at, rows, cols): (usize, usize, usize),
    (wbuf, patch, padded): Buffers<'_>,
    (in_place, patched): &mut (TapTable, TapTable),
) {
    let ipg = g.c_in / g.groups;
    let opg = g.c_out / g.groups;
    let ohw = g.oh * g.ow;
    let max_channels = band.map_or(usize::MAX, |b| b.channels);
    // The band's geometry: its copy's rows and columns, unpadded; the padded input row
    // and column it starts at.
    let in_band = Geom {
        h: (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1,
        w: (cols - 1) * g.sw + (g.kw - 1) * g.dw + 1,
        oh: rows,
        ow: cols,
        pt: 0,
        pl: 0,
        ..*g
    };
    let origin = (at / g.ow * g.sh, at % g.ow * g.sw);
    // The channels the padded copy holds: tiles of the same channels (parts of their kernel)
    // read the same copy.
    let mut copied = None;
    for_each_tile(g, ipg, max_channels, |tile| {
        // The tile's inputs: in place, or the band's padded copy of its channels.
        let (src, geom, taps) = match band {
            Some(_) => {
                let n = tile.ic.1 - tile.ic.0;
                let len = n * in_band.h * in_band.w + (PIX - 1) * g.sw;
                let copy = padded.get_mut(..len).unwrap_or_default();
                if copied != Some(tile.ic) {
                    pad_channels(g, x, tile.ic.0, origin, &in_band, copy);
                    copied = Some(tile.ic);
                }
                let local = Tile { ic: (0, n), ..tile };
                (&*copy, &in_band, local)
            }
            None => (x, g, tile),
        };
        in_place_taps(geom, &taps, in_place);
        let first_tile = tile.ic.0 == 0 && tile.ky.0 == 0 && tile.kx.0 == 0;
        // The band's pixels of a plane: its rows, the last one `cols` long.
        let span = (rows - 1) * g.ow + cols;
        let mut first = 0;
        while first < opg {
            let lanes = LANES.min(opg - first);
            let oc0 = grp * opg + first;
            // The band's output pixels of the block's channels: lane `l` at `l * ohw`.
            let at = oc0 * ohw + at;
            let Some(out) = output.get_mut(at..at + (lanes - 1) * ohw + span) else {
                return;
            };
            if first_tile {
                // The sums start from the bias.
                for l in 0..lanes {
                    let b = bias.map_or(0.0, |b| b.get(oc0 + l));
                    if let Some(plane) = out.get_mut(l * ohw..l * ohw + span) {
                        // Four at a time: a fill of unknown length is compiled to a loop of
                        // single stores.
                        let mut quads = plane.chunks_exact_mut(4);
                        for q in &mut quads {
                            q.copy_from_slice(&[b; 4]);
                        }
                        quads.into_remainder().fill(b);
                    }
                }
            }
            let wt = wbuf.get_mut(..tile.len() * LANES).unwrap_or_default();
            decode_tile(g, weight, grp, first, &tile, wt);
            let tables = (&*in_place, &mut *patched);
            tile_pass(geom, src, out, wt, &taps, lanes, ohw, tables, patch);
            first += lanes;
        }
    });
}

/// Output pixels of a band, at least, where they fit.
const BAND_PIXELS: usize = 64;

/// How a padded convolution is cut into bands of output rows (or, for a single output row
/// too wide, of output columns) whose inputs, for a tile of input channels, fit
/// [`PADDED_LEN`] with their padding.
#[derive(Clone, Copy)]
struct Band {
    rows: usize,
    cols: usize,
    channels: usize,
}

impl Band {
    /// The plan for a padded convolution (`None` for an unpadded one, or when not even one
    /// padded input row fits): bands of at least [`BAND_PIXELS`] output pixels where they
    /// fit (the weights are decoded again for every band), then as many channels per tile as
    /// fit, then as many more output rows as fit, spread evenly. A convolution of one output
    /// row whose padded row does not fit is cut into bands of output columns, a multiple of
    /// [`PIX`], spread evenly.
    fn plan(g: &Geom, ipg: usize) -> Option<Band> {
        let width = |cols: usize| (cols - 1) * g.sw + (g.kw - 1) * g.dw + 1;
        let height = |rows: usize| (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1;
        let padded = g.pt > 0 || g.pl > 0 || height(g.oh) > g.h || width(g.ow) > g.w;
        // Room for the planes; the unstored pixels of the last block may read past them.
        let room = PADDED_LEN.checked_sub((PIX - 1) * g.sw)?;
        let mut cols = g.ow;
        if g.oh == 1 && height(1) * width(g.ow) > room {
            let fit = (room / height(1)).checked_sub(width(1))? / g.sw + 1;
            let most = fit / PIX * PIX;
            if most == 0 {
                return None;
            }
            cols = g.ow.div_ceil(g.ow.div_ceil(most)).next_multiple_of(PIX);
        }
        let plane = |rows: usize| height(rows) * width(cols);
        let most = (MAX_TAPS / (g.kh * g.kw).max(1)).clamp(1, ipg.max(1));
        let mut rows = BAND_PIXELS.div_ceil(g.ow).min(g.oh);
        while rows > 1 && plane(rows) > room {
            rows -= 1;
        }
        let channels = most.min(room / plane(rows));
        if !padded || channels == 0 {
            return None;
        }
        while rows < g.oh && channels * plane(rows + 1) <= room {
            rows += 1;
        }
        Some(Band {
            rows: g.oh.div_ceil(g.oh.div_ceil(rows)),
            cols,
            channels,
        })
    }
}

/// Copies input channels `c0..` (as many as `dst` holds planes of `band.h × band.w`) with
/// their padding, from padded input row `top` and column `left`: plane row `r`, column `c`
/// holds input row `top + r - pt`, column `left + c - pl`, or zero. What is left of `dst`
/// after the planes is zeroed.
fn pad_channels(
    g: &Geom,
    x: &[f32],
    c0: usize,
    (top, left): (usize, usize),
    band: &Geom,
    dst: &mut [f32],
) {
    let (hw, wp) = (g.h * g.w, band.w);
    // Columns of a plane row that hold input columns, and the first of those input columns.
    let lead = g.pl.saturating_sub(left).min(wp);
    let end = (g.pl + g.w).saturating_sub(left).clamp(lead, wp);
    let ix0 = (left + lead).saturating_sub(g.pl);
    let mut planes = dst.chunks_exact_mut(band.h * wp);
    for (c, plane) in (c0..).zip(&mut planes) {
        for (r, row) in plane.chunks_exact_mut(wp).enumerate() {
            let iy = (top + r).wrapping_sub(g.pt);
            let src = match iy < g.h {
                true => x.get(c * hw + iy * g.w + ix0..c * hw + (iy + 1) * g.w),
                false => None,
            };
            let (head, rest) = row.split_at_mut(lead);
            let (mid, tail) = rest.split_at_mut(end - lead);
            match src.and_then(|s| s.get(..mid.len())) {
                Some(s) => super::copy_row(mid, s),
                None => mid.fill(0.0),
            }
            head.fill(0.0);
            tail.fill(0.0);
        }
    }
    planes.into_remainder().fill(0.0);
}
