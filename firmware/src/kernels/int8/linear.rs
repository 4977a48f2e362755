//! int8 fully connected layer. In: `rows` vectors of `fi` int8, weights `[fo][fi]` int8,
//! per-output records. Out: `rows` vectors of `fo` int8.
//!
//! On Arm cores with the DSP extension (the engine's `eabihf` bare-metal targets) an `SMLAD`
//! loop ([`dsp`]) runs instead of the portable one: an input row's `x - x_zero_point` widened
//! once to 16-bit values on the stack, two output rows at a time summing their weights against
//! them, four weights widened by two `SXTB16` (bytes 0 and 2, then 1 and 3: which is the order
//! the widened inputs keep). Same bits: the 16-bit products are exact, `SMLAD` accumulates
//! modulo 2^32 like `wrapping_add`, and integer sums do not depend on their order.

use super::{channel, finish, Ends};

/// `y[r][o] = finish(bias[o] + sum_i (x[r][i] - zx) * w[o][i])`.
pub(crate) fn linear(
    dims: (usize, usize, usize),
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    if dsp::linear(dims, input, output, weight, records, ends) {
        return;
    }
    portable(dims, input, output, weight, records, ends);
}

/// The portable loop, `i` increasing.
#[allow(clippy::indexing_slicing)] // lengths validated at load time
pub(crate) fn portable(
    (rows, fi, fo): (usize, usize, usize),
    input: &[i8],
    output: &mut [i8],
    weight: &[i8],
    records: &[u8],
    ends: Ends,
) {
    let Ends { zx, zy, clamp } = ends;
    for r in 0..rows {
        let x = &input[r * fi..(r + 1) * fi];
        for o in 0..fo {
            let ch = channel(records, o);
            let w = &weight[o * fi..(o + 1) * fi];
            let mut acc = ch.bias;
            for (&xv, &wv) in x.iter().zip(w) {
                acc = acc.wrapping_add((i32::from(xv) - zx).wrapping_mul(i32::from(wv)));
            }
            output[r * fo + o] = finish(acc, ch.requant, zy, clamp);
        }
    }
}

/// The `SMLAD` loop.
#[cfg(any(
    test,
    all(target_arch = "arm", target_abi = "eabihf", target_os = "none")
))]
mod dsp {
    use super::super::ops::pack;
    use super::super::{channel, finish, Ends};
    use nnblob_format::meta::QCHANNEL_LEN;

    /// Inputs of a row the loop takes at most (their widened copy: 2 KiB of stack).
    pub(super) const MAX_IN: usize = 1024;

    /// The layer, or `false` (nothing written) for rows of fewer than 8 or more than
    /// [`MAX_IN`] inputs or slices shorter than the dimensions say.
    #[allow(clippy::indexing_slicing)] // lengths checked on entry
    pub(crate) fn linear(
        (rows, fi, fo): (usize, usize, usize),
        input: &[i8],
        output: &mut [i8],
        weight: &[i8],
        records: &[u8],
        ends: Ends,
    ) -> bool {
        if !(8..=MAX_IN).contains(&fi)
            || input.len() < rows * fi
            || output.len() < rows * fo
            || weight.len() < fo * fi
            || records.len() < fo * QCHANNEL_LEN
        {
            return false;
        }
        let Ends { zx, zy, clamp } = ends;
        // The loop's inputs: groups of 8, the rest one by one.
        let body = fi / 8 * 8;
        let mut xs = [0u32; MAX_IN / 2];
        for r in 0..rows {
            let x = &input[r * fi..(r + 1) * fi];
            // Inputs 4g..4g + 4 as words `(x0, x2)`, `(x1, x3)`: `SXTB16`'s order.
            for (d, q) in xs.chunks_exact_mut(2).zip(x[..body].chunks_exact(4)) {
                let v = |i: usize| i32::from(q[i]) - zx;
                d[0] = pack(v(0), v(2));
                d[1] = pack(v(1), v(3));
            }
            let xw = &xs[..body / 2];
            let mut o = 0;
            while o < fo {
                // A pair of outputs, or the last one twice (computed and written twice).
                let o1 = (o + 1).min(fo - 1);
                let (c0, c1) = (channel(records, o), channel(records, o1));
                let (w0, w1) = (
                    &weight[o * fi..(o + 1) * fi],
                    &weight[o1 * fi..(o1 + 1) * fi],
                );
                let (mut a0, mut a1) = dot2((c0.bias, c1.bias), (&w0[..body], &w1[..body]), xw);
                let rest = x[body..].iter().zip(&w0[body..]).zip(&w1[body..]);
                for ((&xv, &u), &v) in rest {
                    let xv = i32::from(xv) - zx;
                    a0 = a0.wrapping_add(xv.wrapping_mul(i32::from(u)));
                    a1 = a1.wrapping_add(xv.wrapping_mul(i32::from(v)));
                }
                output[r * fo + o] = finish(a0, c0.requant, zy, clamp);
                output[r * fo + o1] = finish(a1, c1.requant, zy, clamp);
                o += 2;
            }
        }
        true
    }

