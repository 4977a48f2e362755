//! Pooling: `nn.MaxPool1d/2d`, `nn.AvgPool1d/2d` (kernel, stride, symmetric padding, dilation for
//! max, ceil_mode, count_include_pad) and `nn.AdaptiveAvgPool1d/2d`, `nn.AdaptiveMaxPool1d/2d` (any
//! output size).
//!
//! A 1-d pool is held as a 2-d one of height 1, as a Conv1d is (`kernel[0] == stride[0] ==
//! dilation[0] == 1`, no vertical padding, an adaptive output height of 1); only its I/O rank
//! differs, so every later stage walks the same windows.

use super::conv::window_out;
use super::{expect_inputs, ShapeResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    /// `Max` or `Avg`, as in the module names (`MaxPool1d`, `AdaptiveAvgPool2d`).
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "Max",
            PoolKind::Avg => "Avg",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
    /// 1 for MaxPool1d / AvgPool1d, 2 for the 2-d pools.
    pub rank: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Symmetric padding (top = bottom, left = right), as PyTorch's pools have it.
    pub padding: [usize; 2],
    /// Always 1 for average pooling.
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
    /// Average pooling: whether padded zeros count in the divisor.
    pub count_include_pad: bool,
}

/// The channel count and the (height, width) of a pool's `rank`-d input with the batch (`[N, C, L]`
/// is a height of 1), or why the input does not have that rank.
pub fn pool_chw(x: &[usize], rank: usize) -> Result<(usize, [usize; 2]), String> {
    match (rank, x) {
        (1, &[_, c, w]) => Ok((c, [1, w])),
        (2, &[_, c, h, w]) => Ok((c, [h, w])),
        _ => Err(format!(
            "expects a {}-d input, got {}",
            rank + 2,
            crate::graph::fmt_shape(x)
        )),
    }
}

/// The output shape of a pool of `rank` over `x` with spatial size `hw`.
fn pooled_shape(x: &[usize], rank: usize, [h, w]: [usize; 2]) -> Vec<usize> {
    let mut out = x[..2].to_vec();
    if rank == 2 {
        out.push(h);
    }
    out.push(w);
    out
}

/// A 1-d pool's window along its one axis: no vertical window, stride or padding.
fn check_one_d(
    rank: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<(), String> {
    if rank == 1 && (kernel, stride, padding, dilation) != (1, 1, 0, 1) {
        return Err("a 1-d pool has a window along its last axis only".into());
    }
    Ok(())
}

impl Pool {
    /// Output length along one axis, PyTorch's rule: floor or ceil, and with ceil_mode the last
    /// window must start inside the input or the left padding.
    pub fn out_len(&self, input: usize, axis: usize) -> Option<usize> {
        let (k, s, p, d) = (
            self.kernel[axis],
            self.stride[axis],
            self.padding[axis],
            self.dilation[axis],
        );
        let floor = window_out(input, p.checked_mul(2)?, k, s, d)?;
        if !self.ceil_mode {
            return Some(floor);
        }
        // `window_out` succeeded: these cannot overflow or go below zero.
        let span = d * (k - 1) + 1;
        let mut out = (input + 2 * p - span).div_ceil(s) + 1;
        if (out - 1).checked_mul(s)? >= input + p {
            out -= 1;
        }
        Some(out)
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        super::conv::check_window(self.kernel, self.stride, self.dilation)?;
        let (_, [h, w]) = pool_chw(inputs[0], self.rank)?;
        check_one_d(
            self.rank,
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
        )?;
        for axis in 0..2 {
            if self.padding[axis] > self.kernel[axis] / 2 {
                return Err(format!(
                    "padding {} should be at most half of the kernel size {}",
                    self.padding[axis], self.kernel[axis]
                ));
            }
        }
        match (self.out_len(h, 0), self.out_len(w, 1)) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => {
                Ok(pooled_shape(inputs[0], self.rank, [oh, ow]))
            }
            _ => Err(format!(
                "kernel {}x{} does not fit the input {h}x{w}",
                self.kernel[0], self.kernel[1]
            )),
        }
    }
}

/// `nn.AdaptiveAvgPool1d/2d(output_size)`, `nn.AdaptiveMaxPool1d/2d(output_size)`: window `i`
/// covers `[floor(i*in/out), ceil((i+1)*in/out))`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptivePool {
    pub kind: PoolKind,
    /// 1 for the 1-d pools (`output[0]` is then `Some(1)`), 2 for the 2-d ones.
    pub rank: usize,
    /// (height, width); `None` keeps the input's size on that axis.
    pub output: [Option<usize>; 2],
}

impl AdaptivePool {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let (_, [h, w]) = pool_chw(inputs[0], self.rank)?;
        if self.rank == 1 && self.output[0] != Some(1) {
            return Err("a 1-d pool has a window along its last axis only".into());
        }
        let oh = self.output[0].unwrap_or(h);
        let ow = self.output[1].unwrap_or(w);
        if oh == 0 || ow == 0 {
            return Err("output size must be positive".into());
        }
        Ok(pooled_shape(inputs[0], self.rank, [oh, ow]))
    }
}
