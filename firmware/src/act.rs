//! Activation functions, applied in place. Transcendentals come from `libm` (pure Rust,
//! the same bits on every target).

use crate::weights::Vector;
use nnblob_format::meta::Activation;

/// The activation with its parameters resolved.
pub(crate) type Act<'w> = Activation<Vector<'w>>;

/// Written out (not `clamp`) so that NaN passes through as in PyTorch.
#[inline]
#[allow(clippy::manual_clamp)]
fn relu6(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else if x > 6.0 {
        6.0
    } else {
        x
    }
}

/// The logistic function, as the `Sigmoid` activation and the recurrent cells' gates compute it.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

#[inline]
fn scalar(act: &Act<'_>, x: f32, slope: f32) -> f32 {
    match act {
        Activation::None => x,
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Relu6 => relu6(x),
        Activation::LeakyRelu(_) | Activation::PRelu(_) => {
            if x > 0.0 {
                x
            } else {
                x * slope
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => libm::tanhf(x),
        Activation::Silu => x / (1.0 + libm::expf(-x)),
        Activation::Hardswish => x * relu6(x + 3.0) / 6.0,
        Activation::Hardsigmoid => relu6(x + 3.0) / 6.0,
        Activation::Gelu => x * 0.5 * (1.0 + libm::erff(x * core::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            const K: f32 = 0.797_884_6; // sqrt(2 / pi)
            0.5 * x * (1.0 + libm::tanhf(K * (x + 0.044715 * x * x * x)))
        }
    }
}

/// Applies `act` in place to `data`, laid out as `[outer][channels][inner]`; the channel
/// only matters for a per-channel PReLU.
pub(crate) fn apply(act: &Act<'_>, data: &mut [f32], channels: usize, inner: usize) {
    match act {
        Activation::None => {}
        Activation::PRelu(slopes) if slopes.len() > 1 => {
            let inner = inner.max(1);
            for (i, chunk) in data.chunks_mut(inner).enumerate() {
                let s = slopes.get(i % channels.max(1));
                for x in chunk {
                    *x = scalar(act, *x, s);
                }
            }
        }
        // The common cases get a loop of their own.
        Activation::Relu => {
            for x in data {
                *x = scalar(&Activation::Relu, *x, 0.0);
            }
        }
        _ => {
            let slope = match act {
                Activation::LeakyRelu(s) => *s,
                Activation::PRelu(v) => v.get(0),
                _ => 0.0,
            };
            for x in data {
                *x = scalar(act, *x, slope);
            }
        }
    }
}
