//! One direction of one GRU or LSTM layer over a sequence (format version 6's `Recurrent`).
//! In: the input sequence, the layer's weights, the recurrent state (`h`, and `c` for an LSTM)
//! and a scratch row of `2 * G * H` values. Out: the hidden state after every step, and the
//! state after the last one (where a stepping run continues).
//!
//! Each step is two [`linear`] layers of one row — the input's gate pre-activations `gx` and the
//! hidden state's `gh`, so that the Cortex-M4F's and x86's fast loops serve both — then the
//! cell's equations per unit, in PyTorch's form and gate order (the format's documentation of
//! `Recurrent`). The previous `h` is always the state's: each new frame is copied there, which
//! costs `H` moves a step against `G * H * (I + H)` multiply-accumulates.

use super::linear::linear;
use crate::act::sigmoid;
use crate::weights::{Matrix, Vector};
use nnblob_format::meta::Cell;

/// The sizes of one layer's run.
pub(crate) struct Geom {
    pub cell: Cell,
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub hidden: usize,
    pub batch_first: bool,
    pub reverse: bool,
}

/// The layer's weights (PyTorch's layout, gates stacked by rows).
pub(crate) struct Params<'w> {
    pub weight_ih: Matrix<'w>,
    pub weight_hh: Matrix<'w>,
    pub bias_ih: Option<Vector<'w>>,
    pub bias_hh: Option<Vector<'w>>,
}

/// `x`: the input sequence, `y`: the output sequence, `state`: `h` for every sequence of the
/// batch (then `c` for an LSTM), `scratch`: `2 * G * H` values; the validated lengths (shorter
/// slices leave outputs unwritten).
pub(crate) fn recurrent(
    g: &Geom,
    p: &Params<'_>,
    x: &[f32],
    y: &mut [f32],
    state: &mut [f32],
    scratch: &mut [f32],
) {
    let (h, i) = (g.hidden, g.input);
    let gates = g.cell.gates() * h;
    let (gx, gh) = scratch.split_at_mut(gates.min(scratch.len()));
    let (hs, cs) = state.split_at_mut((g.batch * h).min(state.len()));
    for s in 0..g.steps {
        let t = if g.reverse { g.steps - 1 - s } else { s };
        for b in 0..g.batch {
            // The row of frame (t, b) in the input and the output.
            let row = if g.batch_first {
                b * g.steps + t
            } else {
                t * g.batch + b
            };
            let xt = x.get(row * i..(row + 1) * i).unwrap_or_default();
            let hb = hs.get_mut(b * h..(b + 1) * h).unwrap_or_default();
            linear(1, i, gates, xt, gx, p.weight_ih, p.bias_ih);
            linear(1, h, gates, hb, gh, p.weight_hh, p.bias_hh);
            let yt = y.get_mut(row * h..(row + 1) * h).unwrap_or_default();
            match g.cell {
                Cell::Gru => gru(h, gx, gh, hb, yt),
                Cell::Lstm => {
                    let cb = cs.get_mut(b * h..(b + 1) * h).unwrap_or_default();
                    lstm(h, gx, gh, cb, yt);
                }
            }
            super::copy_row(hb, yt);
        }
    }
}

/// The pre-activations of gate `k` (in the cell's order) from `gx` and `gh`.
fn gate(v: &[f32], k: usize, h: usize) -> &[f32] {
    v.get(k * h..(k + 1) * h).unwrap_or_default()
}

/// `y = n + z * (h - n)` with `r, z, n` from the gates.
fn gru(h: usize, gx: &[f32], gh: &[f32], prev: &[f32], y: &mut [f32]) {
    let (xr, xz, xn) = (gate(gx, 0, h), gate(gx, 1, h), gate(gx, 2, h));
    let (hr, hz, hn) = (gate(gh, 0, h), gate(gh, 1, h), gate(gh, 2, h));
    let terms = xr
        .iter()
        .zip(hr)
        .zip(xz.iter().zip(hz))
        .zip(xn.iter().zip(hn));
    for ((((&xr, &hr), (&xz, &hz)), (&xn, &hn)), (y, &prev)) in terms.zip(y.iter_mut().zip(prev)) {
        let r = sigmoid(xr + hr);
        let z = sigmoid(xz + hz);
        let n = libm::tanhf(xn + r * hn);
        *y = n + z * (prev - n);
    }
}

/// `c = f * c + i * g`, `y = o * tanh(c)` with `i, f, g, o` from the gates.
fn lstm(h: usize, gx: &[f32], gh: &[f32], c: &mut [f32], y: &mut [f32]) {
    let (xi, xf, xg, xo) = (
        gate(gx, 0, h),
        gate(gx, 1, h),
        gate(gx, 2, h),
        gate(gx, 3, h),
    );
    let (hi, hf, hg, ho) = (
        gate(gh, 0, h),
        gate(gh, 1, h),
        gate(gh, 2, h),
        gate(gh, 3, h),
    );
    let input = xi.iter().zip(hi).zip(xf.iter().zip(hf));
    let output = xg.iter().zip(hg).zip(xo.iter().zip(ho));
    for ((((&xi, &hi), (&xf, &hf)), ((&xg, &hg), (&xo, &ho))), (c, y)) in
        input.zip(output).zip(c.iter_mut().zip(y.iter_mut()))
    {
        let i = sigmoid(xi + hi);
        let f = sigmoid(xf + hf);
        let g = libm::tanhf(xg + hg);
        let o = sigmoid(xo + ho);
        *c = f * *c + i * g;
        *y = o * libm::tanhf(*c);
    }
}
