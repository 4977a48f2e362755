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
pub(crate) mod linear;
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
    let word = |k: usize| {
        let at = c * QCHANNEL_LEN + 4 * k;
        match records.get(at..at + 4) {
            Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),
            _ => 0,
        }
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
    let y = requant.apply(acc).saturating_add(zero_point);
    y.clamp(i32::from(clamp[0]), i32::from(clamp[1])) as i8
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

    /// The portable kernel's output for `c`.
    pub fn portable(c: &Case) -> Vec<i8> {
        let mut out = vec![0; c.g.c_out * c.g.oh * c.g.ow];
        super::conv::portable(&c.g, &c.input, &mut out, &c.weight, &c.records, c.ends);
        out
    }
}
