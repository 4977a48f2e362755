//! Reading weights from the weights section: matrices (f16 or f32) and f32 vectors.

use nnblob_format::meta::{ByteRef, MatrixRef, VectorRef};
use nnblob_format::WeightDtype;

/// A weight matrix: raw little-endian bytes of the blob's dtype.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'w> {
    pub bytes: &'w [u8],
    pub dtype: WeightDtype,
}

/// Exact binary16 -> binary32 without hardware fp16: normals, subnormals, signed zeros,
/// infinities, and NaNs (quieted, payload kept: the bits `half` gives).
#[inline]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let h = u32::from(bits);
    let sign = (h & 0x8000) << 16;
    let magnitude = h & 0x7fff;
    let f = if magnitude >= 0x0400 {
        // Normal, infinity or NaN: move the fields and rebias the exponent by 127 - 15, or
        // to all ones for infinities and NaNs (which are quieted).
        if magnitude < 0x7c00 {
            (magnitude << 13) + ((127 - 15) << 23)
        } else if magnitude == 0x7c00 {
            0x7f80_0000
        } else {
            0x7fc0_0000 | (magnitude << 13)
        }
    } else if magnitude != 0 {
        // Subnormal: m * 2^-24 with m < 2^10. With its top bit at position p, the f32 is
        // 2^(p - 24) * (m / 2^p): exponent field p + 103, the implicit bit shifted to bit 23
        // (adding it to an exponent field of p + 102 gives p + 103).
        let p = 31 - magnitude.leading_zeros();
        ((p + 102) << 23) + (magnitude << (23 - p))
    } else {
        0
    };
    f32::from_bits(sign | f)
}

impl<'w> Matrix<'w> {
    /// Decodes `dst.len()` elements starting at element `start` into `dst`. Missing
    /// elements (impossible after validation) are left untouched.
    #[inline]
    pub fn decode(&self, start: usize, dst: &mut [f32]) {
        let n = dst.len();
        self.decode_interleaved(start, n, dst, n, 0);
    }

    /// Decodes consecutive elements from element `start`, `lanes` at a time, into the
    /// chunks of `stride` elements of `dst` at offset `offset`: element `start + t * lanes + i`
    /// goes to `dst[t * stride + offset + i]`, for every whole chunk of `dst`. Missing
    /// elements (impossible after validation) are left untouched.
    #[allow(clippy::indexing_slicing)] // `chunks_exact` yields chunks of exactly the indexed length
    pub fn decode_interleaved(
        &self,
        start: usize,
        lanes: usize,
        dst: &mut [f32],
        stride: usize,
        offset: usize,
    ) {
        let size = self.dtype.size();
        let (stride, lanes) = (stride.max(1), lanes.max(1));
        let count = dst.len() / stride * lanes;
        let Some(src) = self.bytes.get(start * size..(start + count) * size) else {
            return;
        };
        #[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
        if self.dtype == WeightDtype::F16 && lanes == stride && offset == 0 {
            // Consecutive elements to consecutive places: the FPU converts them.
            arm::f16_to_f32_slice(src, dst);
            return;
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if self.dtype == WeightDtype::F16 && lanes == stride && offset == 0 {
            // Consecutive elements to consecutive places: F16C converts them, where it runs.
            if x86::f16_to_f32_slice(src, dst) {
                return;
            }
        }
        let rows = dst
            .chunks_exact_mut(stride)
            .zip(src.chunks_exact(lanes * size))
            .filter_map(|(d, s)| Some((d.get_mut(offset..offset + lanes)?, s)));
        match self.dtype {
            WeightDtype::F16 => {
                for (d, s) in rows {
                    for (d, c) in d.iter_mut().zip(s.chunks_exact(2)) {
                        *d = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                    }
                }
            }
            WeightDtype::F32 => {
                for (d, s) in rows {
                    for (d, c) in d.iter_mut().zip(s.chunks_exact(4)) {
                        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
            }
        }
    }
}

/// Conversion of binary16 weights with the FPU of Arm cores that have one (hard-float ABI):
/// `VCVTB`/`VCVTT.F32.F16` convert exactly, as [`f16_to_f32`] does (the same bits for every
/// value, NaNs included, with the FPSCR's reset settings: IEEE half precision, no flushing
/// to zero, no default NaN).
#[cfg(all(target_arch = "arm", target_abi = "eabihf", target_os = "none"))]
#[allow(unsafe_code)]
mod arm {
    /// `dst[i]` = the binary16 value of bytes `src[2i..2i + 2]` (little-endian), for every
    /// element of `dst` that `src` holds.
    pub(super) fn f16_to_f32_slice(src: &[u8], dst: &mut [f32]) {
        let n = dst.len().min(src.len() / 2);
        let (src, dst) = (
            src.get(..2 * n).unwrap_or_default(),
            dst.get_mut(..n).unwrap_or_default(),
        );
        // Four at a time (two words of halves), then the rest one by one.
        let quads = n / 4;
        if quads > 0 {
            // SAFETY: reads `8 * quads <= 2 * n` bytes of `src` and writes `4 * quads <= n`
            // f32s of `dst`, from their starts; `src` may be unaligned for words, so it is
            // read with LDR (which allows it on v7-M), not VLDM.
            unsafe {
                core::arch::asm!(
                    "2:",
                    "ldr {a}, [{src}], #4",
                    "ldr {b}, [{src}], #4",
                    "vmov s0, s1, {a}, {b}",
                    "vcvtb.f32.f16 s2, s0",
                    "vcvtt.f32.f16 s3, s0",
                    "vcvtb.f32.f16 s4, s1",
                    "vcvtt.f32.f16 s5, s1",
                    "vstmia {dst}!, {{s2-s5}}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    src = inout(reg) src.as_ptr() => _,
                    dst = inout(reg) dst.as_mut_ptr() => _,
                    n = inout(reg) quads => _,
                    a = out(reg) _,
                    b = out(reg) _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _, out("s4") _, out("s5") _,
                    options(nostack),
                );
            }
        }
        let (Some(src), Some(dst)) = (src.get(8 * quads..), dst.get_mut(4 * quads..)) else {
            return;
        };
        for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
            if let [lo, hi] = *c {
                *d = super::f16_to_f32(u16::from_le_bytes([lo, hi]));
            }
        }
    }
}

/// Conversion of binary16 weights with x86-64's F16C, where the CPU has it and the kernels
/// run at level AVX2 ([`crate::kernels::simd`]): `VCVTPH2PS` converts exactly, as
/// [`f16_to_f32`] does (the same bits for every value: subnormals converted exactly whatever
/// MXCSR says, NaNs quieted with their payload kept; a test compares all 65,536 values).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
mod x86 {
    use crate::kernels::simd::x86::Avx2;
    use core::arch::x86_64::_mm256_storeu_ps;

    /// `dst[i]` = the binary16 value of bytes `src[2i..2i + 2]` (little-endian), 8 at a
    /// time, the rest one by one, for every element of `dst` that `src` holds; false (nothing
    /// done) where F16C does not run.
    pub(super) fn f16_to_f32_slice(src: &[u8], dst: &mut [f32]) -> bool {
        let Some(avx) = Avx2::new() else {
            return false;
        };
        let n = dst.len().min(src.len() / 2);
        let eights = n / 8;
        // SAFETY: reads `16 * eights <= 2 * n` bytes of `src` and writes `8 * eights <= n`
        // f32s of `dst`, from their starts; F16C runs (`avx` exists).
        unsafe { convert(avx, src.as_ptr(), dst.as_mut_ptr(), eights) };
        let (Some(src), Some(dst)) = (src.get(16 * eights..2 * n), dst.get_mut(8 * eights..n))
        else {
            return true;
        };
        for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
            if let [lo, hi] = *c {
                *d = super::f16_to_f32(u16::from_le_bytes([lo, hi]));
            }
        }
        true
    }

    /// # Safety
    /// `src..src + 16 * eights` readable, `dst..dst + 8 * eights` writable; F16C runs.
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn convert(avx: Avx2, src: *const u8, dst: *mut f32, eights: usize) {
        for i in 0..eights {
            // SAFETY: the contract.
            unsafe { _mm256_storeu_ps(dst.add(8 * i), avx.load_f16(src.add(16 * i))) };
        }
    }

    /// Every binary16 value through F16C, against the portable decoder.
    #[cfg(test)]
    #[test]
    fn f16c_gives_the_portable_bits_for_all_65536_values() {
        if Avx2::new().is_none() {
            return;
        }
        // 256 values at a time (whole arrays of 65,536 would not fit a test thread's stack
        // in a debug build).
        for chunk in 0..=u8::MAX {
            let first = u16::from(chunk) << 8;
            let src: [[u8; 2]; 256] = core::array::from_fn(|i| (first + i as u16).to_le_bytes());
            let mut dst = [0.0f32; 256];
            assert!(f16_to_f32_slice(src.as_flattened(), &mut dst));
            for (i, d) in dst.iter().enumerate() {
                let bits = first + i as u16;
                let want = super::f16_to_f32(bits).to_bits();
                assert_eq!(d.to_bits(), want, "f16 bits {bits:#06x}");
            }
        }
    }
}

/// An f32 vector: raw little-endian bytes.
#[derive(Clone, Copy)]
pub(crate) struct Vector<'w>(pub &'w [u8]);

