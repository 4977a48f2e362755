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
fn window(
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

/// One pooling window: where its result goes and the input it covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Index of the output element.
    pub out: usize,
    /// Channel.
    pub c: usize,
    /// Input rows and columns inside the input, `y0..y1` and `x0..x1`.
    pub rows: (usize, usize),
    pub cols: (usize, usize),
    /// Rows times columns of the window clipped to the padded input (PyTorch's divisor with
    /// `count_include_pad`).
    pub padded_size: usize,
}

impl Window {
    /// Values inside the input, row by row.
    #[allow(clippy::indexing_slicing)] // geometry validated
    pub fn rows_of<'x, T>(&self, g: &Geom, input: &'x [T]) -> impl Iterator<Item = &'x [T]> + 'x {
        let (c, (x0, x1), w, h) = (self.c, self.cols, g.w, g.h);
        (self.rows.0..self.rows.1).map(move |y| &input[(c * h + y) * w + x0..(c * h + y) * w + x1])
    }
    /// Number of values inside the input.
    pub fn inside(&self) -> usize {
        (self.rows.1 - self.rows.0) * (self.cols.1 - self.cols.0)
    }
}

/// Calls `f` for every output of a pooling, in output order.
pub(crate) fn for_each_window(g: &Geom, mut f: impl FnMut(Window)) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let (y0, y1, ylen) = window(oy, g.sh, g.kh, g.pad[0], g.pad[2], g.h);
            for ox in 0..g.ow {
                let (x0, x1, xlen) = window(ox, g.sw, g.kw, g.pad[1], g.pad[3], g.w);
                f(Window {
                    out: (c * g.oh + oy) * g.ow + ox,
                    c,
                    rows: (y0, y1),
                    cols: (x0, x1),
                    padded_size: ylen * xlen,
                });
            }
        }
    }
}

/// Max pooling. An empty window (only padding) gives -inf, as PyTorch.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn max_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    for_each_window(g, |win| {
        let mut m = f32::NEG_INFINITY;
        for row in win.rows_of(g, input) {
            for &v in row {
                if v > m || v.is_nan() {
                    m = v;
                }
            }
        }
        output[win.out] = m;
    });
}

/// Average pooling: row-major sum of the window, divided by the divisor.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn avg_pool(g: &Geom, count_include_pad: bool, input: &[f32], output: &mut [f32]) {
    for_each_window(g, |win| {
        let mut sum = 0.0f32;
        for row in win.rows_of(g, input) {
            for &v in row {
                sum += v;
            }
        }
        let div = if count_include_pad {
            win.padded_size
        } else {
            win.inside()
        };
        output[win.out] = sum / div as f32;
    });
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
