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

/// `nn.ConvTranspose1d` / `nn.ConvTranspose2d`: the gradient of a convolution with respect to its
/// input. Input pixel `i` adds `x[i] * w[k]` to output pixel `i * stride - padding + k * dilation`;
/// the output is `(in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1`
/// long. A 1-d one is held as a 2-d one of height 1, as [`Conv`] is.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose {
    /// 1 for ConvTranspose1d, 2 for ConvTranspose2d.
    pub rank: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// (height, width)
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Cropped from both ends of each axis, as PyTorch's `padding`.
    pub padding: [usize; 2],
    /// Added to the end of each axis; smaller than the stride or the dilation.
    pub output_padding: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl ConvTranspose {
    /// The weight shape as PyTorch stores it: `[in, out / groups, kh, kw]` (`[in, out / groups,
    /// k]` for ConvTranspose1d).
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = vec![self.in_channels, self.out_channels / self.groups];
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

    /// The output length along `axis` for an input of length `input`, or `None` when it is not
    /// positive or overflows.
    pub fn out_len(&self, input: usize, axis: usize) -> Option<usize> {
        let (k, s, d, p, op) = (
            self.kernel[axis],
            self.stride[axis],
            self.dilation[axis],
            self.padding[axis],
            self.output_padding[axis],
        );
        input
            .checked_sub(1)?
            .checked_mul(s)?
            .checked_add(d.checked_mul(k.checked_sub(1)?)?)?
            .checked_add(op + 1)?
            .checked_sub(p.checked_mul(2)?)
            .filter(|&n| n > 0)
    }

    /// The output channel of element `i` of the weight (`[in][out / groups][kh][kw]`).
    pub fn weight_out_channel(&self, i: usize) -> usize {
        let opg = self.out_channels / self.groups;
        let taps = self.kernel[0] * self.kernel[1];
        let ic = i / (opg * taps);
        let group = ic / (self.in_channels / self.groups);
        group * opg + (i / taps) % opg
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
        for axis in 0..2 {
            let op = self.output_padding[axis];
            if op >= self.stride[axis] && op >= self.dilation[axis] {
                return Err(format!(
                    "output_padding {op} must be smaller than the stride {} or the dilation {}",
                    self.stride[axis], self.dilation[axis]
                ));
            }
        }
        let x = inputs[0];
        expect_channels(x, &[self.rank + 2], self.in_channels, "input channels")?;
        let (h, w) = if self.rank == 2 {
            (x[2], x[3])
        } else {
            (1, x[2])
        };
        match (self.out_len(h, 0), self.out_len(w, 1)) {
            (Some(oh), Some(ow)) => Ok(if self.rank == 2 {
                vec![x[0], self.out_channels, oh, ow]
            } else {
                vec![x[0], self.out_channels, ow]
            }),
            _ => Err(format!(
                "the output of an input {h}x{w} with kernel {}x{}, stride {}x{} and padding {}x{} is empty",
                self.kernel[0], self.kernel[1], self.stride[0], self.stride[1], self.padding[0], self.padding[1]
            )),
        }
    }
}
