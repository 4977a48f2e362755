//! Fully connected layer. In: `rows` input rows of `in_f` values, the weight matrix
//! `[out_f][in_f]` (f16 or f32, read in place), the bias. Out: `rows` output rows of `out_f`
//! values, `y[m][o] = bias[o] (or 0) + w[o][0] * x[m][0] + w[o][1] * x[m][1] + ...`, each
//! product rounded, then added, in increasing input index.
//!
//! Outputs go [`LANES`] at a time: four weight rows side by side, so that each input value
//! loaded feeds four accumulators. On Arm cores with a single-precision FPU and the hard-float
//! ABI an assembly loop ([`arm`]) reads the four rows in place, 8 inputs a step (fp16 weights
//! widened by `VCVTB`/`VCVTT.F32.F16`). What it leaves — every input on other targets, the
//! last `in_f % 8` inputs, and fp16 rows that do not start on a 4-byte boundary (odd `in_f`) —
//! runs portably: the four rows' weights decoded a tile at a time into a stack buffer, then
//! used for every input row. A block's missing lanes (the last block of `out_f % 4`
//! outputs) compute sums nobody stores.

use crate::weights::{Matrix, Vector};

/// Outputs per block.
const LANES: usize = 4;
/// Inputs per decoded tile.
const TILE: usize = 32;

/// `input`: `rows * in_f`, `output`: `rows * out_f`, `weight`: `out_f * in_f` elements (the
/// validated lengths; shorter slices leave outputs unwritten).
pub(crate) fn linear(
    rows: usize,
    in_f: usize,
    out_f: usize,
    input: &[f32],
    output: &mut [f32],
    weight: Matrix<'_>,
    bias: Option<Vector<'_>>,
) {
    // Decoded weights of a tile: `wbuf[lane][i]`.
    let mut wbuf = [[0.0f32; TILE]; LANES];
    let mut o0 = 0;
    while o0 < out_f {
        let lanes = LANES.min(out_f - o0);
        // Weight rows of the block; a missing lane reads the last row again.
        let wrows: [usize; LANES] = core::array::from_fn(|l| o0 + l.min(lanes - 1));
        let init = wrows.map(|row| bias.map_or(0.0, |b| b.get(row)));
        // Every input row from the bias through the inputs the fast loop covers; the
        // partial sums wait in the output.
        let mut done = 0;
        for m in 0..rows {
            let mut acc = init;
            let x = input.get(m * in_f..(m + 1) * in_f).unwrap_or_default();
            done = fast(&mut acc, weight, o0, lanes, in_f, x);
            store(&acc, output, m * out_f + o0, lanes);
        }
        // The inputs left, a tile at a time, decoded once for every input row.
        let mut i0 = done;
        while i0 < in_f {
            let n = TILE.min(in_f - i0);
            for (w, &row) in wbuf.iter_mut().zip(&wrows) {
                weight.decode(row * in_f + i0, w.get_mut(..n).unwrap_or_default());
            }
            let [w0, w1, w2, w3] = &wbuf;
            for m in 0..rows {
                let at = m * out_f + o0;
                let mut acc = init;
                for (a, y) in acc
                    .iter_mut()
                    .zip(output.get(at..at + lanes).unwrap_or_default())
                {
                    *a = *y;
                }
                let x = input
                    .get(m * in_f + i0..m * in_f + i0 + n)
                    .unwrap_or_default();
                for ((((&x, &a), &b), &c), &d) in x.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
                    acc[0] += a * x;
                    acc[1] += b * x;
                    acc[2] += c * x;
                    acc[3] += d * x;
                }
                store(&acc, output, at, lanes);
            }
            i0 += n;
        }
        o0 += lanes;
    }
}

/// Stores the first `lanes` sums to `out[at..]`.
fn store(acc: &[f32; LANES], out: &mut [f32], at: usize, lanes: usize) {
    for (y, &a) in out.iter_mut().skip(at).take(lanes).zip(acc) {
        *y = a;
    }
}

/// Adds the first inputs of `x` to the accumulators of weight rows `first..first + lanes`
/// (the last row again for the missing lanes) where a fast loop exists, and returns how many
/// it added: a multiple of 8, the same for every block and input row.
#[inline]
fn fast(
    acc: &mut [f32; LANES],
    weight: Matrix<'_>,
    first: usize,
    lanes: usize,
    in_f: usize,
    x: &[f32],
) -> usize {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
    return arm::dot4(acc, weight, first, lanes, in_f, x);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf", target_os = "none")))]
    {
        let _ = (acc, weight, first, lanes, in_f, x);
        0
    }
}

