//! int8 fully connected layer. In: `rows` vectors of `fi` int8, weights `[fo][fi]` int8,
//! per-output records. Out: `rows` vectors of `fo` int8.

use super::{channel, finish, Ends};

/// `y[r][o] = finish(bias[o] + sum_i (x[r][i] - zx) * w[o][i])`, `i` increasing.
#[allow(clippy::indexing_slicing)] // lengths validated at load time
pub(crate) fn linear(
    (rows, fi, fo): (usize, usize, usize),
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    let Ends { zx, zy, clamp } = ends;
    for r in 0..rows {
        let x = &input[r * fi..(r + 1) * fi];
        for o in 0..fo {
            let ch = channel(records, o);
            let w = &weight[o * fi..(o + 1) * fi];
            let mut acc = ch.bias;
            for (&xv, &wv) in x.iter().zip(w) {
                acc = acc.wrapping_add((i32::from(xv) - zx).wrapping_mul(i32::from(wv)));
            }
            output[r * fo + o] = finish(acc, ch.requant, zy, clamp);
        }
    }
}
