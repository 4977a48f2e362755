//! `nn.Linear`: `y = x W^T + b` over the last axis.

use super::{expect_inputs, ShapeResult};

#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
}

impl Linear {
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        let mut p = vec![("weight", vec![self.out_features, self.in_features])];
        if self.bias {
            p.push(("bias", vec![self.out_features]));
        }
        p
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        match x.last() {
            Some(&f) if f == self.in_features => {
                let mut out = x.to_vec();
                let last = out.len() - 1;
                out[last] = self.out_features;
                Ok(out)
            }
            _ => Err(format!(
                "expects {} input features in the last axis, got input shape {} (flatten first?)",
                self.in_features,
                crate::graph::fmt_shape(x)
            )),
        }
    }
}
