//! int8 addition of two tensors with their own scales (TensorFlow Lite's method, with this
//! format's single-rounding [`Requant`]): both operands are aligned to a common fine scale,
//! added exactly, and the sum rescaled to the output.

use super::{finish, rescale};
use nnblob_format::meta::{QAdd, QADD_LEFT_SHIFT};

/// `out[i] = finish(out_requant(a_requant((a - za) << 20) + b_requant((b - zb) << 20)))`;
/// `a` may be the output itself (in place: each element is read before it is written).
pub(crate) fn add(q: &QAdd, za: i32, zb: i32, zy: i32, out_and_a: &mut [i8], b: &[i8]) {
    for (y, &bv) in out_and_a.iter_mut().zip(b) {
        let av = (i32::from(*y) - za) << QADD_LEFT_SHIFT;
        let bv = (i32::from(bv) - zb) << QADD_LEFT_SHIFT;
        let sum = rescale(av, q.a_requant).saturating_add(rescale(bv, q.b_requant));
        *y = finish(sum, q.out_requant, zy, q.clamp);
    }
}