impl Vector<'_> {
    /// Element `i`, or 0 if out of range (impossible after validation).
    #[inline]
    #[allow(clippy::indexing_slicing)] // the sub-slice has exactly 4 bytes
    pub fn get(&self, i: usize) -> f32 {
        match self.0.get(i * 4..i * 4 + 4) {
            Some(c) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            None => 0.0,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
}

/// The weights section and its dtype; resolves references checked by validation.
#[derive(Clone, Copy)]
pub(crate) struct Weights<'w> {
    pub bytes: &'w [u8],
    pub dtype: WeightDtype,
}

impl<'w> Weights<'w> {
    fn range(&self, offset: u32, len: u32, size: usize) -> Option<&'w [u8]> {
        if offset as usize % nnblob_format::layout::WEIGHT_ALIGN != 0 {
            return None;
        }
        let n = (len as usize).checked_mul(size)?;
        let end = (offset as usize).checked_add(n)?;
        self.bytes.get(offset as usize..end)
    }
    /// The matrix, if it lies inside the section and is aligned.
    pub fn matrix(&self, m: MatrixRef) -> Option<Matrix<'w>> {
        Some(Matrix {
            bytes: self.range(m.offset, m.len, self.dtype.size())?,
            dtype: self.dtype,
        })
    }
    /// The vector, if it lies inside the section and is aligned.
    pub fn vector(&self, v: VectorRef) -> Option<Vector<'w>> {
        Some(Vector(self.range(v.offset, v.len, 4)?))
    }
    /// The byte string (int8 weights, per-channel records), if it lies inside the section and
    /// is aligned.
    pub fn bytes(&self, b: ByteRef) -> Option<&'w [u8]> {
        self.range(b.offset, b.len, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    /// Every binary16 value, against the `half` crate: normals, subnormals, both zeros,
    /// infinities and every NaN payload.
    #[test]
    fn f16_decoding_is_exact_for_all_65536_values() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32().to_bits();
            assert_eq!(f16_to_f32(bits).to_bits(), want, "f16 bits {bits:#06x}");
        }
    }
}
