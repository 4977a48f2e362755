//! `nn.Linear`: `y = x W^T + b` over the last axis; and `torch.matmul` between two activations.

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

/// `torch.matmul(a, b)` / `a @ b` / `torch.bmm` between two activations: `[..., M, K] @ [..., K,
/// N] -> [..., M, N]`, both operands of one rank (at least 2); each operand's leading (batch)
/// dimensions are the output's or all 1 (one matrix for every batch), the broadcasts attention
/// and the importer's `bmm` need.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMul;

impl MatMul {
    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 2)?;
        let (a, b) = (inputs[0], inputs[1]);
        let r = a.len();
        let fmt = crate::graph::fmt_shape;
        let bad = |why: &str| Err(format!("cannot multiply {} by {}: {why}", fmt(a), fmt(b)));
        if r < 2 || b.len() != r {
            return bad("both operands need one rank of at least 2");
        }
        if a[r - 1] != b[r - 2] {
            return bad("the inner dimensions differ");
        }
        let (ab, bb) = (&a[..r - 2], &b[..r - 2]);
        let ones = |s: &[usize]| s.iter().all(|&d| d == 1);
        let batch = if ab == bb || ones(bb) {
            ab
        } else if ones(ab) {
            bb
        } else {
            return bad("the batch dimensions must be equal, or all 1 on one side");
        };
        let mut out = batch.to_vec();
        out.extend([a[r - 2], b[r - 1]]);
        Ok(out)
    }
}
