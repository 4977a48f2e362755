//! int8 addition of two tensors with their own scales (TensorFlow Lite's method, with this
//! format's single-rounding [`Requant`]): both operands are aligned to a common fine scale,
//! added exactly, and the sum rescaled to the output.

use super::{finish, rescale};
use nnblob_format::meta::{QAdd, QADD_LEFT_SHIFT};

/// Tensors from this many elements on rescale their operands through two tables of the 256
/// terms an int8 value can give (2 KiB of stack, while the op runs): 512 rescalings instead of
/// two per element.
const TABLES_FROM: usize = 1024;

/// `out[i] = finish(out_requant(a_requant((a - za) << 20) + b_requant((b - zb) << 20)))`;
/// `a` may be the output itself (in place: each element is read before it is written).
pub(crate) fn add(q: &QAdd, za: i32, zb: i32, zy: i32, out_and_a: &mut [i8], b: &[i8]) {
    let term = |v: i8, z: i32, r| rescale((i32::from(v) - z) << QADD_LEFT_SHIFT, r);
    if out_and_a.len() >= TABLES_FROM {
        let ta: [i32; 256] = core::array::from_fn(|i| term(i as u8 as i8, za, q.a_requant));
        let tb: [i32; 256] = core::array::from_fn(|i| term(i as u8 as i8, zb, q.b_requant));
        for (y, &bv) in out_and_a.iter_mut().zip(b) {
            let at = |t: &[i32; 256], v: i8| t.get(usize::from(v as u8)).copied().unwrap_or(0);
            let sum = at(&ta, *y).saturating_add(at(&tb, bv));
            *y = finish(sum, q.out_requant, zy, q.clamp);
        }
        return;
    }
    for (y, &bv) in out_and_a.iter_mut().zip(b) {
        let sum = term(*y, za, q.a_requant).saturating_add(term(bv, zb, q.b_requant));
        *y = finish(sum, q.out_requant, zy, q.clamp);
    }
}
