//! The ops: plain data structs, one file per family, each with shape inference, its parameter
//! list (state_dict suffixes and shapes) and its multiply-accumulate count.
//!
//! Shapes include the batch dimension (always 1). Errors are plain sentences; the caller adds the
//! layer name.

mod activation;
mod conv;
mod elementwise;
mod linear;
mod norm;
mod pool;
mod recurrent;
mod resample;
mod shape;

pub use activation::{Activation, PRelu, Softmax};
pub use conv::{check_window, Conv, ConvTranspose, Padding};
pub use elementwise::{broadcast_shapes, Affine, Binary, BinaryKind};
pub use linear::{Linear, MatMul};
pub use norm::{BatchNorm, GroupNorm, LayerNorm, ScaleShift};
pub use pool::{pool_chw, AdaptivePool, Pool, PoolKind};
pub use recurrent::{Recurrent, MAX_LAYERS as MAX_RECURRENT_LAYERS};
pub use resample::{ResampleMode, Target, Upsample};
pub use shape::{resolve_dim, Concat, Flatten, Permute, Reshape, Slice, ZeroPad};

/// Every op the graph can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    Linear(Linear),
    BatchNorm(BatchNorm),
    /// Per-channel `y = x * scale + shift`: a BatchNorm that could not be folded.
    ScaleShift(ScaleShift),
    LayerNorm(LayerNorm),
    GroupNorm(GroupNorm),
    Activation(Activation),
    PRelu(PRelu),
    Softmax(Softmax),
    Pool(Pool),
    AdaptivePool(AdaptivePool),
    Upsample(Upsample),
    ZeroPad(ZeroPad),
    Flatten(Flatten),
    Reshape(Reshape),
    Permute(Permute),
    Concat(Concat),
    /// One range of one axis (`x[:, 2:8]`, a part of `chunk` / `split`).
    Slice(Slice),
    Binary(Binary),
    /// `x * scale + shift` with constants.
    Affine(Affine),
    /// A matrix product of two activations.
    MatMul(MatMul),
    /// One layer and direction of a GRU or an LSTM.
    Recurrent(Recurrent),
    /// Identity in eval mode; removed by the passes.
    Dropout,
    /// f32 -> int8 in the output value's quantization; inserted by the quantization pass
    /// (`crate::quant`), an identity for the f32 reference evaluator.
    Quantize,
    /// int8 -> f32; inserted by the quantization pass, an identity for the f32 evaluator.
    Dequantize,
}

/// A buffer an op needs besides its values ([`Op::extras`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extra {
    pub kind: ExtraKind,
    /// f32 elements.
    pub shape: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtraKind {
    /// Kept from one run to the next (a recurrent state): live at every step, shared with
    /// nothing.
    State,
    /// Working memory during the op's own step only.
    Scratch,
}

impl ExtraKind {
    pub fn name(self) -> &'static str {
        match self {
            ExtraKind::State => "state",
            ExtraKind::Scratch => "scratch",
        }
    }
}

pub(crate) type ShapeResult = Result<Vec<usize>, String>;

pub(crate) fn expect_inputs(inputs: &[&[usize]], n: usize) -> Result<(), String> {
    if inputs.len() == n {
        Ok(())
    } else {
        Err(format!("takes {n} input(s), got {}", inputs.len()))
    }
}

/// Checks that `shape` has `rank` dimensions and `channels` at axis 1.
pub(crate) fn expect_channels(
    shape: &[usize],
    ranks: &[usize],
    channels: usize,
    what: &str,
) -> Result<(), String> {
    if !ranks.contains(&shape.len()) {
        let ranks: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
        return Err(format!(
            "expects a {}-d input (with the batch), got {}",
            ranks.join(" or "),
            super::fmt_shape(shape)
        ));
    }
    if shape[1] != channels {
        return Err(format!(
            "expects {channels} {what}, got {} (input shape {})",
            shape[1],
            super::fmt_shape(shape)
        ));
    }
    Ok(())
}

impl Op {
    /// The op's name as PyTorch's module would print it (`Conv2d`, `ReLU`, `add`, ...).
    pub fn kind(&self) -> String {
        match self {
            Op::Conv(c) => format!("Conv{}d", c.rank),
            Op::ConvTranspose(c) => format!("ConvTranspose{}d", c.rank),
            Op::Linear(_) => "Linear".into(),
            Op::BatchNorm(b) => format!("BatchNorm{}d", b.rank),
            Op::ScaleShift(_) => "ScaleShift".into(),
            Op::LayerNorm(_) => "LayerNorm".into(),
            Op::GroupNorm(_) => "GroupNorm".into(),
            Op::Activation(a) => a.name().into(),
            Op::PRelu(_) => "PReLU".into(),
            Op::Softmax(_) => "Softmax".into(),
            Op::Pool(p) => format!("{}Pool{}d", p.kind.name(), p.rank),
            Op::AdaptivePool(p) => format!("Adaptive{}Pool{}d", p.kind.name(), p.rank),
            Op::Upsample(_) => "Upsample".into(),
            Op::ZeroPad(_) => "ZeroPad2d".into(),
            Op::Flatten(_) => "Flatten".into(),
            Op::Reshape(_) => "Reshape".into(),
            Op::Permute(_) => "Permute".into(),
            Op::Concat(_) => "cat".into(),
            Op::Slice(_) => "slice".into(),
            Op::Binary(b) => b.kind.name().into(),
            Op::Affine(_) => "affine".into(),
            Op::MatMul(_) => "matmul".into(),
            Op::Recurrent(r) => r.name().into(),
            Op::Dropout => "Dropout".into(),
            Op::Quantize => "quantize".into(),
            Op::Dequantize => "dequantize".into(),
        }
    }

