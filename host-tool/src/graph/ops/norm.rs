//! `nn.BatchNorm1d` / `nn.BatchNorm2d` in eval mode (running statistics), the per-channel
//! scale-and-shift a BatchNorm becomes when it cannot be folded, and the normalizations that use
//! the statistics of the input itself: `nn.LayerNorm` and `nn.GroupNorm`.

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

/// `nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias)`: each run of the last
/// `shape.len()` axes normalized by its own mean and (biased) variance, then scaled and shifted
/// elementwise by `weight` and `bias` of that shape.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    pub shape: Vec<usize>,
    pub eps: f64,
    /// `elementwise_affine`: a `weight`.
    pub affine: bool,
    /// A `bias` (with `affine` only).
    pub bias: bool,
}

impl LayerNorm {
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        let mut p = Vec::new();
        if self.affine {
            p.push(("weight", self.shape.clone()));
            if self.bias {
                p.push(("bias", self.shape.clone()));
            }
        }
        p
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        if self.shape.is_empty() || !x.ends_with(&self.shape) || x.len() == self.shape.len() {
            return Err(format!(
                "normalized_shape {:?} is not the trailing dimensions of the input {}",
                self.shape,
                crate::graph::fmt_shape(x)
            ));
        }
        Ok(x.to_vec())
    }
}

/// `nn.GroupNorm(num_groups, num_channels, eps, affine)`: the channels split into `groups`
/// consecutive groups, each normalized over its channels and positions, then scaled and shifted
/// per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNorm {
    pub groups: usize,
    /// `num_channels`; `None` for the functional form, which takes the input's.
    pub channels: Option<usize>,
    pub eps: f64,
    /// A per-channel `weight` and `bias`.
    pub affine: bool,
}

impl GroupNorm {
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        match (self.affine, self.channels) {
            (true, Some(c)) => vec![("weight", vec![c]), ("bias", vec![c])],
            _ => Vec::new(),
        }
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let channels = self.channels.unwrap_or(x.get(1).copied().unwrap_or(0));
        expect_channels(x, &[2, 3, 4], channels, "channels")?;
        if self.groups == 0 || channels % self.groups != 0 {
            return Err(format!(
                "num_channels {channels} must be divisible by num_groups {}",
                self.groups
            ));
        }
        Ok(inputs[0].to_vec())
    }
}
