//! Convolutions: `nn.Conv1d` and `nn.Conv2d` with stride, dilation, groups (depthwise included),
//! optional bias and explicit, possibly asymmetric, zero padding.

use super::{expect_channels, expect_inputs, ShapeResult};

/// Zero padding on each side of the spatial axes, in pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

/// A 1-d or 2-d convolution. A 1-d one is held as a 2-d one of height 1 (`kernel[0] == 1`,
/// `stride[0] == 1`, no vertical padding); only its weight shape and I/O rank differ.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// 1 for Conv1d, 2 for Conv2d.
    pub rank: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// (height, width)
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
    pub groups: usize,
    pub bias: bool,
}

/// Output length of a convolution or pooling window along one axis (floor mode), or `None` when
/// the padded input is shorter than the dilated kernel (or a length overflows, or the kernel,
/// stride or dilation is 0 — [`check_window`] says so first).
pub(crate) fn window_out(
    input: usize,
    pad: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    input
        .checked_add(pad)?
        .checked_sub(span)
        .map(|r| r / stride + 1)
}

/// Refuses a window whose kernel, stride or dilation has a 0 (a source that does not check its
/// arguments, such as an imported program, may hold one).
pub fn check_window(
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<(), String> {
    for (what, v) in [
        ("kernel", kernel),
        ("stride", stride),
        ("dilation", dilation),
    ] {
        if v.contains(&0) {
            return Err(format!("{what} {v:?} must be at least 1 on every axis"));
        }
    }
    Ok(())
}

impl Conv {
    /// The weight shape as PyTorch stores it: `[out, in / groups, kh, kw]` (`[out, in / groups, k]`
    /// for Conv1d).
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = vec![self.out_channels, self.in_channels / self.groups];
        if self.rank == 2 {
            s.push(self.kernel[0]);
        }
        s.push(self.kernel[1]);
        s
    }

    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        let mut p = vec![("weight", self.weight_shape())];
        if self.bias {
            p.push(("bias", vec![self.out_channels]));
        }
        p
    }

    /// Output (height, width) for an input of (height, width).
    pub fn out_hw(&self, h: usize, w: usize) -> Result<(usize, usize), String> {
        let p = &self.padding;
        let oh = window_out(
            h,
            p.top.saturating_add(p.bottom),
            self.kernel[0],
            self.stride[0],
            self.dilation[0],
        );
        let ow = window_out(
            w,
            p.left.saturating_add(p.right),
            self.kernel[1],
            self.stride[1],
            self.dilation[1],
        );
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(format!(
                "padded input {}x{} is smaller than the kernel {}x{} (dilation {}x{})",
                h.saturating_add(p.top).saturating_add(p.bottom),
                w.saturating_add(p.left).saturating_add(p.right),
                self.kernel[0],
                self.kernel[1],
                self.dilation[0],
                self.dilation[1]
            )),
        }
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        check_window(self.kernel, self.stride, self.dilation)?;
        let groups_fit = self.groups > 0
            && self.in_channels % self.groups == 0
            && self.out_channels % self.groups == 0;
        if !groups_fit {
            return Err(format!(
                "groups {} must divide the {} input and {} output channels",
                self.groups, self.in_channels, self.out_channels
            ));
        }
        let x = inputs[0];
        expect_channels(x, &[self.rank + 2], self.in_channels, "input channels")?;
        let (h, w) = if self.rank == 2 {
            (x[2], x[3])
        } else {
            (1, x[2])
        };
        let (oh, ow) = self.out_hw(h, w)?;
        Ok(if self.rank == 2 {
            vec![x[0], self.out_channels, oh, ow]
        } else {
            vec![x[0], self.out_channels, ow]
        })
    }
}
