//! Tensors as the reader hands them out: a dtype, a shape and row-major, contiguous, little-endian bytes.
//!
//! In: a storage (bytes in the file, or inflated), the tensor's size, stride and storage offset, and the
//! file's byte order. Out: a [`Tensor`] whose bytes borrow the file's memory map when the view is already
//! contiguous and little-endian, and are gathered into a new buffer otherwise. Bounds are checked before
//! anything is allocated: a tensor that reaches past its storage is refused.

use std::ops::Range;
use std::sync::Arc;

use super::error::{Error, Result};

/// The element types nnblob reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 64-bit signed int.
    I64,
    /// 32-bit signed int.
    I32,
    /// 16-bit signed int.
    I16,
    /// 8-bit signed int.
    I8,
    /// 8-bit unsigned int.
    U8,
    /// bool, one byte, 0 or 1.
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// The safetensors code (`F32`, `BF16`, `BOOL`, ...), also used in `--json` output.
    pub fn code(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
        }
    }

    /// From torch's dtype name (`float32`, `int64`, ...); `None` for dtypes nnblob does not read.
    pub fn from_torch(name: &str) -> Option<Dtype> {
        Some(match name {
            "float64" => Dtype::F64,
            "float32" => Dtype::F32,
            "float16" => Dtype::F16,
            "bfloat16" => Dtype::BF16,
            "int64" => Dtype::I64,
            "int32" => Dtype::I32,
            "int16" => Dtype::I16,
            "int8" => Dtype::I8,
            "uint8" => Dtype::U8,
            "bool" => Dtype::Bool,
            _ => return None,
        })
    }

    /// From a safetensors dtype; `None` for the ones nnblob does not read.
    pub fn from_safetensors(d: safetensors::Dtype) -> Option<Dtype> {
        use safetensors::Dtype as S;
        Some(match d {
            S::F64 => Dtype::F64,
            S::F32 => Dtype::F32,
            S::F16 => Dtype::F16,
            S::BF16 => Dtype::BF16,
            S::I64 => Dtype::I64,
            S::I32 => Dtype::I32,
            S::I16 => Dtype::I16,
            S::I8 => Dtype::I8,
            S::U8 => Dtype::U8,
            S::BOOL => Dtype::Bool,
            _ => return None,
        })
    }

    /// The safetensors dtype.
    pub fn to_safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as S;
        match self {
            Dtype::F64 => S::F64,
            Dtype::F32 => S::F32,
            Dtype::F16 => S::F16,
            Dtype::BF16 => S::BF16,
            Dtype::I64 => S::I64,
            Dtype::I32 => S::I32,
            Dtype::I16 => S::I16,
            Dtype::I8 => S::I8,
            Dtype::U8 => S::U8,
            Dtype::Bool => S::BOOL,
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Memory that tensors may borrow: the file's map, or a buffer the reader filled (an inflated record).
#[derive(Debug)]
pub(crate) enum Backing {
    Map(memmap2::Mmap),
    Heap(Vec<u8>),
}

impl Backing {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Heap(v) => v,
        }
    }
}

/// Raw storage bytes: a range of shared backing memory.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    pub backing: Arc<Backing>,
    pub range: Range<usize>,
    /// True if the storage's elements are big-endian.
    pub big_endian: bool,
}

impl Storage {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.backing.bytes()[self.range.clone()]
    }
}

#[derive(Debug, Clone)]
enum Data {
    Shared(Arc<Backing>, Range<usize>),
    Owned(Vec<u8>),
}

/// One named tensor of a state_dict.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// The name as stored (`features.0.weight`).
    pub name: String,
    /// The element type.
    pub dtype: Dtype,
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Whether the stored view was already row-major contiguous (so the bytes are borrowed, not copied,
    /// unless the file is big-endian).
    pub contiguous: bool,
    data: Data,
}

