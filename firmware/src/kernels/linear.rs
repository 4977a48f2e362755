//! Fully connected layer: `y[m][o] = bias[o] (or 0) + sum_i w[o][i] * x[m][i]`, the sum in
//! increasing `i`. Weight rows are decoded once, a tile at a time, and used for every row `m`.

use crate::weights::{Matrix, Vector};

const TILE: usize = 64;

/// `input`: `rows * in_f`, `output`: `rows * out_f`, `weight`: `out_f * in_f` elements.
#[allow(clippy::indexing_slicing)] // lengths checked by validation
pub(crate) fn linear(
    rows: usize,
    in_f: usize,
    out_f: usize,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
) {
    let mut wbuf = [0.0f32; TILE];
    for o in 0..out_f {
        let b = bias.map_or(0.0, |b| b.get(o));
        for m in 0..rows {
            output[m * out_f + o] = b;
        }
        let mut i0 = 0;
        while i0 < in_f {
            let n = TILE.min(in_f - i0);
            let w = &mut wbuf[..n];
            weight.decode(o * in_f + i0, w);
            for m in 0..rows {
                let x = &input[m * in_f + i0..m * in_f + i0 + n];
                let mut acc = output[m * out_f + o];
                for (a, b) in w.iter().zip(x) {
                    acc += a * b;
                }
                output[m * out_f + o] = acc;
            }
            i0 += n;
        }
    }
}
