//! How weights are laid out in the weights section, so that the kernels read them in order.
//!
//! - Every weight tensor starts at a multiple of [`WEIGHT_ALIGN`] bytes from the start of the
//!   weights section (which itself starts at such a multiple from the start of the blob).
//! - Vectors (bias, scale, shift, PReLU slopes): f32, in channel order.
//! - Linear weight: the blob's dtype, `[out][in]` row-major (PyTorch's layout).
//! - Conv2d weight: the blob's dtype, *blocked by output channel*. With `opg = out_channels /
//!   groups` and `k = (in_channels / groups) * kh * kw` taps in `(ic, ky, kx)` order: for each
//!   group, for each block of [`CONV_OC_BLOCK`] output channels of that group (the last block
//!   of a group may be narrower, `lanes = min(CONV_OC_BLOCK, opg - first)`), the block's
//!   weights are stored tap-major: `for t in 0..k { for lane in 0..lanes { w[first + lane][t] } }`.
//!   A kernel thus reads the weights of `lanes` output channels for one input tap as
//!   consecutive values. For depthwise convolutions (one output channel per group) this is
//!   exactly PyTorch's `[out][1][kh][kw]` order.

/// Alignment of every weight tensor, in bytes.
pub const WEIGHT_ALIGN: usize = 16;

/// Number of output channels whose conv weights are interleaved tap by tap.
pub const CONV_OC_BLOCK: usize = 4;

/// Shape of a conv weight, in the terms of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvWeightShape {
    /// Number of groups.
    pub groups: usize,
    /// Output channels per group.
    pub out_per_group: usize,
    /// Taps per output channel: `in_channels / groups * kh * kw`.
    pub taps: usize,
}

/// Calls `f(packed_index, pytorch_index)` for every element of a conv weight: the index in
/// the blocked layout and the index in PyTorch's `[out][in/groups][kh][kw]` layout.
pub fn for_each_conv_weight(s: ConvWeightShape, mut f: impl FnMut(usize, usize)) {
    let mut packed = 0;
    for g in 0..s.groups {
        let mut first = 0;
        while first < s.out_per_group {
            let lanes = CONV_OC_BLOCK.min(s.out_per_group - first);
            for t in 0..s.taps {
                for lane in 0..lanes {
                    let oc = g * s.out_per_group + first + lane;
                    f(packed, oc * s.taps + t);
                    packed += 1;
                }
            }
            first += lanes;
        }
    }
}

/// Rounds `n` up to a multiple of [`WEIGHT_ALIGN`].
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(WEIGHT_ALIGN) * WEIGHT_ALIGN
}
