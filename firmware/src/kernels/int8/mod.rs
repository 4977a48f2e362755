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
pub(crate) mod depthwise;
#[cfg(any(
    test,
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none")
))]
pub(crate) mod dsp;
#[cfg(any(
    test,
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none")
))]
pub(crate) mod dwdsp;
pub(crate) mod linear;
#[cfg(any(
    test,
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none")
))]
pub(crate) mod ops;
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
    record(records.get(c * QCHANNEL_LEN..).unwrap_or_default())
}

/// Reads the record at the start of `r` (zeros if shorter than `QCHANNEL_LEN` bytes).
#[inline]
pub(crate) fn record(r: &[u8]) -> Channel {
    let word = |k: usize| match r.get(4 * k..4 * k + 4) {
        Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
        _ => 0,
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
    finish_with(acc, Rescale::new(requant), zero_point, clamp)
}

/// [`finish`] with the rescaling decoded ahead.
#[inline]
pub(crate) fn finish_with(acc: i32, r: Rescale, zero_point: i32, clamp: [i8; 2]) -> i8 {
    let y = r.apply(acc).saturating_add(zero_point);
    // `max` then `min` rather than `clamp`, which would check `lo <= hi` (validation does).
    y.max(i32::from(clamp[0])).min(i32::from(clamp[1])) as i8
}

/// [`Requant::apply`], in fewer instructions on 32-bit cores for shifts of 33 and more (every
/// rescaling by less than 1/2 with a multiplier of 31 bits): then
/// `floor((p + 2^(s-1)) / 2^s) == floor((hi + 2^(s-33)) / 2^(s-32))`, where `hi` is the high
/// word of the product `p` (the low word, below 2^32, cannot carry into the quotient since
/// `2^(s-1)` is a multiple of 2^32), and the result fits 32 bits (`|p| < 2^62`), so there is
/// nothing to saturate. One 32x32->64 multiplication and two 32-bit operations instead of
/// 64-bit ones. The other rescalings take `apply` itself.
#[inline]
pub(crate) fn rescale(acc: i32, requant: Requant) -> i32 {
    Rescale::new(requant).apply(acc)
}

/// A rescaling decoded once for many accumulators ([`rescale`]'s choice made ahead): for
/// shifts of 33 and more, `round = 2^(s-33)` and `shift = s - 32`; otherwise `round = 0` and
/// the rescaling itself.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rescale {
    multiplier: i32,
    shift: i32,
    round: i32,
}

impl Rescale {
    #[inline]
    pub(crate) fn new(requant: Requant) -> Self {
        let s = (requant.shift as u32).clamp(1, 62);
        if s >= 33 && requant.multiplier >= 0 {
            Rescale {
                multiplier: requant.multiplier,
                shift: (s - 32) as i32,
                round: 1 << (s - 33),
            }
        } else {
            Rescale {
                multiplier: requant.multiplier,
                shift: requant.shift,
                round: 0,
            }
        }
    }

    #[inline]
    pub(crate) fn apply(self, acc: i32) -> i32 {
        if self.round != 0 {
            let hi = ((i64::from(acc) * i64::from(self.multiplier)) >> 32) as i32;
            (hi + self.round) >> (self.shift as u32 & 31)
        } else {
            Requant {
                multiplier: self.multiplier,
                shift: self.shift,
            }
            .apply(acc)
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::cases::Rng;
    use super::{rescale, Requant};

    /// [`rescale`] equals [`Requant::apply`] at every shift, extreme accumulators and
    /// multipliers included.
    #[test]
    fn rescale_equals_apply() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let edges = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        let mults = [0, 1, 1 << 30, (1 << 30) + 1, i32::MAX - 1, i32::MAX];
        for shift in -2..=64 {
            for _ in 0..2000 {
                let acc = match rng.int(0, 3) {
                    0 => edges[rng.int(0, 6) as usize],
                    1 => rng.int(-70_000, 70_000) as i32,
                    _ => rng.next() as i32,
                };
                let multiplier = match rng.int(0, 2) {
                    0 => mults[rng.int(0, 5) as usize],
                    _ => rng.int(0, i64::from(i32::MAX)) as i32,
                };
                let r = Requant { multiplier, shift };
                assert_eq!(rescale(acc, r), r.apply(acc), "{acc} {r:?}");
            }
        }
    }
}

/// Seeded geometries and values for the int8 kernels' unit tests, which compare the depthwise
/// and DSP paths with the portable loop (itself checked against the int8 reference evaluator
/// by the host tool's tests).
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
pub(crate) mod cases {
    extern crate std;
    use super::Ends;
    use crate::kernels::conv::Geom;
    use std::vec;
    use std::vec::Vec;