    /// The output shape for these input shapes, or why they do not fit (an output of more than
    /// [`crate::graph::MAX_ELEMENTS`] elements included).
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        for x in inputs {
            crate::graph::checked_numel(x)?;
        }
        let out = self.infer_unchecked(inputs)?;
        crate::graph::checked_numel(&out)?;
        Ok(out)
    }

    fn infer_unchecked(&self, inputs: &[&[usize]]) -> ShapeResult {
        match self {
            Op::Conv(op) => op.infer(inputs),
            Op::ConvTranspose(op) => op.infer(inputs),
            Op::Linear(op) => op.infer(inputs),
            Op::BatchNorm(op) => op.infer(inputs),
            Op::ScaleShift(op) => op.infer(inputs),
            Op::LayerNorm(op) => op.infer(inputs),
            Op::GroupNorm(op) => op.infer(inputs),
            Op::Activation(_) | Op::Affine(_) | Op::Dropout | Op::Quantize | Op::Dequantize => {
                expect_inputs(inputs, 1)?;
                Ok(inputs[0].to_vec())
            }
            Op::PRelu(op) => op.infer(inputs),
            Op::Softmax(op) => op.infer(inputs),
            Op::Pool(op) => op.infer(inputs),
            Op::AdaptivePool(op) => op.infer(inputs),
            Op::Upsample(op) => op.infer(inputs),
            Op::ZeroPad(op) => op.infer(inputs),
            Op::Flatten(op) => op.infer(inputs),
            Op::Reshape(op) => op.infer(inputs),
            Op::Permute(op) => op.infer(inputs),
            Op::Concat(op) => op.infer(inputs),
            Op::Slice(op) => op.infer(inputs),
            Op::Binary(op) => op.infer(inputs),
            Op::MatMul(op) => op.infer(inputs),
            Op::Recurrent(op) => op.infer(inputs),
        }
    }

    /// The parameters: state_dict suffix (after `module.`) and shape, in the order
    /// [`crate::graph::Node::params`] holds them.
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self {
            Op::Conv(op) => op.params(),
            Op::ConvTranspose(op) => op.params(),
            Op::Linear(op) => op.params(),
            Op::BatchNorm(op) => op.params(),
            Op::LayerNorm(op) => op.params(),
            Op::GroupNorm(op) => op.params(),
            Op::ScaleShift(op) => vec![("scale", vec![op.channels]), ("shift", vec![op.channels])],
            Op::PRelu(op) => vec![("weight", vec![op.num_parameters])],
            Op::Recurrent(op) => op.params(),
            _ => Vec::new(),
        }
    }

    /// The f32 buffers the op needs beyond its inputs and output (recurrent layers only): the
    /// planner places them and the lowering gives them tensors.
    pub fn extras(&self, output: &[usize]) -> Vec<Extra> {
        match self {
            Op::Recurrent(r) => {
                let (batch, _) = r.batch_steps(output);
                let gates = r.cell.gates() * r.hidden_size;
                vec![
                    Extra {
                        kind: ExtraKind::State,
                        shape: vec![r.cell.state_vectors(), batch, r.hidden_size],
                    },
                    Extra {
                        kind: ExtraKind::Scratch,
                        shape: vec![2, gates],
                    },
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Multiply-accumulates of one inference: convolutions, linear layers and the gates of
    /// recurrent layers (the count PyTorch profilers report as MACs; matmuls are not counted).
    pub fn macs(&self, output: &[usize]) -> u64 {
        let out = super::numel(output) as u64;
        match self {
            Op::Conv(c) => out * (c.in_channels / c.groups * c.kernel[0] * c.kernel[1]) as u64,
            // Each output pixel meets, per input channel of its group, the taps whose offset is a
            // multiple of the stride: about kernel / stride of them (exact away from the borders).
            Op::ConvTranspose(c) => {
                let taps = (c.kernel[0] * c.kernel[1]) as u64;
                out * (c.in_channels / c.groups) as u64 * taps / (c.stride[0] * c.stride[1]) as u64
            }
            Op::Linear(l) => out * l.in_features as u64,
            Op::Recurrent(r) => r.macs(output),
            _ => 0,
        }
    }

    /// Whether the op computes each output element from the same-index input element only, so
    /// the output may overwrite its first input (the planner's in-place rule).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::BatchNorm(_)
                | Op::ScaleShift(_)
                | Op::Activation(_)
                | Op::PRelu(_)
                | Op::Binary(_)
                | Op::Affine(_)
                | Op::Dropout
        )
    }

    /// Whether the output is the input's bytes under another shape (NCHW, row-major).
    pub fn is_free_reshape(&self) -> bool {
        matches!(self, Op::Flatten(_) | Op::Reshape(_) | Op::Dropout)
    }
}