    /// The accumulators `a` plus the sums of weight rows `w.0` and `w.1` against the widened
    /// inputs `x` (two words per four inputs, `w.0.len()` inputs, a multiple of 8).
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    #[allow(clippy::indexing_slicing)] // lengths checked on entry
    fn dot2(a: (i32, i32), w: (&[i8], &[i8]), x: &[u32]) -> (i32, i32) {
        use super::super::ops::{smlad, sxtb16, sxtb16_ror8};
        let n = w.0.len();
        if w.1.len() != n || x.len() != n / 2 || n % 8 != 0 {
            return a;
        }
        let word = |q: &[i8]| u32::from_le_bytes([q[0], q[1], q[2], q[3]].map(|b| b as u8));
        let (mut a0, mut a1) = a;
        for ((u, v), x) in
            w.0.chunks_exact(4)
                .zip(w.1.chunks_exact(4))
                .zip(x.chunks_exact(2))
        {
            let (u, v) = (word(u), word(v));
            a0 = smlad(sxtb16(u), x[0], a0);
            a0 = smlad(sxtb16_ror8(u), x[1], a0);
            a1 = smlad(sxtb16(v), x[0], a1);
            a1 = smlad(sxtb16_ror8(v), x[1], a1);
        }
        (a0, a1)
    }

    /// The same in assembly: per 16 MACs four weight words (unaligned loads, one access each
    /// on the M4 and M7), two pairs of input words, eight `SXTB16`, eight `SMLAD`.
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    #[allow(unsafe_code)]
    fn dot2(a: (i32, i32), w: (&[i8], &[i8]), x: &[u32]) -> (i32, i32) {
        let n = w.0.len();
        // The reads below, restated so that no change of a caller can make them unsound:
        // `n` weights of each row, `n / 2` input words.
        if n == 0 || w.1.len() != n || x.len() != n / 2 || n % 8 != 0 {
            return a;
        }
        let (mut a0, mut a1) = a;
        // Four inputs: one weight word of each row, the inputs' two words in `x0`, `x1`.
        macro_rules! four {
            () => {
                concat!(
                    "ldrd {x0}, {x1}, [{px}], #8\n",
                    "ldr {w}, [{p0}], #4\n",
                    "sxtb16 {t}, {w}\n",
                    "sxtb16 {w}, {w}, ror #8\n",
                    "smlad {a0}, {t}, {x0}, {a0}\n",
                    "smlad {a0}, {w}, {x1}, {a0}\n",
                    "ldr {w}, [{p1}], #4\n",
                    "sxtb16 {t}, {w}\n",
                    "sxtb16 {w}, {w}, ror #8\n",
                    "smlad {a1}, {t}, {x0}, {a1}\n",
                    "smlad {a1}, {w}, {x1}, {a1}\n",
                )
            };
        }
        // SAFETY: the checks above: `n / 8` iterations read 8 weights of each row and 4 input
        // words (word aligned, a `[u32]`).
        unsafe {
            core::arch::asm!(
                "2:",
                four!(),
                four!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                p0 = inout(reg) w.0.as_ptr() => _,
                p1 = inout(reg) w.1.as_ptr() => _,
                px = inout(reg) x.as_ptr() => _,
                n = inout(reg) n / 8 => _,
                w = out(reg) _,
                t = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                options(nostack, readonly),
            );
        }
        (a0, a1)
    }

    #[cfg(test)]
    #[allow(clippy::indexing_slicing, clippy::unwrap_used)]
    mod tests {
        extern crate std;
        use super::super::super::cases::Rng;
        use super::super::super::Ends;
        use std::vec;
        use std::vec::Vec;

        /// Rows of 8 to [`super::MAX_IN`] inputs (tails of 0 to 7), odd output counts, several
        /// input rows, every zero point and clamp, rescalings of both kinds, extreme values:
        /// the same bits as the portable loop; other sizes refused.
        #[test]
        fn smlad_loop_equals_the_portable_loop() {
            let mut rng = Rng(0x0dd_ba11_cafe);
            for i in 0..300 {
                let fi = match i % 5 {
                    0 => super::MAX_IN,
                    1 => rng.int(8, 16) as usize,
                    _ => rng.int(8, 700) as usize,
                };
                let (rows, fo) = (rng.int(1, 3) as usize, rng.int(1, 9) as usize);
                let mut records = Vec::new();
                for _ in 0..fo {
                    let bias = rng.next() as i32 >> rng.int(0, 31);
                    let multiplier = rng.int(1 << 30, (1 << 31) - 1) as i32;
                    let shift = rng.int(8, 50) as i32;
                    for v in [bias, multiplier, shift] {
                        records.extend_from_slice(&v.to_le_bytes());
                    }
                }
                let (mut input, mut weight) = (rng.bytes(rows * fi), rng.bytes(fo * fi));
                let mut zx = rng.int(-128, 127) as i32;
                if i % 7 == 0 {
                    (zx, input, weight) = (-128, vec![127; rows * fi], vec![-128; fo * fi]);
                }
                let lo = rng.int(-128, 0) as i8;
                let ends = Ends {
                    zx,
                    zy: rng.int(-128, 127) as i32,
                    clamp: [lo, rng.int(i64::from(lo), 127) as i8],
                };
                let dims = (rows, fi, fo);
                let mut want = vec![0; rows * fo];
                super::super::portable(dims, &input, &mut want, &weight, &records, ends);
                let mut got = vec![0; rows * fo];
                assert!(super::linear(
                    dims, &input, &mut got, &weight, &records, ends
                ));
                assert_eq!(got, want, "{dims:?}");
            }
            let (x, w, r) = (vec![0; 2000], vec![0; 2000], vec![0; 24]);
            let mut y = vec![0; 2];
            let ends = Ends {
                zx: 0,
                zy: 0,
                clamp: [-128, 127],
            };
            for fi in [7, super::MAX_IN + 1] {
                assert!(!super::linear((1, fi, 1), &x, &mut y, &w, &r, ends));
            }
        }
    }
}
