//! The int8 kernels (format version 3). In: int8 planes of validated lengths, int8 weights and
//! per-channel records read in place from the blob, the tensors' zero points. Out: int8 planes.
//!
//! Arithmetic (docs/FORMAT.md, "int8"): products of `(x - x_zero_point)` and a weight are summed
//! in `i32` (wrapping, so every target computes the same bits whatever the sizes), the sum is
//! rescaled by [`Requant::apply`] (64-bit product, one rounding), the output zero point added
//! with saturation and the result clamped to the op's range. Everything is integer, so the bits
//! are the same on every target by construction.

pub(crate) mod add;
pub(crate) mod conv;
pub(crate) mod convert;
pub(crate) mod linear;
pub(crate) mod pool;

use nnblob_format::meta::{Requant, QCHANNEL_LEN};

/// One output channel's record: bias and rescaling.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Channel {
    pub bias: i32,
    pub requant: Requant,
}

/// Reads record `c` of a per-channel table (validated: `QCHANNEL_LEN` bytes per channel).
#[inline]
pub(crate) fn channel(records: &[u8], c: usize) -> Channel {
    let word = |k: usize| {
        let at = c * QCHANNEL_LEN + 4 * k;
        match records.get(at..at + 4) {
            Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
    };
    Channel {
        bias: word(0),
        requant: Requant {
            multiplier: word(1),
            shift: word(2),
        },
    }
}

/// What turns an op's accumulators into its outputs, besides the per-channel rescaling: the
/// input zero point (subtracted from every input), the output zero point and the clamp.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ends {
    pub zx: i32,
    pub zy: i32,
    pub clamp: [i8; 2],
}

/// The output of an accumulator: rescaled, the zero point added, clamped to `[lo, hi]`.
#[inline]
pub(crate) fn finish(acc: i32, requant: Requant, zero_point: i32, clamp: [i8; 2]) -> i8 {
    let y = requant.apply(acc).saturating_add(zero_point);
    y.clamp(i32::from(clamp[0]), i32::from(clamp[1])) as i8
}