    /// A xorshift generator.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// In `lo..=hi`.
        pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % (hi - lo + 1) as u64) as i64
        }
        pub fn bytes(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.next() as u8 as i8).collect()
        }
    }

    /// A case: geometry, input, weights, records and ends.
    pub struct Case {
        pub g: Geom,
        pub input: Vec<i8>,
        pub weight: Vec<i8>,
        pub records: Vec<u8>,
        pub ends: Ends,
    }

    /// A geometry from its parameters (`k`, `s`, `d`: height then width; padding top, left,
    /// bottom, right), the output size derived as PyTorch does.
    #[allow(clippy::too_many_arguments)]
    pub fn geom(
        (c_in, h, w): (usize, usize, usize),
        c_out: usize,
        k: [usize; 2],
        s: [usize; 2],
        d: [usize; 2],
        p: [usize; 4],
        groups: usize,
    ) -> Option<Geom> {
        let out = |n: usize, pa: usize, pb: usize, k: usize, s: usize, d: usize| {
            (n + pa + pb)
                .checked_sub(d * (k - 1) + 1)
                .map(|r| r / s + 1)
        };
        Some(Geom {
            c_in,
            h,
            w,
            c_out,
            oh: out(h, p[0], p[2], k[0], s[0], d[0])?,
            ow: out(w, p[1], p[3], k[1], s[1], d[1])?,
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            dh: d[0],
            dw: d[1],
            pt: p[0],
            pl: p[1],
            groups,
        })
    }

    /// Random values for `g`: every int8 value possible (the extreme zero points included),
    /// biases anywhere in i32 (so that sums wrap), rescalings from saturating to fine.
    pub fn case(rng: &mut Rng, g: Geom) -> Case {
        let taps = g.c_in / g.groups * g.kh * g.kw;
        let mut records = Vec::new();
        for _ in 0..g.c_out {
            let bias = if rng.int(0, 3) == 0 {
                rng.next() as i32
            } else {
                rng.int(-5000, 5000) as i32
            };
            let multiplier = rng.int(1 << 30, (1 << 31) - 1) as i32;
            let shift = rng.int(8, 24) as i32;
            for v in [bias, multiplier, shift] {
                records.extend_from_slice(&v.to_le_bytes());
            }
        }
        let zx = match rng.int(0, 3) {
            0 => -128,
            1 => 127,
            _ => rng.int(-128, 127) as i32,
        };
        let lo = rng.int(-128, 0) as i8;
        Case {
            input: rng.bytes(g.c_in * g.h * g.w),
            weight: rng.bytes(g.c_out * taps),
            records,
            ends: Ends {
                zx,
                zy: rng.int(-128, 127) as i32,
                clamp: [lo, rng.int(i64::from(lo), 127) as i8],
            },
            g,
        }
    }

    /// Gives every channel of `c` a rescaling by less than 1/2 (shifts of 30 and up: the
    /// Cortex-M4F paths' `SMMLA` finish).
    pub fn small_rescalings(rng: &mut Rng, c: &mut Case) {
        for r in c.records.chunks_exact_mut(12) {
            r[8..12].copy_from_slice(&(rng.int(30, 58) as i32).to_le_bytes());
        }
    }

    /// The portable kernel's output for `c`.
    pub fn portable(c: &Case) -> Vec<i8> {
        let mut out = vec![0; c.g.c_out * c.g.oh * c.g.ow];
        super::conv::portable(&c.g, &c.input, &mut out, &c.weight, &c.records, c.ends);
        out
    }
}
