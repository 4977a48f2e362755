//! The numbers of int8: activation ranges to scales and zero points, real factors to the
//! format's integer rescalings ([`Requant`]), float weights to symmetric per-channel int8.
//!
//! In: f32 ranges, scales and weights. Out: [`Quant`], [`Requant`], int8 weights and their
//! scales. The rules follow TensorFlow Lite's (docs/FORMAT.md, "int8"), so results compare with
//! theirs: activations asymmetric over a range that contains 0, weights symmetric in
//! `[-127, 127]`, biases int32 at `s_in * s_w`, factors as a 31-bit multiplier and a shift.

use nnblob_format::meta::{Quant, Requant};

/// The quantization of the real range `[lo, hi]` (widened to contain 0, so that 0 and the
/// padding are exact): `scale = (hi - lo) / 255`, `zero_point = round(-128 - lo / scale)`.
pub fn range_quant(lo: f32, hi: f32) -> Quant {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    // A constant-zero tensor still needs a positive scale; any will do.
    let span = if hi - lo > 1e-30 { hi - lo } else { 1.0 };
    let scale = (span / 255.0) as f32;
    let zp = (-128.0 - lo / f64::from(scale))
        .round()
        .clamp(-128.0, 127.0);
    Quant {
        scale,
        zero_point: zp as i8,
    }
}

/// `q` of a real value in quantization `quant`: `clamp(round_half_even(x / scale) + zp)`, in
/// f32 like the engine's `Quantize` (written here from that definition).
pub fn quantize_value(x: f32, quant: Quant) -> i8 {
    let r = (x / quant.scale).round_ties_even();
    if r.is_nan() {
        return quant.zero_point;
    }
    (f64::from(r) + f64::from(quant.zero_point)).clamp(-128.0, 127.0) as i8
}

/// The real value of `q`.
pub fn dequantize_value(q: i8, quant: Quant) -> f32 {
    (i32::from(q) - i32::from(quant.zero_point)) as f32 * quant.scale
}

/// `f = m * 2^e` with `m` in `[0.5, 1)`, for a positive finite `f`.
fn frexp(f: f64) -> (f64, i32) {
    let bits = f.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(f * 2f64.powi(64));
        return (m, e - 64);
    }
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp - 1022)
}

/// The rescaling closest to the real factor `f >= 0`: the multiplier is `round(m * 2^31)`
/// (half away from zero) of `f = m * 2^e`, the shift `31 - e`. Factors below `2^-31` round to a
/// zero multiplier; factors of `2^30` or more have no representation (`None`).
pub fn requant_of(f: f64) -> Option<Requant> {
    if !(f.is_finite() && f >= 0.0) {
        return None;
    }
    if f == 0.0 {
        return Some(Requant {
            multiplier: 0,
            shift: 1,
        });
    }
    let (m, mut e) = frexp(f);
    let mut q = (m * 2f64.powi(31)).round() as i64;
    if q == 1 << 31 {
        q /= 2;
        e += 1;
    }
    let shift = 31 - e;
    if shift > 62 {
        return Some(Requant {
            multiplier: 0,
            shift: 62,
        });
    }
    (shift >= 1).then_some(Requant {
        multiplier: q as i32,
        shift,
    })
}

/// Symmetric int8 weights per output channel: `rows` rows of `weights.len() / rows` values,
/// each row scaled by `max |w| / 127` (1 for an all-zero row). Returns the int8 values (same
/// layout) and the per-row scales.
pub fn quantize_weights(weights: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per_row = weights.len() / rows.max(1);
    let mut q = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(rows);
    for row in weights.chunks(per_row.max(1)) {
        let max = row.iter().fold(0f32, |m, &w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        for &w in row {
            q.push(
                (f64::from(w) / f64::from(scale))
                    .round()
                    .clamp(-127.0, 127.0) as i8,
            );
        }
        scales.push(scale);
    }
    (q, scales)
}

/// The int32 bias at scale `s_in * s_w` (rounded half away from zero, saturated).
pub fn quantize_bias(b: f32, s_in: f32, s_w: f32) -> i32 {
    let v = f64::from(b) / (f64::from(s_in) * f64::from(s_w));
    v.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rescaling represents the factor to within half a unit of the multiplier.
    #[test]
    fn requant_is_close_to_its_factor() {
        for &f in &[
            1e-9,
            3.2e-5,
            0.0123,
            0.5,
            0.75,
            0.999_999_999,
            1.0,
            1.5,
            300.0,
        ] {
            let r = requant_of(f).unwrap();
            let back = f64::from(r.multiplier) * 2f64.powi(-r.shift);
            assert!(
                (back - f).abs() <= 2f64.powi(-r.shift) / 2.0 + 1e-300,
                "{f}: {r:?}"
            );
            assert!(r.is_valid(), "{f}: {r:?}");
        }
        assert_eq!(requant_of(2f64.powi(31)), None);
        assert_eq!(requant_of(f64::NAN), None);
        assert_eq!(requant_of(1e-30).unwrap().multiplier, 0);
    }

    /// The range contains 0, maps its ends to -128 and 127 and 0 to an exact integer.
    #[test]
    fn ranges_map_to_the_int8_ends() {
        let q = range_quant(-1.0, 3.0);
        assert_eq!(quantize_value(-1.0, q), -128);
        assert_eq!(quantize_value(3.0, q), 127);
        assert_eq!(dequantize_value(q.zero_point, q), 0.0);
        let relu = range_quant(0.0, 6.0);
        assert_eq!(relu.zero_point, -128);
        let constant = range_quant(0.0, 0.0);
        assert!(constant.scale > 0.0);
    }
}
