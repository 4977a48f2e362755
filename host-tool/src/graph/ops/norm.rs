//! `nn.BatchNorm1d` / `nn.BatchNorm2d` in eval mode (running statistics), and the per-channel
//! scale-and-shift a BatchNorm becomes when it cannot be folded.

use super::{expect_channels, expect_inputs, ShapeResult};

#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// 1 for BatchNorm1d (input `[N, C]` or `[N, C, L]`), 2 for BatchNorm2d (`[N, C, H, W]`).
    pub rank: usize,
    pub num_features: usize,
    pub eps: f64,
}

impl BatchNorm {
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        let c = vec![self.num_features];
        vec![
            ("weight", c.clone()),
            ("bias", c.clone()),
            ("running_mean", c.clone()),
            ("running_var", c),
        ]
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let ranks: &[usize] = if self.rank == 2 { &[4] } else { &[2, 3] };
        expect_channels(inputs[0], ranks, self.num_features, "features")?;
        Ok(inputs[0].to_vec())
    }
}

/// `y[c] = x[c] * scale[c] + shift[c]` along axis 1.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleShift {
    pub channels: usize,
}

impl ScaleShift {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        expect_channels(inputs[0], &[2, 3, 4], self.channels, "channels")?;
        Ok(inputs[0].to_vec())
    }
}
