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
    // The outputs a SIMD path computed whole, if any; the portable loop does the others.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let mut o0 = x86::linear(rows, in_f, out_f, input, output, weight, bias);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
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

/// The SIMD loops for x86-64: SSE2 (4 outputs a vector) and AVX2 (8), chosen at run time
/// ([`crate::kernels::simd`]). A vector holds neighbouring outputs, each element an
/// accumulator that starts from the bias and adds `w[o][i] * x[i]` (rounded, then added: no
/// fused multiply-add) in increasing `i`, as the portable loop does, so both give the same
/// bits. The weight rows are read in place, a square of `N` rows × `N` inputs at a time
/// (AVX2 widens fp16 with F16C, exactly), transposed in registers into `N` vectors of one
/// input's weights; two groups of `N` outputs go side by side, so that two accumulators'
/// additions overlap. The last `in_f % N` inputs are read one by one, and the last
/// `out_f % N` outputs are left to the portable loop.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod x86 {
    use crate::kernels::simd::x86::{Avx2, F32s, Sse2};
    use crate::kernels::simd::{active, Level};
    use crate::weights::{f16_to_f32, Matrix, Vector};
    use core::arch::x86_64::{__m128, __m256, _mm256_loadu_ps, _mm_loadu_ps};
    use nnblob_format::WeightDtype;

    /// What the loops read and write, checked by [`linear`].
    #[derive(Clone, Copy)]
    struct Problem<'a> {
        rows: usize,
        in_f: usize,
        out_f: usize,
        x: *const f32,
        y: *mut f32,
        /// The weight bytes, `out_f * in_f` elements of `dtype`.
        w: *const u8,
        dtype: WeightDtype,
        bias: Option<Vector<'a>>,
    }

    impl Problem<'_> {
        /// Weight `(o, i)`.
        ///
        /// # Safety
        /// `o < out_f`, `i < in_f`.
        #[inline(always)]
        unsafe fn weight(&self, o: usize, i: usize) -> f32 {
            let at = o * self.in_f + i;
            // SAFETY: the contract; `linear` checked the bytes of `out_f * in_f` weights.
            unsafe {
                match self.dtype {
                    WeightDtype::F16 => {
                        let p = self.w.add(2 * at);
                        f16_to_f32(u16::from_le_bytes([*p, *p.add(1)]))
                    }
                    WeightDtype::F32 => {
                        let p = self.w.add(4 * at);
                        f32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
                    }
                }
            }
        }
    }

    /// A width's way of reading a square of weights: `N` rows from `o0`, inputs `i0..i0 + N`,
    /// as `N` vectors, vector `k` holding the rows' weights of input `i0 + k`.
    trait Columns: F32s {
        type Square: Copy + AsRef<[Self::V]>;
        /// # Safety
        /// `o0 + N <= out_f`, `i0 + N <= in_f`.
        unsafe fn columns(self, p: &Problem<'_>, o0: usize, i0: usize) -> Self::Square;
    }

    impl Columns for Sse2 {
        type Square = [__m128; 4];
        #[inline(always)]
        unsafe fn columns(self, p: &Problem<'_>, o0: usize, i0: usize) -> [__m128; 4] {
            // SAFETY: the contract: the square lies in the weights.
            unsafe {
                match p.dtype {
                    WeightDtype::F32 => self.transpose(core::array::from_fn(|r| {
                        _mm_loadu_ps(p.w.add(4 * ((o0 + r) * p.in_f + i0)).cast())
                    })),
                    // No fp16 conversion in SSE2: the portable decoder, element by element.
                    WeightDtype::F16 => core::array::from_fn(|k| {
                        let w = core::array::from_fn(|r| match r < 4 {
                            true => p.weight(o0 + r, i0 + k),
                            false => 0.0,
                        });
                        self.set(w)
                    }),
                }
            }
        }
    }

    impl Columns for Avx2 {
        type Square = [__m256; 8];
        #[inline(always)]
        unsafe fn columns(self, p: &Problem<'_>, o0: usize, i0: usize) -> [__m256; 8] {
            // SAFETY: the contract: the square lies in the weights; AVX2 and F16C run.
            unsafe {
                self.transpose(core::array::from_fn(|r| {
                    let at = (o0 + r) * p.in_f + i0;
                    match p.dtype {
                        WeightDtype::F32 => _mm256_loadu_ps(p.w.add(4 * at).cast()),
                        WeightDtype::F16 => self.load_f16(p.w.add(2 * at)),
                    }
                }))
            }
        }
    }

    /// Outputs `o0..o0 + G * N` of input row `m`, from the bias over every input.
    ///
    /// # Safety
    /// `m < rows`, `o0 + G * N <= out_f`; [`linear`]'s checks.
    #[inline(always)]
    unsafe fn block<V: Columns, const G: usize>(v: V, p: &Problem<'_>, m: usize, o0: usize) {
        let n = V::N;
        let mut acc: [V::V; G] = core::array::from_fn(|g| {
            let b = core::array::from_fn(|j| match (j < n, p.bias) {
                (true, Some(b)) => b.get(o0 + g * n + j),
                _ => 0.0,
            });
            v.set(b)
        });
        // SAFETY: the contract: every square and column read lies in the weights, every
        // input in row `m`, every output in row `m`.
        unsafe {
            let x = p.x.add(m * p.in_f);
            let mut i0 = 0;
            while i0 + n <= p.in_f {
                for (g, a) in acc.iter_mut().enumerate() {
                    let cols = v.columns(p, o0 + g * n, i0);
                    for (k, &c) in cols.as_ref().iter().enumerate() {
                        *a = v.add(*a, v.mul(c, v.splat(*x.add(i0 + k))));
                    }
                }
                i0 += n;
            }
            for i in i0..p.in_f {
                let xi = v.splat(*x.add(i));
                for (g, a) in acc.iter_mut().enumerate() {
                    let col = core::array::from_fn(|j| match j < n {
                        true => p.weight(o0 + g * n + j, i),
                        false => 0.0,
                    });
                    *a = v.add(*a, v.mul(v.set(col), xi));
                }
            }
            let y = p.y.add(m * p.out_f + o0);
            for (g, &a) in acc.iter().enumerate() {
                v.store(y.add(g * n), a);
            }
        }
    }

    /// Every input row, in blocks of 2 groups of `N` outputs, then one group; returns the
    /// outputs done.
    ///
    /// # Safety
    /// [`linear`]'s checks.
    #[inline(always)]
    unsafe fn all<V: Columns>(v: V, p: &Problem<'_>) -> usize {
        let n = V::N;
        let mut o0 = 0;
        // SAFETY: every block lies below `out_f`.
        unsafe {
            while o0 + 2 * n <= p.out_f {
                for m in 0..p.rows {
                    block::<V, 2>(v, p, m, o0);
                }
                o0 += 2 * n;
            }
            if o0 + n <= p.out_f {
                for m in 0..p.rows {
                    block::<V, 1>(v, p, m, o0);
                }
                o0 += n;
            }
        }
        o0
    }

    /// [`all`] with AVX2's registers (VEX-encoded throughout).
    ///
    /// # Safety
    /// [`linear`]'s checks; AVX2 and F16C run (an [`Avx2`] exists).
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn all_avx2(v: Avx2, p: &Problem<'_>) -> usize {
        // SAFETY: the contract.
        unsafe { all(v, p) }
    }

    /// [`super::linear`]'s outputs `0..k` for every input row at level SSE2 or AVX2, `k`
    /// returned (0 at other levels, or if a slice is shorter than the problem).
    pub(super) fn linear(
        rows: usize,
        in_f: usize,
        out_f: usize,
        input: &[f32],
        output: &mut [f32],
        weight: Matrix<'_>,
        bias: Option<Vector<'_>>,
    ) -> usize {
        // The checks the loops' reads and writes rely on: every input, output and weight
        // inside its slice; at least one input (a square of weights is read whole).
        let fits = |a: usize, b: usize, len: usize| a.checked_mul(b).is_some_and(|n| n <= len);
        let weights = out_f.checked_mul(weight.dtype.size());
        if active() < Level::Sse2
            || in_f == 0
            || !fits(rows, in_f, input.len())
            || !fits(rows, out_f, output.len())
            || !weights.is_some_and(|w| fits(w, in_f, weight.bytes.len()))
            || bias.is_some_and(|b| b.len() < out_f)
        {
            return 0;
        }
        let p = Problem {
            rows,
            in_f,
            out_f,
            x: input.as_ptr(),
            y: output.as_mut_ptr(),
            w: weight.bytes.as_ptr(),
            dtype: weight.dtype,
            bias,
        };
        match Avx2::new() {
            // SAFETY: the checks above; AVX2 and F16C run (`avx` exists).
            Some(avx) => unsafe { all_avx2(avx, &p) },
            // SAFETY: the checks above.
            None => unsafe { all(Sse2::new(), &p) },
        }
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
