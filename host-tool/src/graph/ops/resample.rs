//! Resampling: `nn.Upsample`, `nn.UpsamplingNearest2d`, `nn.UpsamplingBilinear2d` and
//! `F.interpolate` in modes `nearest`, `linear` (a 3-d input) and `bilinear` (a 4-d input), by
//! `size` or by `scale_factor`.
//!
//! The output size follows PyTorch (`floor(in * scale_factor)`), and so does the f32 factor
//! that maps output coordinates back to the input ([`Upsample::coord_scales`]): a given scale
//! factor maps by `1 / scale_factor`, which is not always `in / out`, so the factor travels to
//! the blob rather than being derived from the sizes there.

use super::{expect_inputs, ShapeResult};
use crate::graph::fmt_shape;
use nnblob_format::meta::ResizeMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResampleMode {
    Nearest,
    /// Along the one axis of a 3-d input.
    Linear,
    /// Along both axes of a 4-d input.
    Bilinear,
}

impl ResampleMode {
    /// The blob's mode: both linear modes are one.
    pub fn wire(self) -> ResizeMode {
        match self {
            ResampleMode::Nearest => ResizeMode::Nearest,
            ResampleMode::Linear | ResampleMode::Bilinear => ResizeMode::Linear,
        }
    }

    /// PyTorch's `mode` string.
    pub fn name(self) -> &'static str {
        match self {
            ResampleMode::Nearest => "nearest",
            ResampleMode::Linear => "linear",
            ResampleMode::Bilinear => "bilinear",
        }
    }
}

/// The sizes or factors of an upsampling: one value for every spatial axis, or one per axis.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Size(Vec<usize>),
    ScaleFactor(Vec<f64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Upsample {
    pub mode: ResampleMode,
    pub target: Target,
    /// Linear modes only (PyTorch refuses it with nearest).
    pub align_corners: bool,
    /// PyTorch's `recompute_scale_factor=True`: coordinates map by `in / out`, not by
    /// `1 / scale_factor`.
    pub recompute_scale_factor: bool,
}

/// One value per spatial axis from a list of one or `axes` values.
fn per_axis<T: Copy>(v: &[T], axes: usize, what: &str) -> Result<Vec<T>, String> {
    match v.len() {
        1 => Ok(vec![v[0]; axes]),
        n if n == axes => Ok(v.to_vec()),
        n => Err(format!(
            "{what} has {n} values for {axes} spatial dimension(s)"
        )),
    }
}

impl Upsample {
    /// The spatial sizes of the input (one or two) and the scale factor of each axis, if given.
    fn axes(&self, x: &[usize]) -> Result<(Vec<usize>, Vec<Option<f64>>), String> {
        let rank_ok = match self.mode {
            ResampleMode::Nearest => x.len() == 3 || x.len() == 4,
            ResampleMode::Linear => x.len() == 3,
            ResampleMode::Bilinear => x.len() == 4,
        };
        if !rank_ok {
            let want = match self.mode {
                ResampleMode::Nearest => "a 3-d or 4-d",
                ResampleMode::Linear => "a 3-d",
                ResampleMode::Bilinear => "a 4-d",
            };
            return Err(format!(
                "mode '{}' expects {want} input (with the batch), got {}",
                self.mode.name(),
                fmt_shape(x)
            ));
        }
        let spatial = x[2..].to_vec();
        let factors = match &self.target {
            Target::Size(_) => vec![None; spatial.len()],
            Target::ScaleFactor(f) => {
                let f = per_axis(f, spatial.len(), "scale_factor")?;
                if let Some(bad) = f.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                    return Err(format!("scale_factor {bad} must be a positive number"));
                }
                f.into_iter().map(Some).collect()
            }
        };
        Ok((spatial, factors))
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let (spatial, factors) = self.axes(x)?;
        let out: Vec<usize> = match &self.target {
            Target::Size(s) => per_axis(s, spatial.len(), "size")?,
            // PyTorch's `floor(in * scale_factor)`, in f64.
            Target::ScaleFactor(_) => spatial
                .iter()
                .zip(&factors)
                .map(|(&n, f)| (n as f64 * f.unwrap_or(1.0)).floor())
                .map(|v| if v < 1e15 { v as usize } else { usize::MAX })
                .collect(),
        };
        if out.contains(&0) {
            return Err(format!(
                "the output size {out:?} of input {} has an empty axis",
                fmt_shape(x)
            ));
        }
        let mut shape = x[..2].to_vec();
        shape.extend(out);
        Ok(shape)
    }

    /// The f32 factor from output to input coordinates of each spatial axis, as `[height,
    /// width]` (a 3-d input's height is 1, its factor 1), PyTorch's rule: `(in - 1) / (out - 1)`
    /// (0 for one output) with `align_corners`, else `1 / scale_factor` when one was given and
    /// is not recomputed, else `in / out`.
    pub fn coord_scales(&self, input: &[usize], output: &[usize]) -> Result<[f32; 2], String> {
        let (spatial, factors) = self.axes(input)?;
        let scale = |axis: usize| -> f32 {
            let (inp, out) = (spatial[axis], output[2 + axis]);
            if self.align_corners {
                if out > 1 {
                    (inp - 1) as f32 / (out - 1) as f32
                } else {
                    0.0
                }
            } else {
                match factors[axis] {
                    Some(f) if !self.recompute_scale_factor => (1.0 / f) as f32,
                    _ => inp as f32 / out as f32,
                }
            }
        };
        Ok(match spatial.len() {
            1 => [1.0, scale(0)],
            _ => [scale(0), scale(1)],
        })
    }
}
