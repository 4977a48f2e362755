//! int8 pooling, the input's quantization kept by the output (the converter gives both the
//! same scale and zero point): max and adaptive max, average and adaptive average with a rounded
//! integer division.

use crate::kernels::pool::{for_each_adaptive_bin, for_each_window, Geom, Window};

/// The maximum of a window; one that is only padding gives -128 (PyTorch's -inf, saturated).
fn maximum(g: &Geom, win: &Window, input: &[i8]) -> i8 {
    let rows = win.rows_of(g, input);
    rows.flatten().fold(i8::MIN, |m, &v| m.max(v))
}

/// Max pooling.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn max_pool(g: &Geom, input: &[i8], output: &mut [i8]) {
    for_each_window(g, |win| output[win.out] = maximum(g, &win, input));
}

/// Adaptive max pooling to `oh x ow` (PyTorch's bins).
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_max_pool(g: &Geom, input: &[i8], output: &mut [i8]) {
    for_each_adaptive_bin(g, |win| output[win.out] = maximum(g, &win, input));
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

/// The average of a window as an int8 of the same quantization:
/// `z + round(sum(q - z) / divisor)`; padded positions (in the divisor with
/// `count_include_pad`) are the real 0.
fn average(g: &Geom, win: &Window, count_include_pad: bool, z: i32, input: &[i8]) -> i8 {
    let rows = win.rows_of(g, input);
    let sum = rows
        .flatten()
        .fold(0i32, |s, &v| s.wrapping_add(i32::from(v) - z));
    let div = i32::try_from(win.divisor(count_include_pad).max(1)).unwrap_or(i32::MAX);
    (rounded_div(sum, div) + z).clamp(-128, 127) as i8
}

/// Average pooling with PyTorch's divisor rule.
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn avg_pool(g: &Geom, count_include_pad: bool, z: i32, input: &[i8], output: &mut [i8]) {
    for_each_window(g, |win| {
        output[win.out] = average(g, &win, count_include_pad, z, input)
    });
}

/// Adaptive average pooling to `oh x ow` (PyTorch's bins).
#[allow(clippy::indexing_slicing)] // geometry validated
pub(crate) fn adaptive_avg_pool(g: &Geom, z: i32, input: &[i8], output: &mut [i8]) {
    for_each_adaptive_bin(g, |win| output[win.out] = average(g, &win, false, z, input));
}
