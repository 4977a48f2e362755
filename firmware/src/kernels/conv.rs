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
//! - output pixels: [`PIX`] neighbours of a row at a time; each input value loaded feeds
//!   every lane and each weight every pixel, from accumulators held in registers. A pointwise
//!   convolution (1x1, stride 1, unpadded) takes its pixels as one contiguous row.
//!
//! Every pixel takes the same path. Zero padding is real zeros, as in PyTorch's definition:
//! a kernel row that reads only inside the input is read in place; one that reaches into
//! the padding (or past the last pixel of a row's last block) is first copied into a small
//! buffer with zeros there. The inner loops carry no tests.
//!
//! Summation order (fixed, documented in docs/FIRMWARE.md): every output is
//! `bias (or 0) + t_0 + t_1 + ...` over *all* its taps in `(ic, ky, kx)` order, a tap in the
//! padding contributing `w * 0.0`; partial sums between tiles (or kernel rows) are stored in
//! the output as f32, which does not change the result. Blocks whose taps all read inside the
//! input (every block of an unpadded 1x1 convolution but the last) walk a table of tap
//! offsets in the input instead of kernel rows.

use crate::weights::{Matrix, Vector};
use nnblob_format::layout::CONV_OC_BLOCK;

/// Decoded weights per tile, in f32s (2 KiB of stack).
const TILE_LEN: usize = 512;
/// Output pixels computed together.
const PIX: usize = 4;
/// Kernel columns per tile at most, which bounds the zero-padded row buffer.
const MAX_TILE_COLS: usize = 32;
/// Length of the row buffer: a tile row for [`PIX`] pixels at any stride and dilation.
const ROW_BUF: usize = MAX_TILE_COLS * PIX;
/// Output channels computed together (one layout block).
const LANES: usize = CONV_OC_BLOCK;

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
    let unpadded = g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w;
    if g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && unpadded {
        // Pointwise: a matrix product over the pixels, which are one contiguous row.
        g.w *= g.h;
        g.ow = g.w;
        g.h = 1;
        g.oh = 1;
    }
    // Depthwise blocks of [`DW_PIX`] pixels at stride 1 or 2, whose inputs fit the buffer.
    let dw_span = (DW_PIX - 1) * g.sw + g.kw;
    let depthwise_ok = g.c_in == g.groups && g.c_out == g.groups && g.dw == 1;
    let mut wbuf = [0.0f32; TILE_LEN];
    let mut buf = [0.0f32; ROW_BUF];
    match (
        depthwise_ok && g.kh * g.kw <= TILE_LEN && dw_span <= ROW_BUF,
        g.sw,
    ) {
        (true, 1) => depthwise::<1>(&g, input, output, weight, bias, &mut wbuf, &mut buf),
        (true, 2) => depthwise::<2>(&g, input, output, weight, bias, &mut wbuf, &mut buf),
        _ => run(&g, input, output, weight, bias, &mut wbuf, &mut buf),
    }
}

/// Output pixels of a depthwise row computed together.
const DW_PIX: usize = 8;

