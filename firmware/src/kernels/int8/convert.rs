//! Conversions between f32 and int8 at the edges of int8 regions (and of the model).

use nnblob_format::meta::Quant;

/// `clamp(round_half_even(x / scale) + zero_point, -128, 127)`; NaN gives the zero point.
#[inline]
pub(crate) fn quantize_one(x: f32, q: Quant) -> i8 {
    // `as` saturates (and maps NaN to 0), so huge quotients clamp instead of wrapping.
    let r = libm::rintf(x / q.scale) as i32;
    r.saturating_add(i32::from(q.zero_point)).clamp(-128, 127) as i8
}

/// `(q - zero_point) * scale`, in f32.
#[inline]
pub(crate) fn dequantize_one(v: i8, q: Quant) -> f32 {
    (i32::from(v) - i32::from(q.zero_point)) as f32 * q.scale
}

/// Quantizes `input` into `output` (same length).
pub(crate) fn quantize(input: &[f32], q: Quant, output: &mut [i8]) {
    for (y, &x) in output.iter_mut().zip(input) {
        *y = quantize_one(x, q);
    }
}

/// Dequantizes `input` into `output` (same length).
pub(crate) fn dequantize(input: &[i8], q: Quant, output: &mut [f32]) {
    for (y, &x) in output.iter_mut().zip(input) {
        *y = dequantize_one(x, q);
    }
}