impl Tensor {
    /// Row-major, contiguous, little-endian bytes: `numel * dtype.size()` of them.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Data::Shared(b, r) => &b.bytes()[r.clone()],
            Data::Owned(v) => v,
        }
    }

    /// Bytes the reader copied for this tensor (0 when they borrow the file or an inflated record).
    pub(crate) fn copied_bytes(&self) -> usize {
        match &self.data {
            Data::Shared(..) => 0,
            Data::Owned(v) => v.len(),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values converted to f32 (ints and bools by value, f64 rounded, f16/bf16 exactly).
    pub fn to_f32(&self) -> Vec<f32> {
        let b = self.bytes();
        match self.dtype {
            Dtype::F32 => chunks::<4>(b).map(f32::from_le_bytes).collect(),
            Dtype::F64 => chunks::<8>(b)
                .map(|c| f64::from_le_bytes(c) as f32)
                .collect(),
            Dtype::F16 => chunks::<2>(b)
                .map(|c| half::f16::from_le_bytes(c).to_f32())
                .collect(),
            Dtype::BF16 => chunks::<2>(b)
                .map(|c| half::bf16::from_le_bytes(c).to_f32())
                .collect(),
            Dtype::I64 => chunks::<8>(b)
                .map(|c| i64::from_le_bytes(c) as f32)
                .collect(),
            Dtype::I32 => chunks::<4>(b)
                .map(|c| i32::from_le_bytes(c) as f32)
                .collect(),
            Dtype::I16 => chunks::<2>(b)
                .map(|c| f32::from(i16::from_le_bytes(c)))
                .collect(),
            Dtype::I8 => b.iter().map(|&x| f32::from(x as i8)).collect(),
            Dtype::U8 => b.iter().map(|&x| f32::from(x)).collect(),
            Dtype::Bool => b.iter().map(|&x| f32::from(u8::from(x != 0))).collect(),
        }
    }

    /// A tensor over bytes that are already row-major, contiguous and little-endian.
    pub(crate) fn shared(
        name: String,
        dtype: Dtype,
        shape: Vec<usize>,
        backing: Arc<Backing>,
        range: Range<usize>,
    ) -> Tensor {
        Tensor {
            name,
            dtype,
            shape,
            contiguous: true,
            data: Data::Shared(backing, range),
        }
    }
}

fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    b.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

/// A view into a storage, as the pickle describes it.
#[derive(Debug, Clone)]
pub(crate) struct View<'a> {
    pub name: &'a str,
    pub dtype: Dtype,
    pub size: &'a [u64],
    pub stride: &'a [u64],
    pub storage_offset: u64,
    pub storage_key: &'a str,
}

/// Materialise `view` over `storage`: check bounds first, then borrow or gather.
pub(crate) fn materialise(view: &View<'_>, storage: &Storage) -> Result<Tensor> {
    let es = view.dtype.size() as u64;
    let storage_bytes = storage.range.len() as u64;
    let too_large = || {
        Error::too_large(format!(
            "tensor {} has shape {:?} with stride {:?}, too large to address",
            view.name, view.size, view.stride
        ))
    };
    let mut numel: u64 = 1;
    for &s in view.size {
        numel = numel.checked_mul(s).ok_or_else(too_large)?;
    }
    let byte_len = numel.checked_mul(es).ok_or_else(too_large)?;
    let shape: Vec<usize> = view
        .size
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| too_large()))
        .collect::<Result<_>>()?;
    if numel == 0 {
        return Ok(Tensor {
            name: view.name.to_owned(),
            dtype: view.dtype,
            shape,
            contiguous: true,
            data: Data::Owned(Vec::new()),
        });
    }
    // The last element the view reaches, in elements.
    let mut last = view.storage_offset;
    for (&s, &st) in view.size.iter().zip(view.stride) {
        let span = (s - 1).checked_mul(st).ok_or_else(too_large)?;
        last = last.checked_add(span).ok_or_else(too_large)?;
    }
    let needed = last
        .checked_add(1)
        .and_then(|n| n.checked_mul(es))
        .ok_or_else(too_large)?;
    if needed > storage_bytes {
        return Err(Error::StorageTooSmall {
            tensor: view.name.to_owned(),
            storage_key: view.storage_key.to_owned(),
            needed_bytes: needed,
            storage_bytes,
        });
    }
    // From here every index the view reaches is within the storage.
    let contiguous = is_contiguous(view.size, view.stride);
    let byte_len = usize::try_from(byte_len).map_err(|_| too_large())?;
    let start = view.storage_offset as usize * es as usize;
    let es = es as usize;
    let src = storage.bytes();
    if contiguous && (!storage.big_endian || es == 1) {
        let begin = storage.range.start + start;
        return Ok(Tensor {
            name: view.name.to_owned(),
            dtype: view.dtype,
            shape,
            contiguous: true,
            data: Data::Shared(storage.backing.clone(), begin..begin + byte_len),
        });
    }
    // A view with overlapping strides (stride 0) names more bytes than its storage backs; bound those.
    if byte_len as u64 > needed.max(MAX_EXPANDED_BYTES) {
        return Err(Error::too_large(format!(
            "tensor {} would need {byte_len} bytes when made contiguous, from {needed} bytes of storage \
             (limit {MAX_EXPANDED_BYTES} for overlapping views)",
            view.name
        )));
    }
    let mut out = Vec::with_capacity(byte_len);
    if contiguous {
        out.extend_from_slice(&src[start..start + byte_len]);
    } else {
        gather(&mut out, src, view, es);
    }
    if storage.big_endian && es > 1 {
        for c in out.chunks_exact_mut(es) {
            c.reverse();
        }
    }
    Ok(Tensor {
        name: view.name.to_owned(),
        dtype: view.dtype,
        shape,
        contiguous,
        data: Data::Owned(out),
    })
}

