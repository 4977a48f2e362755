//! `nn.GRU` and `nn.LSTM`: one node per layer and direction, each reading the whole input
//! sequence and giving the hidden state after every step (PyTorch's `output` of that layer and
//! direction). The spec expands a module into these nodes, the concatenation of a bidirectional
//! layer's two halves and, for `h_n`, the slices of each node's last step.

use nnblob_format::meta::Cell;

use super::{expect_inputs, ShapeResult};
use crate::graph::fmt_shape;

/// The most layers a module may stack (each layer's parameter names are spelled out below).
pub const MAX_LAYERS: usize = 4;

/// The state_dict suffixes of layer `l`'s forward (`[l][0]`) and reverse (`[l][1]`) direction:
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
const SUFFIXES: [[[&str; 4]; 2]; MAX_LAYERS] = {
    macro_rules! layer {
        ($l:literal) => {
            [
                [
                    concat!("weight_ih_l", $l),
                    concat!("weight_hh_l", $l),
                    concat!("bias_ih_l", $l),
                    concat!("bias_hh_l", $l),
                ],
                [
                    concat!("weight_ih_l", $l, "_reverse"),
                    concat!("weight_hh_l", $l, "_reverse"),
                    concat!("bias_ih_l", $l, "_reverse"),
                    concat!("bias_hh_l", $l, "_reverse"),
                ],
            ]
        };
    }
    [layer!(0), layer!(1), layer!(2), layer!(3)]
};

/// One direction of one layer of a GRU or an LSTM.
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    pub cell: Cell,
    /// This layer's input features (the module's `input_size` for layer 0, `hidden_size` times
    /// the directions above it).
    pub input_size: usize,
    pub hidden_size: usize,
    pub bias: bool,
    /// `[batch, time, features]` when set, `[time, batch, features]` otherwise.
    pub batch_first: bool,
    /// Which layer and direction of the module this node is (its parameters' suffixes).
    pub layer: usize,
    pub reverse: bool,
    /// The module's own arguments, for printing it back.
    pub num_layers: usize,
    pub bidirectional: bool,
}

impl Recurrent {
    /// `GRU` or `LSTM`.
    pub fn name(&self) -> &'static str {
        match self.cell {
            Cell::Gru => "GRU",
            Cell::Lstm => "LSTM",
        }
    }

    pub fn params(&self) -> Vec<(&'static str, Vec<usize>)> {
        let [w_ih, w_hh, b_ih, b_hh] =
            SUFFIXES[self.layer.min(MAX_LAYERS - 1)][self.reverse as usize];
        let rows = self.cell.gates() * self.hidden_size;
        let mut p = vec![
            (w_ih, vec![rows, self.input_size]),
            (w_hh, vec![rows, self.hidden_size]),
        ];
        if self.bias {
            p.push((b_ih, vec![rows]));
            p.push((b_hh, vec![rows]));
        }
        p
    }

    /// `(batch, steps)` of an input or output shape.
    pub fn batch_steps(&self, shape: &[usize]) -> (usize, usize) {
        if self.batch_first {
            (shape[0], shape[1])
        } else {
            (shape[1], shape[0])
        }
    }

    pub fn infer(&self, inputs: &[&[usize]]) -> ShapeResult {
        expect_inputs(inputs, 1)?;
        let x = inputs[0];
        let layout = if self.batch_first {
            "[batch, time, features]"
        } else {
            "[time, batch, features] (batch_first=False)"
        };
        if x.len() != 3 || x[2] != self.input_size {
            return Err(format!(
                "expects a 3-d input {layout} with {} features, got {}",
                self.input_size,
                fmt_shape(x)
            ));
        }
        if x[0] == 0 || x[1] == 0 {
            return Err(format!(
                "expects a non-empty sequence, got {}",
                fmt_shape(x)
            ));
        }
        Ok(vec![x[0], x[1], self.hidden_size])
    }

    /// Multiply-accumulates: per step and sequence, the gates of every unit from the input and
    /// the previous hidden state.
    pub fn macs(&self, output: &[usize]) -> u64 {
        let frames = (output[0] * output[1]) as u64;
        frames
            * (self.cell.gates() * self.hidden_size * (self.input_size + self.hidden_size)) as u64
    }
}
