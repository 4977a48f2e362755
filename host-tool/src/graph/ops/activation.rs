//! Element-wise activations (ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid,
//! GELU), PReLU (which has a weight) and Softmax.

use super::{expect_inputs, ShapeResult};

/// A parameter-free element-wise activation; also what the fusion pass attaches to a node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    Relu6,
    LeakyRelu {
        negative_slope: f32,
    },
    Sigmoid,
    Tanh,
    Silu,
    Hardswish,
    Hardsigmoid,
    /// `approximate='none'` (erf) or `'tanh'`.
    Gelu {
        tanh: bool,
    },
}

impl Activation {
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Relu6 => "ReLU6",
            Activation::LeakyRelu { .. } => "LeakyReLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Silu => "SiLU",
            Activation::Hardswish => "Hardswish",
            Activation::Hardsigmoid => "Hardsigmoid",
            Activation::Gelu { .. } => "GELU",
        }
    }
}

/// `nn.PReLU(num_parameters)`: `max(0, x) + weight[c] * min(0, x)`, one slope or one per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct PRelu {
    pub num_parameters: usize,
}

impl PRelu {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        if self.num_parameters != 1 && (x.len() < 2 || x[1] != self.num_parameters) {
            return Err(format!(
                "has {} slopes but the input has {} channels",
                self.num_parameters,
                x.get(1).copied().unwrap_or(0)
            ));
        }
        Ok(x.to_vec())
    }
}

/// `softmax(x, dim)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Softmax {
    /// The axis; negative counts from the end, as in PyTorch.
    pub dim: i64,
}

impl Softmax {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        super::shape::resolve_dim(self.dim, inputs[0].len())?;
        Ok(inputs[0].to_vec())
    }
}
