//! Pooling with PyTorch's semantics: max (padding never wins; NaN propagates), average
//! (PyTorch's divisor rule with `ceil_mode` and `count_include_pad`), adaptive max and average
//! (bins `floor(i * in / out) .. ceil((i + 1) * in / out)`). A 1-d pool is one of height 1.

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
    /// PyTorch's divisor of an average: the padded window's size with `count_include_pad`,
    /// else the values inside.
    pub fn divisor(&self, count_include_pad: bool) -> usize {
        if count_include_pad {
            self.padded_size
        } else {
            self.inside()
        }
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

/// The maximum of a window, row-major; NaN wins (it propagates, as in PyTorch) and an empty
/// window (only padding) gives -inf.
fn maximum(g: &Geom, win: &Window, input: &[f32]) -> f32 {
    let mut m = f32::NEG_INFINITY;
    for row in win.rows_of(g, input) {
        for &v in row {
            m = pick(m, v);
        }
    }
    m
}

/// Max pooling.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn max_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    let g = &as_row(g);
    if !max_pool_inside(g, input, output) {
        for_each_window(g, |win| output[win.out] = maximum(g, &win, input));
    }
}

/// A pooling down a map one pixel wide (a `k x 1` window, no column padding) as the same
/// pooling along a map one row high, which has the same layout: each window covers the same
/// values in the same order.
fn as_row(g: &Geom) -> Geom {
    let [top, left, bottom, right] = g.pad;
    if g.w == 1 && g.ow == 1 && g.kw == 1 && left == 0 && right == 0 && g.h > 1 {
        Geom {
            h: 1,
            w: g.h,
            oh: 1,
            ow: g.oh,
            kh: 1,
            kw: g.kh,
            sh: 1,
            sw: g.sh,
            pad: [0, top, 0, bottom],
            ..*g
        }
    } else {
        *g
    }
}

/// The running maximum `m` after `v`, as [`maximum`] takes it: NaN wins.
#[inline(always)]
fn pick(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

/// [`max_pool`] when no window reaches the padding or past the input (false, nothing done,
/// otherwise): each output the maximum of its `kh x kw` values, row-major, as [`maximum`]
/// takes them, without computing its window's bounds.
fn max_pool_inside(g: &Geom, input: &[f32], output: &mut [f32]) -> bool {
    let reach = |o: usize, s: usize, k: usize| (o.max(1) - 1) * s + k;
    if g.pad != [0; 4] || reach(g.oh, g.sh, g.kh) > g.h || reach(g.ow, g.sw, g.kw) > g.w {
        return false;
    }
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    if hw == 0 || ohw == 0 {
        return false;
    }
    if g.h == 1 && g.kw == g.sw {
        // Windows side by side along rows: each a chunk of the row.
        let most = |win: &[f32]| win.iter().fold(f32::NEG_INFINITY, |m, &v| pick(m, v));
        for (x, out) in input.chunks_exact(hw).zip(output.chunks_exact_mut(ohw)) {
            match g.kw {
                2 => {
                    for (o, win) in out.iter_mut().zip(x.chunks_exact(2)) {
                        *o = win.iter().fold(f32::NEG_INFINITY, |m, &v| pick(m, v));
                    }
                }
                k => {
                    for (o, win) in out.iter_mut().zip(x.chunks_exact(k)) {
                        *o = most(win);
                    }
                }
            }
        }
        return true;
    }
    for (x, out) in input.chunks_exact(hw).zip(output.chunks_exact_mut(ohw)) {
        for (oy, row) in out.chunks_exact_mut(g.ow).enumerate() {
            let top = oy * g.sh * g.w;
            for (ox, o) in row.iter_mut().enumerate() {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..g.kh {
                    let at = top + ky * g.w + ox * g.sw;
                    for &v in x.get(at..at + g.kw).unwrap_or_default() {
                        m = pick(m, v);
                    }
                }
                *o = m;
            }
        }
    }
    true
}

/// The mean of a window: its row-major sum divided by the divisor.
fn mean(g: &Geom, win: &Window, count_include_pad: bool, input: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for row in win.rows_of(g, input) {
        for &v in row {
            sum += v;
        }
    }
    sum / win.divisor(count_include_pad) as f32
}

/// Average pooling.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn avg_pool(g: &Geom, count_include_pad: bool, input: &[f32], output: &mut [f32]) {
    for_each_window(g, |win| {
        output[win.out] = mean(g, &win, count_include_pad, input)
    });
}

/// Calls `f` for every bin of an adaptive pooling to `oh x ow` (PyTorch's bins
/// `floor(i * in / out) .. ceil((i + 1) * in / out)`, never padded), in output order.
pub(crate) fn for_each_adaptive_bin(g: &Geom, mut f: impl FnMut(Window)) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let rows = (oy * g.h / g.oh, ((oy + 1) * g.h).div_ceil(g.oh));
            for ox in 0..g.ow {
                let cols = (ox * g.w / g.ow, ((ox + 1) * g.w).div_ceil(g.ow));
                f(Window {
                    out: (c * g.oh + oy) * g.ow + ox,
                    c,
                    rows,
                    cols,
                    padded_size: (rows.1 - rows.0) * (cols.1 - cols.0),
                });
            }
        }
    }
}

/// Adaptive max pooling to `oh x ow`.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_max_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    for_each_adaptive_bin(g, |win| output[win.out] = maximum(g, &win, input));
}

/// Adaptive average pooling to `oh x ow`.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_avg_pool(g: &Geom, input: &[f32], output: &mut [f32]) {
    for_each_adaptive_bin(g, |win| output[win.out] = mean(g, &win, false, input));
}
