//! Pooling: `nn.MaxPool2d`, `nn.AvgPool2d` (kernel, stride, symmetric padding, dilation for max,
//! ceil_mode, count_include_pad) and `nn.AdaptiveAvgPool2d` (any output size).

use super::conv::window_out;
use super::{expect_inputs, ShapeResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
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
        let x = inputs[0];
        if x.len() != 4 {
            return Err(format!(
                "expects a 4-d input, got {}",
                crate::graph::fmt_shape(x)
            ));
        }
        for axis in 0..2 {
            if self.padding[axis] > self.kernel[axis] / 2 {
                return Err(format!(
                    "padding {} should be at most half of the kernel size {}",
                    self.padding[axis], self.kernel[axis]
                ));
            }
        }
        match (self.out_len(x[2], 0), self.out_len(x[3], 1)) {
            (Some(h), Some(w)) if h > 0 && w > 0 => Ok(vec![x[0], x[1], h, w]),
            _ => Err(format!(
                "kernel {}x{} does not fit the input {}x{}",
                self.kernel[0], self.kernel[1], x[2], x[3]
            )),
        }
    }
}

/// `nn.AdaptiveAvgPool2d(output_size)`: window `i` covers `[floor(i*in/out), ceil((i+1)*in/out))`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveAvgPool {
    /// (height, width); `None` keeps the input's size on that axis.
    pub output: [Option<usize>; 2],
}

impl AdaptiveAvgPool {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        if x.len() != 4 {
            return Err(format!(
                "expects a 4-d input, got {}",
                crate::graph::fmt_shape(x)
            ));
        }
        let h = self.output[0].unwrap_or(x[2]);
        let w = self.output[1].unwrap_or(x[3]);
        if h == 0 || w == 0 {
            return Err("output size must be positive".into());
        }
        Ok(vec![x[0], x[1], h, w])
    }
}