/// The assembly loops for Arm's single-precision FPU with half-precision conversion (every
/// Cortex-M FPU: FPv4-SP, FPv5), hard-float ABI.
///
/// `VMLA.F32` rounds the product before adding it (it is not a fused multiply-add), exactly
/// like `acc += w * x`, and each accumulator takes its inputs in order, so the loops give
/// the portable loop's bits. `VCVTB`/`VCVTT.F32.F16` widen a binary16 exactly; with the
/// FPSCR's reset values (IEEE half precision, AHP = 0; NaNs propagated, DN = 0) infinities
/// and NaNs widen as `weights::f16_to_f32` does (NaNs quieted, payload kept), so weights need
/// not be finite.
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    use super::LANES;
    use crate::weights::Matrix;
    use nnblob_format::WeightDtype;

    /// Inputs per step of the loops.
    const STEP: usize = 8;

    /// The 16 multiply-accumulates of two rows over one step: the rows' 8 weights in
    /// s16-s23 and s24-s31, the 8 inputs in s0-s7, the rows' accumulators `$a` and `$b`.
    macro_rules! mla_2x8 {
        ($a:literal, $b:literal) => {
            concat!(
                "vmla.f32 ",
                $a,
                ", s16, s0\n vmla.f32 ",
                $b,
                ", s24, s0\n",
                "vmla.f32 ",
                $a,
                ", s17, s1\n vmla.f32 ",
                $b,
                ", s25, s1\n",
                "vmla.f32 ",
                $a,
                ", s18, s2\n vmla.f32 ",
                $b,
                ", s26, s2\n",
                "vmla.f32 ",
                $a,
                ", s19, s3\n vmla.f32 ",
                $b,
                ", s27, s3\n",
                "vmla.f32 ",
                $a,
                ", s20, s4\n vmla.f32 ",
                $b,
                ", s28, s4\n",
                "vmla.f32 ",
                $a,
                ", s21, s5\n vmla.f32 ",
                $b,
                ", s29, s5\n",
                "vmla.f32 ",
                $a,
                ", s22, s6\n vmla.f32 ",
                $b,
                ", s30, s6\n",
                "vmla.f32 ",
                $a,
                ", s23, s7\n vmla.f32 ",
                $b,
                ", s31, s7\n",
            )
        };
    }

    /// Widens the 8 binary16 values packed in s16-s19 and s24-s27 (two per word, the first
    /// in the low half) to s16-s23 and s24-s31, from the top so that no word is overwritten
    /// before it is read.
    macro_rules! widen_2x8 {
        () => {
            "vcvtt.f32.f16 s23, s19\n vcvtb.f32.f16 s22, s19\n vcvtt.f32.f16 s21, s18\n vcvtb.f32.f16 s20, s18\n\
             vcvtt.f32.f16 s19, s17\n vcvtb.f32.f16 s18, s17\n vcvtt.f32.f16 s17, s16\n vcvtb.f32.f16 s16, s16\n\
             vcvtt.f32.f16 s31, s27\n vcvtb.f32.f16 s30, s27\n vcvtt.f32.f16 s29, s26\n vcvtb.f32.f16 s28, s26\n\
             vcvtt.f32.f16 s27, s25\n vcvtb.f32.f16 s26, s25\n vcvtt.f32.f16 s25, s24\n vcvtb.f32.f16 s24, s24\n"
        };
    }

    /// One loop over the steps: the register lists `$a` and `$b` receive a step of two
    /// rows (from s16 and s24 on); `$widen` makes them f32s.
    macro_rules! rows_loop {
        ($acc:expr, $x:expr, $p:expr, $steps:expr, $a:literal, $b:literal, $widen:expr) => {
            // SAFETY: see `dot4`.
            unsafe {
                core::arch::asm!(
                    "vldmia {acc}, {{s8-s11}}",
                    "2:",
                    "vldmia {x}!, {{s0-s7}}",
                    concat!("vldmia {p0}!, ", $a, "\n vldmia {p1}!, ", $b),
                    $widen,
                    mla_2x8!("s8", "s9"),
                    concat!("vldmia {p2}!, ", $a, "\n vldmia {p3}!, ", $b),
                    $widen,
                    mla_2x8!("s10", "s11"),
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    "vstmia {acc}, {{s8-s11}}",
                    acc = in(reg) $acc.as_mut_ptr(),
                    x = inout(reg) $x => _,
                    p0 = inout(reg) $p.0 => _,
                    p1 = inout(reg) $p.1 => _,
                    p2 = inout(reg) $p.2 => _,
                    p3 = inout(reg) $p.3 => _,
                    n = inout(reg) $steps => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                    out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                    out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                    out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                    out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                    out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                    options(nostack),
                )
            }
        };
    }

    /// [`super::fast`]: adds inputs `0..k` of `x`, `k` the largest multiple of [`STEP`] not
    /// above `in_f` (0 when rows do not start on 4-byte boundaries: fp16 with odd `in_f`).
    pub(super) fn dot4(
        acc: &mut [f32; LANES],
        weight: Matrix<'_>,
        first: usize,
        lanes: usize,
        in_f: usize,
        x: &[f32],
    ) -> usize {
        let steps = in_f.min(x.len()) / STEP;
        let size = weight.dtype.size();
        let last = lanes.clamp(1, LANES) - 1;
        // The reads below rely on these checks: the block's rows hold the bytes the loop
        // reads (each row `stride` bytes after the previous one, a step of a row `STEP * size`
        // bytes) and start on the 4-byte boundary that `VLDM` needs; `x` holds the inputs.
        let stride = in_f.saturating_mul(size);
        let reach = last
            .checked_mul(stride)
            .and_then(|r| r.checked_add(steps * STEP * size));
        let start = first.checked_mul(stride);
        let Some(rows) = start.and_then(|s| weight.bytes.get(s..)) else {
            return 0;
        };
        let aligned = (rows.as_ptr() as usize | stride) % 4 == 0;
        if steps == 0 || !aligned || reach.is_none_or(|r| r > rows.len()) {
            return 0;
        }
        let row = |l: usize| rows.as_ptr().wrapping_add(l.min(last) * stride);
        let (x, p) = (x.as_ptr(), (row(0), row(1), row(2), row(3)));
        match weight.dtype {
            WeightDtype::F16 => {
                rows_loop!(acc, x, p, steps, "{{s16-s19}}", "{{s24-s27}}", widen_2x8!())
            }
            WeightDtype::F32 => rows_loop!(acc, x, p, steps, "{{s16-s23}}", "{{s24-s31}}", ""),
        }
        steps * STEP
    }

    const _: () = assert!(LANES == 4 && STEP == 8, "the assembly holds 4 rows of 8");
}
