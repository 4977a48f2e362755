//! Reading weights from the weights section: matrices (f16 or f32) and f32 vectors.

use nnblob_format::meta::{MatrixRef, VectorRef};
use nnblob_format::WeightDtype;

/// A weight matrix: raw little-endian bytes of the blob's dtype.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'w> {
    pub bytes: &'w [u8],
    pub dtype: WeightDtype,
}

/// Exact binary16 -> binary32 (subnormals, infinities and NaN included) without hardware fp16.
#[inline]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

impl<'w> Matrix<'w> {
    /// Decodes `dst.len()` elements starting at element `start` into `dst`. Missing
    /// elements (impossible after validation) are left untouched.
    #[inline]
    #[allow(clippy::indexing_slicing)] // `chunks_exact` yields chunks of exactly the indexed length
    pub fn decode(&self, start: usize, dst: &mut [f32]) {
        let size = self.dtype.size();
        let Some(src) = self.bytes.get(start * size..(start + dst.len()) * size) else {
            return;
        };
        match self.dtype {
            WeightDtype::F16 => {
                for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                    *d = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            WeightDtype::F32 => {
                for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                    *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
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
}
