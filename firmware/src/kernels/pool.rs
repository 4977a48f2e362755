//! Pooling with PyTorch's semantics: max (padding never wins; NaN propagates), average
//! (PyTorch's divisor rule with `ceil_mode` and `count_include_pad`), adaptive average
//! (bins `floor(i * in / out) .. ceil((i + 1) * in / out)`).

/// Pooling geometry over `[c][h][w] -> [c][oh][ow]`, validated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// top, left, bottom, right
    pub pad: [usize; 4],
}

/// The window of output `o` along one axis: `(start, end)` clipped to the input and the
/// unclipped length limited to `inp + pad_end` (PyTorch's `pool_size`).
pub(crate) fn window(
    o: usize,
    s: usize,
    k: usize,
    pad_begin: usize,
    pad_end: usize,
    inp: usize,
) -> (usize, usize, usize) {
    let start = o * s; // in padded coordinates
    let end = (start + k).min(inp + pad_begin + pad_end);
    let len = end - start;
    let lo = start.saturating_sub(pad_begin).min(inp);
    let hi = end.saturating_sub(pad_begin).min(inp);
    (lo, hi, len)
}

/// Max pooling. An empty window (only padding) gives -inf, as PyTorch.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn max_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let (y0, y1, _) = window(oy, g.sh, g.kh, g.pad[0], g.pad[2], g.h);
            for ox in 0..g.ow {
                let (x0, x1, _) = window(ox, g.sw, g.kw, g.pad[1], g.pad[3], g.w);
                let mut m = f32::NEG_INFINITY;
                for y in y0..y1 {
                    for &v in &input[(c * g.h + y) * g.w + x0..(c * g.h + y) * g.w + x1] {
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                output[(c * g.oh + oy) * g.ow + ox] = m;
            }
        }
    }
}

/// Average pooling: row-major sum of the window, divided by the divisor.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn avg_pool(g: &Geom, count_include_pad: bool, input: &[f32], output: &mut [f32]) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let (y0, y1, ylen) = window(oy, g.sh, g.kh, g.pad[0], g.pad[2], g.h);
            for ox in 0..g.ow {
                let (x0, x1, xlen) = window(ox, g.sw, g.kw, g.pad[1], g.pad[3], g.w);
                let mut sum = 0.0f32;
                for y in y0..y1 {
                    for &v in &input[(c * g.h + y) * g.w + x0..(c * g.h + y) * g.w + x1] {
                        sum += v;
                    }
                }
                let div = if count_include_pad {
                    ylen * xlen
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                output[(c * g.oh + oy) * g.ow + ox] = sum / div as f32;
            }
        }
    }
}

/// Adaptive average pooling to `oh x ow`.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_avg_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let y0 = oy * g.h / g.oh;
            let y1 = ((oy + 1) * g.h).div_ceil(g.oh);
            for ox in 0..g.ow {
                let x0 = ox * g.w / g.ow;
                let x1 = ((ox + 1) * g.w).div_ceil(g.ow);
                let mut sum = 0.0f32;
                for y in y0..y1 {
                    for &v in &input[(c * g.h + y) * g.w + x0..(c * g.h + y) * g.w + x1] {
                        sum += v;
                    }
                }
                output[(c * g.oh + oy) * g.ow + ox] = sum / ((y1 - y0) * (x1 - x0)) as f32;
            }
        }
    }
}
