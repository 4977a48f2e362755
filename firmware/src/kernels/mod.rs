//! The kernels. Each takes slices of exactly the validated lengths and geometry that
//! `crate::validate` checked; none allocates, and hot loops carry no checks beyond
//! Rust's bounds checks (which validation makes unreachable).

pub(crate) mod conv;
pub(crate) mod conv_transpose;
mod depthwise;
pub(crate) mod elementwise;
pub(crate) mod int8;
pub(crate) mod linear;
pub(crate) mod matmul;
mod micro;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod resize;
pub(crate) mod shape;
pub mod simd;

/// `dst.copy_from_slice(src)` (nothing if the lengths differ). Under an operating system
/// ([`micro::HOSTED`]), rows of fewer than 64 values are copied with moves of 8, 4 and 1
/// values, overlapping where needed, rather than by a call to the C library's `memmove`,
/// which costs more than the copy itself for the short rows of small maps. Elsewhere it is
/// `copy_from_slice`.
#[inline]
pub(crate) fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = src.len();
    if dst.len() != n {
        return;
    }
    if !micro::HOSTED || n >= 64 {
        dst.copy_from_slice(src);
        return;
    }
    // Copies `src[at..at + K]` to the same place of `dst` with a move of fixed length.
    fn fixed<const K: usize>(dst: &mut [f32], src: &[f32], at: usize) {
        let s = src
            .get(at..at + K)
            .and_then(|s| <&[f32; K]>::try_from(s).ok());
        let d = dst
            .get_mut(at..at + K)
            .and_then(|d| <&mut [f32; K]>::try_from(d).ok());
        if let (Some(s), Some(d)) = (s, d) {
            *d = *s;
        }
    }
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            fixed::<8>(dst, src, at);
            at += 8;
        }
        if at < n {
            fixed::<8>(dst, src, n - 8);
        }
    } else if n >= 4 {
        fixed::<4>(dst, src, 0);
        fixed::<4>(dst, src, n - 4);
    } else {
        for at in 0..3 {
            if at < n {
                fixed::<1>(dst, src, at);
            }
        }
    }
}
