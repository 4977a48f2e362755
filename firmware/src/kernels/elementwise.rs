//! Element-wise kernels working in place on the output (the engine first copies the first
//! operand into the output when they are not the same tensor).

use crate::weights::Vector;
use nnblob_format::meta::Broadcast;

/// `data[o][c][i] = data[o][c][i] * scale[c] + shift[c]` over `[outer][channels][inner]`.
pub(crate) fn channel_affine(
    data: &mut [f32],
    channels: usize,
    inner: usize,
    scale: Vector<'_>,
    shift: Vector<'_>,
) {
    for (k, chunk) in data.chunks_mut(inner.max(1)).enumerate() {
        let c = k % channels.max(1);
        let (s, t) = (scale.get(c), shift.get(c));
        for x in chunk {
            *x = *x * s + t;
        }
    }
}

/// The two binary ops.
#[derive(Clone, Copy)]
pub(crate) enum BinOp {
    Add,
    Mul,
}

#[inline]
fn apply(op: BinOp, a: f32, b: f32) -> f32 {
    match op {
        BinOp::Add => a + b,
        BinOp::Mul => a * b,
    }
}

/// `data = data op broadcast(b)`; `channels`/`inner` describe `data` as `[outer][channels][inner]`.
pub(crate) fn binary(
    op: BinOp,
    bc: Broadcast,
    data: &mut [f32],
    b: &[f32],
    channels: usize,
    inner: usize,
) {
    match bc {
        Broadcast::None => {
            for (x, y) in data.iter_mut().zip(b) {
                *x = apply(op, *x, *y);
            }
        }
        Broadcast::Scalar => {
            let y = b.first().copied().unwrap_or(0.0);
            for x in data {
                *x = apply(op, *x, y);
            }
        }
        Broadcast::Channel => {
            for (k, chunk) in data.chunks_mut(inner.max(1)).enumerate() {
                let y = b.get(k % channels.max(1)).copied().unwrap_or(0.0);
                for x in chunk {
                    *x = apply(op, *x, y);
                }
            }
        }
    }
}
