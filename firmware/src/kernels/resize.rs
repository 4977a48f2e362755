//! Resampling (`Resize`, PyTorch's `interpolate`): nearest, generic over the element type (f32
//! and int8 move values without changing them), and linear in f32. In: `[c][h][w]`; out:
//! `[c][oh][ow]`. Each axis is mapped on its own by the format's `resize_taps`, so these loops
//! only decide the order: the taps of a run of output columns are computed once, on the stack,
//! and reused for every row and channel (a float multiply per output element would cost more
//! than the element itself on the cores without an FPU).

use nnblob_format::meta::{resize_taps, ResizeMode};

/// A validated resize: the sizes and the f32 coordinate factors `[height, width]`.
pub(crate) struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub align_corners: bool,
    pub scale: [f32; 2],
}

/// Output columns whose taps are held at once (16 bytes each for linear, on the stack).
const RUN: usize = 16;

/// The taps of one axis for output index `o`.
fn taps(g: &Geom, mode: ResizeMode, axis: usize, o: usize) -> (usize, usize, f32, f32) {
    let (inp, out, scale) = if axis == 0 {
        (g.h, g.oh, g.scale[0])
    } else {
        (g.w, g.ow, g.scale[1])
    };
    resize_taps(mode, g.align_corners, scale, inp, out, o)
}

/// Nearest: every output element is the input element its row and column taps name.
#[allow(clippy::indexing_slicing)] // shapes validated; taps lie inside the input
pub(crate) fn nearest<T: Copy>(g: &Geom, input: &[T], output: &mut [T]) {
    let mut cols = [0u32; RUN];
    for x0 in (0..g.ow).step_by(RUN) {
        let n = RUN.min(g.ow - x0);
        for (j, col) in cols[..n].iter_mut().enumerate() {
            *col = taps(g, ResizeMode::Nearest, 1, x0 + j).0 as u32;
        }
        for oy in 0..g.oh {
            let iy = taps(g, ResizeMode::Nearest, 0, oy).0;
            for ch in 0..g.c {
                let src = &input[(ch * g.h + iy) * g.w..][..g.w];
                let dst = &mut output[(ch * g.oh + oy) * g.ow + x0..][..n];
                for (d, &col) in dst.iter_mut().zip(&cols[..n]) {
                    *d = src[col as usize];
                }
            }
        }
    }
}

/// Linear: `(a[x0] * wx0 + a[x1] * wx1) * wy0 + (b[x0] * wx0 + b[x1] * wx1) * wy1` for rows
/// `a`, `b` of taps `(y0, y1, wy0, wy1)`, the format's order.
#[allow(clippy::indexing_slicing)] // shapes validated; taps lie inside the input
pub(crate) fn linear(g: &Geom, input: &[f32], output: &mut [f32]) {
    let mut cols = [(0u32, 0u32); RUN];
    let mut weights = [(0.0f32, 0.0f32); RUN];
    for x0 in (0..g.ow).step_by(RUN) {
        let n = RUN.min(g.ow - x0);
        for j in 0..n {
            let (i0, i1, w0, w1) = taps(g, ResizeMode::Linear, 1, x0 + j);
            cols[j] = (i0 as u32, i1 as u32);
            weights[j] = (w0, w1);
        }
        for oy in 0..g.oh {
            let (y0, y1, wy0, wy1) = taps(g, ResizeMode::Linear, 0, oy);
            for ch in 0..g.c {
                let a = &input[(ch * g.h + y0) * g.w..][..g.w];
                let b = &input[(ch * g.h + y1) * g.w..][..g.w];
                let dst = &mut output[(ch * g.oh + oy) * g.ow + x0..][..n];
                for ((d, &(c0, c1)), &(wx0, wx1)) in dst.iter_mut().zip(&cols[..n]).zip(&weights) {
                    let (c0, c1) = (c0 as usize, c1 as usize);
                    let top = a[c0] * wx0 + a[c1] * wx1;
                    let bottom = b[c0] * wx0 + b[c1] * wx1;
                    *d = top * wy0 + bottom * wy1;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    fn geom(h: usize, w: usize, oh: usize, ow: usize, scale: [f32; 2]) -> Geom {
        Geom {
            c: 2,
            h,
            w,
            oh,
            ow,
            align_corners: false,
            scale,
        }
    }

    /// Runs of columns meet at `RUN`: a width past it takes the same taps as one element at a
    /// time would.
    #[test]
    fn runs_of_columns_join_seamlessly() {
        let (h, w, oh, ow) = (3, 40, 5, 77);
        let g = geom(h, w, oh, ow, [h as f32 / oh as f32, w as f32 / ow as f32]);
        let input: Vec<f32> = (0..2 * h * w).map(|i| i as f32 * 0.37 - 5.0).collect();
        let mut out = vec![0.0f32; 2 * oh * ow];
        linear(&g, &input, &mut out);
        let mut near = vec![0.0f32; 2 * oh * ow];
        nearest(&g, &input, &mut near);
        for ch in 0..2 {
            for oy in 0..oh {
                let (y0, y1, wy0, wy1) = taps(&g, ResizeMode::Linear, 0, oy);
                let ny = taps(&g, ResizeMode::Nearest, 0, oy).0;
                for ox in 0..ow {
                    let (x0, x1, wx0, wx1) = taps(&g, ResizeMode::Linear, 1, ox);
                    let at = |y: usize, x: usize| input[(ch * h + y) * w + x];
                    let want = (at(y0, x0) * wx0 + at(y0, x1) * wx1) * wy0
                        + (at(y1, x0) * wx0 + at(y1, x1) * wx1) * wy1;
                    let o = (ch * oh + oy) * ow + ox;
                    assert_eq!(out[o].to_bits(), want.to_bits(), "linear at {ch},{oy},{ox}");
                    let nx = taps(&g, ResizeMode::Nearest, 1, ox).0;
                    assert_eq!(near[o], at(ny, nx), "nearest at {ch},{oy},{ox}");
                }
            }
        }
    }
}
