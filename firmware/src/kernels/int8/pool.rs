//! int8 pooling, the input's quantization kept by the output (the converter gives both the
//! same scale and zero point): max, and average with a rounded integer division.

use crate::kernels::pool::{for_each_window, Geom};

/// Max pooling; a window that is only padding gives -128 (PyTorch's -inf, saturated).
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn max_pool(g: &Geom, input: &[i8], output: &mut [i8]) {
    for_each_window(g, |win| {
        let rows = win.rows_of(g, input);
        output[win.out] = rows.flatten().fold(i8::MIN, |m, &v| m.max(v));
    });
}

/// `round(sum / n)` with half-way cases away from zero, in integers (`n > 0`).
#[inline]
pub(crate) fn rounded_div(sum: i32, n: i32) -> i32 {
    let half = n / 2;
    if sum >= 0 {
        (sum + half) / n
    } else {
        (sum - half) / n
    }
}

/// The average of the values `(q - z)` of a window, as an int8 of the same quantization:
/// `z + round(sum(q - z) / div)`; padded positions (in `div` with `count_include_pad`) are the
/// real 0.
#[inline]
fn average(sum_minus_z: i32, div: usize, z: i32) -> i8 {
    let div = i32::try_from(div.max(1)).unwrap_or(i32::MAX);
    (rounded_div(sum_minus_z, div) + z).clamp(-128, 127) as i8
}

/// Average pooling with PyTorch's divisor rule.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn avg_pool(g: &Geom, count_include_pad: bool, z: i32, input: &[i8], output: &mut [i8]) {
    for_each_window(g, |win| {
        let rows = win.rows_of(g, input);
        let sum = rows
            .flatten()
            .fold(0i32, |s, &v| s.wrapping_add(i32::from(v) - z));
        let div = if count_include_pad {
            win.padded_size
        } else {
            win.inside()
        };
        output[win.out] = average(sum, div, z);
    });
}

/// Adaptive average pooling to `oh x ow` (PyTorch's bins).
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_avg_pool(g: &Geom, z: i32, input: &[i8], output: &mut [i8]) {
    for c in 0..g.c {
        for oy in 0..g.oh {
            let y0 = oy * g.h / g.oh;
            let y1 = ((oy + 1) * g.h).div_ceil(g.oh);
            for ox in 0..g.ow {
                let x0 = ox * g.w / g.ow;
                let x1 = ((ox + 1) * g.w).div_ceil(g.ow);
                let mut sum = 0i32;
                for y in y0..y1 {
                    for &v in &input[(c * g.h + y) * g.w + x0..(c * g.h + y) * g.w + x1] {
                        sum = sum.wrapping_add(i32::from(v) - z);
                    }
                }
                output[(c * g.oh + oy) * g.ow + ox] = average(sum, (y1 - y0) * (x1 - x0), z);
            }
        }
    }
}