/// The most bytes a view with overlapping strides (stride 0) may expand to beyond its storage.
const MAX_EXPANDED_BYTES: u64 = 256 << 20;

/// Row-major contiguity, ignoring the stride of dimensions of size 1.
pub(crate) fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&s, &st) in size.iter().zip(stride).rev() {
        if s != 1 && st != expected {
            return false;
        }
        expected = expected.saturating_mul(s);
    }
    true
}

/// Copy the elements of a strided view in row-major order. Bounds were checked by the caller.
fn gather(out: &mut Vec<u8>, src: &[u8], view: &View<'_>, es: usize) {
    let dims = view.size.len();
    if dims == 0 {
        let at = view.storage_offset as usize * es;
        out.extend_from_slice(&src[at..at + es]);
        return;
    }
    let size: Vec<usize> = view.size.iter().map(|&s| s as usize).collect();
    // A dimension of size 1 is never stepped through, so its stride (which may be any value, as in
    // torch) is not scaled: only strides of longer dimensions are bounded by the storage check.
    let stride: Vec<usize> = view
        .size
        .iter()
        .zip(view.stride)
        .map(|(&s, &st)| if s == 1 { 0 } else { st as usize * es })
        .collect();
    let inner = size[dims - 1];
    let inner_stride = stride[dims - 1];
    let mut index = vec![0usize; dims - 1];
    let mut base = view.storage_offset as usize * es;
    loop {
        if inner_stride == es {
            out.extend_from_slice(&src[base..base + inner * es]);
        } else {
            let mut at = base;
            for _ in 0..inner {
                out.extend_from_slice(&src[at..at + es]);
                at += inner_stride;
            }
        }
        // Odometer over the outer dimensions.
        let mut d = dims - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            base += stride[d];
            if index[d] < size[d] {
                break;
            }
            base -= stride[d] * size[d];
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(bytes: Vec<u8>, big_endian: bool) -> Storage {
        let n = bytes.len();
        Storage {
            backing: Arc::new(Backing::Heap(bytes)),
            range: 0..n,
            big_endian,
        }
    }

    fn view<'a>(size: &'a [u64], stride: &'a [u64], offset: u64) -> View<'a> {
        View {
            name: "t",
            dtype: Dtype::U8,
            size,
            stride,
            storage_offset: offset,
            storage_key: "0",
        }
    }

    // Hand-computed small cases: a 2x3 transposed view, stride 0, offset, scalar.
    #[test]
    fn strided_views_are_gathered_row_major() {
        let s = storage((0..6).collect(), false);
        let t = materialise(&view(&[3, 2], &[1, 3], 0), &s).unwrap();
        assert_eq!(t.bytes(), &[0, 3, 1, 4, 2, 5]);
        assert!(!t.contiguous);
        let t = materialise(&view(&[2, 2], &[0, 1], 4), &s).unwrap();
        assert_eq!(t.bytes(), &[4, 5, 4, 5]);
        let t = materialise(&view(&[], &[], 5), &s).unwrap();
        assert_eq!(t.bytes(), &[5]);
        let t = materialise(&view(&[0, 7], &[7, 1], 100), &s).unwrap();
        assert!(t.bytes().is_empty());
    }

    #[test]
    fn views_past_the_storage_are_refused_before_allocating() {
        let s = storage(vec![0; 6], false);
        let e = materialise(&view(&[7], &[1], 0), &s).unwrap_err();
        assert_eq!(e.kind(), "storage-too-small");
        let e = materialise(&view(&[1 << 40, 1 << 40], &[1, 1], 0), &s).unwrap_err();
        assert_eq!(e.kind(), "too-large");
    }

    // Hand-computed: torch lets a dimension of size 1 carry any stride; elements 0 and 2 of the
    // storage are the view's two values, and the huge stride must not overflow while gathering.
    #[test]
    fn a_huge_stride_on_a_dimension_of_size_one_is_ignored() {
        let s = storage((0..24).collect(), false);
        let v = View {
            dtype: Dtype::F64,
            ..view(&[1, 2], &[1 << 61, 2], 0)
        };
        let t = materialise(&v, &s).unwrap();
        assert_eq!(t.bytes()[..8], s.bytes()[..8]);
        assert_eq!(t.bytes()[8..], s.bytes()[16..24]);
    }

    #[test]
    fn big_endian_storages_are_swapped() {
        let s = storage(vec![0, 1, 0, 2], true);
        let v = View {
            dtype: Dtype::I16,
            ..view(&[2], &[1], 0)
        };
        assert_eq!(materialise(&v, &s).unwrap().bytes(), &[1, 0, 2, 0]);
    }
}