/// Depthwise (one input and one output channel per group) at stride `SW` and dilation 1:
/// per channel and output row, each kernel row is added to the outputs [`DW_PIX`] pixels at
/// a time, with their accumulators in registers (from the bias at the first kernel row).
/// A block whose inputs all lie inside the input row reads them in place; one reaching
/// into the padding (or past the row's end) reads a copy in `buf` with zeros there.
// Not inlined: its locals would otherwise add to the general path's stack frame.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn depthwise<const SW: usize>(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    wbuf: &mut [f32; TILE_LEN],
    buf: &mut [f32; ROW_BUF],
) {
    let (hw, ohw, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let wt = wbuf.get_mut(..taps).unwrap_or_default();
    // Inputs one block reads.
    let span = (DW_PIX - 1) * SW + g.kw;
    for c in 0..g.c_out {
        let (Some(x), Some(out)) = (
            input.get(c * hw..(c + 1) * hw),
            output.get_mut(c * ohw..(c + 1) * ohw),
        ) else {
            return;
        };
        weight.decode(c * taps, wt);
        let b = bias.map_or(0.0, |b| b.get(c));
        for (oy, orow) in out.chunks_exact_mut(g.ow.max(1)).enumerate() {
            for (ky, ws) in wt.chunks_exact(g.kw.max(1)).enumerate() {
                let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
                // Input row `iy`, if inside the input.
                let row = if iy < g.h {
                    x.get(iy * g.w..(iy + 1) * g.w).unwrap_or_default()
                } else {
                    &[]
                };
                for (i, o) in orow.chunks_mut(DW_PIX).enumerate() {
                    // Element by element: a row's last block may be partial.
                    let mut acc = [[0.0f32; 1]; DW_PIX];
                    for (j, a) in acc.iter_mut().enumerate() {
                        a[0] = match ky {
                            0 => b,
                            _ => o.get(j).copied().unwrap_or(0.0),
                        };
                    }
                    // Input column of the block's first tap (may be "negative").
                    let ix0 = (i * DW_PIX * SW).wrapping_sub(g.pl);
                    let xs = match row.get(ix0..ix0.wrapping_add(span)) {
                        Some(xs) if ix0 < g.w => xs,
                        _ => {
                            for (k, d) in buf.iter_mut().take(span).enumerate() {
                                *d = row.get(ix0.wrapping_add(k)).copied().unwrap_or(0.0);
                            }
                            &buf[..]
                        }
                    };
                    if g.kw == 3 {
                        row_strided::<1, DW_PIX, SW, 3>(&mut acc, xs, ws);
                    } else {
                        row_strided::<1, DW_PIX, SW, 0>(&mut acc, xs, ws);
                    }
                    for (j, a) in acc.iter().enumerate() {
                        if let Some(v) = o.get_mut(j) {
                            *v = a[0];
                        }
                    }
                }
            }
        }
    }
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

/// Calls `f` on the tiles of `ipg` input channels, in tap order, each of at most `cap` taps:
/// whole input channels when one fits, else whole kernel rows, else parts of a row (of at
/// most [`MAX_TILE_COLS`] columns).
fn for_each_tile(g: &Geom, ipg: usize, cap: usize, mut f: impl FnMut(Tile)) {
    let (kh, kw, cap) = (g.kh, g.kw, cap.max(1));
    if kh * kw <= cap && kw <= MAX_TILE_COLS {
        let n = cap / (kh * kw);
        let mut ic = 0;
        while ic < ipg {
            let end = (ic + n).min(ipg);
            f(Tile {
                ic: (ic, end),
                ky: (0, kh),
                kx: (0, kw),
            });
            ic = end;
        }
    } else {
        let cols = kw.min(cap).min(MAX_TILE_COLS);
        let rows = if cols == kw { cap / kw } else { 1 };
        for ic in 0..ipg {
            let mut ky = 0;
            while ky < kh {
                let ky_end = (ky + rows.max(1)).min(kh);
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

/// Decodes the weights of output channels `first..first + L` of group `grp` (zeros past the
/// group's last channel) for the tile's taps into `wt`, tap-major: `wt[t * L + lane]`.
fn decode_tile<const L: usize>(
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
    let lanes = CONV_OC_BLOCK.min(opg - first);
    if lanes < L {
        wt.fill(0.0);
    }
    let block = (grp * opg + first) * taps;
    let n = tile.cols();
    let mut t = 0;
    for ic in tile.ic.0..tile.ic.1 {
        for ky in tile.ky.0..tile.ky.1 {
            // One run of consecutive taps in the packed weight.
            let tap = (ic * g.kh + ky) * g.kw + tile.kx.0;
            let dst = wt.get_mut(t * L..(t + n) * L).unwrap_or_default();
            weight.decode_interleaved(block + tap * lanes, lanes, dst, L, 0);
            t += n;
        }
    }
}

/// Adds one kernel row (its `cols` taps; `ws`: their weights, `L` per tap) for `P` pixels
/// `SW` apart to `acc`. `xs[j * SW + kx]` is pixel `j`'s input under tap `kx`. `KW` is
/// `cols` when known at compile time, 0 otherwise.
#[inline(always)]
#[allow(clippy::indexing_slicing)] // constant indices into slices of checked constant length
fn row_strided<const L: usize, const P: usize, const SW: usize, const KW: usize>(
    acc: &mut [[f32; L]; P],
    xs: &[f32],
    ws: &[f32],
) {
    if KW != 0 {
        let (Some(xs), Some(ws)) = (xs.get(..(P - 1) * SW + KW), ws.get(..KW * L)) else {
            return;
        };
        for kx in 0..KW {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = xs[j * SW + kx];
                for l in 0..L {
                    a[l] += ws[kx * L + l] * v;
                }
            }
        }
    } else {
        for (w, win) in ws.chunks_exact(L).zip(xs.windows((P - 1) * SW + 1)) {
            for (j, a) in acc.iter_mut().enumerate() {
                let v = win[j * SW];
                for l in 0..L {
                    a[l] += w[l] * v;
                }
            }
        }
    }
}

/// Like [`row_strided`] for any stride and dilation: `xs[kx * P + j]` is pixel `j`'s
/// input under tap `kx` (gathered beforehand).
#[inline(always)]
#[allow(clippy::indexing_slicing)] // chunks of exactly `L` and `P` elements
fn row_gathered<const L: usize, const P: usize>(acc: &mut [[f32; L]; P], xs: &[f32], ws: &[f32]) {
    for (w, x) in ws.chunks_exact(L).zip(xs.chunks_exact(P)) {
        for (a, &v) in acc.iter_mut().zip(x) {
            for l in 0..L {
                a[l] += w[l] * v;
            }
        }
    }
}

/// The tile's contribution to one block of [`PIX`] pixels from column `bx` of row `oy`.
/// `fast`: stride `SW` (1 or 2) and dilation 1; otherwise `SW` is 0 and inputs are gathered.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const L: usize, const SW: usize, const KW: usize>(
    acc: &mut [[f32; L]; PIX],
    g: &Geom,
    x: &[f32],
    wt: &[f32],
    tile: &Tile,
    oy: usize,
    bx: usize,
    buf: &mut [f32; ROW_BUF],
) {
    let cols = tile.cols();
    let hw = g.h * g.w;
    // Input column of pixel 0 under the tile's first tap column (may be "negative").
    let ix0 = (bx * g.sw + tile.kx.0 * g.dw).wrapping_sub(g.pl);
    let span = (PIX - 1) * g.sw + (cols - 1) * g.dw + 1;
    let cols_inside = bx * g.sw + tile.kx.0 * g.dw >= g.pl && ix0 + span <= g.w;
    let mut ws = wt.chunks_exact(cols * L);
    for ic in tile.ic.0..tile.ic.1 {
        for ky in tile.ky.0..tile.ky.1 {
            let Some(w) = ws.next() else {
                return;
            };
            let iy = (oy * g.sh + ky * g.dh).wrapping_sub(g.pt);
            // Offset of input row `iy` of channel `ic`, if that row is inside the input.
            let row = (iy < g.h).then(|| ic * hw + iy * g.w);
            let at = |col: usize| match row {
                Some(r) if col < g.w => x.get(r + col).copied().unwrap_or(0.0),
                _ => 0.0,
            };
            if SW == 0 {
                // Gather tap-major, zeros outside the input.
                for (kx, dst) in buf.chunks_exact_mut(PIX).take(cols).enumerate() {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = at(ix0.wrapping_add(j * g.sw + kx * g.dw));
                    }
                }
                row_gathered::<L, PIX>(acc, buf, w);
            } else {
                let xs = match (row, cols_inside) {
                    (Some(r), true) => x.get(r + ix0..r + ix0 + span).unwrap_or_default(),
                    _ => {
                        // The row reaches into the padding: a copy with zeros there.
                        for (i, d) in buf.iter_mut().take(span).enumerate() {
                            *d = at(ix0.wrapping_add(i));
                        }
                        &buf[..]
                    }
                };
                row_strided::<L, PIX, SW, KW>(acc, xs, w);
            }
        }
    }
}

/// Adds the taps of a block that reads only inside the input: tap `t` of pixel `j` reads
/// `x[base + offs[t] + j * sw]`, its weights are `wt[t * L..][..L]`.
#[inline(always)]
#[allow(clippy::indexing_slicing)] // `xs` has `(PIX - 1) * sw + 1` elements, `w` exactly `L`
fn taps_inside<const L: usize>(
    acc: &mut [[f32; L]; PIX],
    x: &[f32],
    base: usize,
    sw: usize,
    offs: &[usize],
    wt: &[f32],
) {
    for (&o, w) in offs.iter().zip(wt.chunks_exact(L)) {
        let b = base + o;
        let Some(xs) = x.get(b..b + (PIX - 1) * sw + 1) else {
            return;
        };
        for (j, a) in acc.iter_mut().enumerate() {
            let v = xs[j * sw];
            for l in 0..L {
                a[l] += w[l] * v;
            }
        }
    }
}

/// Runs every block of the tile's output rows with one monomorphised block kernel.
#[allow(clippy::too_many_arguments)]
fn tile_pass<const L: usize, const SW: usize, const KW: usize>(
    g: &Geom,
    x: &[f32],
    out: &mut [f32],
    wt: &[f32],
    tile: &Tile,
    lanes: usize,
    init: Option<(Option<Vector<'_>>, usize)>,
    buf: &mut [f32; ROW_BUF],
) {
    let ohw = g.oh * g.ow;
    // Offset of every tap from the block's first input, for blocks inside the input.
    let mut offs = [0usize; TILE_LEN / LANES];
    let mut taps = 0;
    if KW == 0 && L == LANES {
        for ic in tile.ic.0..tile.ic.1 {
            for ky in tile.ky.0..tile.ky.1 {
                for kx in tile.kx.0..tile.kx.1 {
                    if let Some(o) = offs.get_mut(taps) {
                        *o = ic * g.h * g.w + ky * g.dh * g.w + kx * g.dw;
                        taps += 1;
                    }
                }
            }
        }
    }
    let offs = offs.get(..taps).unwrap_or_default();
    let span = (PIX - 1) * g.sw + (tile.kx.1 - 1) * g.dw + 1;
    for oy in 0..g.oh {
        let rows_inside =
            oy * g.sh + tile.ky.0 * g.dh >= g.pt && oy * g.sh + (tile.ky.1 - 1) * g.dh < g.h + g.pt;
        let mut bx = 0;
        while bx < g.ow {
            let pixels = PIX.min(g.ow - bx);
            let p0 = oy * g.ow + bx;
            // The accumulators start from the bias (first tile) or the partial sums.
            let mut acc = [[0.0f32; L]; PIX];
            for (j, a) in acc.iter_mut().enumerate().take(pixels) {
                for (l, v) in a.iter_mut().enumerate().take(lanes) {
                    *v = match init {
                        Some((bias, oc0)) => bias.map_or(0.0, |b| b.get(oc0 + l)),
                        None => out.get(l * ohw + p0 + j).copied().unwrap_or(0.0),
                    };
                }
            }
            let inside = rows_inside && bx * g.sw >= g.pl && bx * g.sw + span <= g.w + g.pl;
            if KW == 0 && L == LANES && inside && taps == tile.len() {
                let base = (oy * g.sh - g.pt) * g.w + bx * g.sw - g.pl;
                taps_inside::<L>(&mut acc, x, base, g.sw, offs, wt);
            } else {
                block::<L, SW, KW>(&mut acc, g, x, wt, tile, oy, bx, buf);
            }
            for (j, a) in acc.iter().enumerate().take(pixels) {
                for (l, v) in a.iter().enumerate().take(lanes) {
                    if let Some(o) = out.get_mut(l * ohw + p0 + j) {
                        *o = *v;
                    }
                }
            }
            bx += PIX;
        }
    }
}

/// The general convolution: [`LANES`] output channels × [`PIX`] pixels per block.
fn run(
    g: &Geom,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
    wbuf: &mut [f32; TILE_LEN],
    buf: &mut [f32; ROW_BUF],
) {
    const L: usize = LANES;
    let ipg = g.c_in / g.groups;
    let opg = g.c_out / g.groups;
    let hw = g.h * g.w;
    let ohw = g.oh * g.ow;
    for grp in 0..g.groups {
        let Some(x) = input.get(grp * ipg * hw..(grp + 1) * ipg * hw) else {
            return;
        };
        let mut first = 0;
        while first < opg {
            let lanes = L.min(opg - first);
            let oc0 = grp * opg + first;
            let Some(out) = output.get_mut(oc0 * ohw..(oc0 + lanes) * ohw) else {
                return;
            };
            let mut init = Some((bias, oc0));
            for_each_tile(g, ipg, TILE_LEN / L, |tile| {
                let wt = wbuf.get_mut(..tile.len() * L).unwrap_or_default();
                decode_tile::<L>(g, weight, grp, first, &tile, wt);
                let (wt, b) = (&*wt, &mut *buf);
                match (g.dw, g.sw, tile.cols()) {
                    (1, 1, 3) => tile_pass::<L, 1, 3>(g, x, out, wt, &tile, lanes, init, b),
                    (1, 2, 3) => tile_pass::<L, 2, 3>(g, x, out, wt, &tile, lanes, init, b),
                    _ => tile_pass::<L, 0, 0>(g, x, out, wt, &tile, lanes, init, b),
                }
                init = None;
            });
            first += lanes;
        }
    }
}
