//! numpy `.npy` files in and out: float32 and float64 tensors, int64 labels.
//!
//! In: the bytes of an `.npy` file (any header version, either byte order, C or Fortran order).
//! Out: an [`Array`] — a shape and its elements in row-major (C) order — or an error that says what
//! is wrong with the file (dtype, shape, data length, layout). Writing produces a little-endian,
//! C-order file, what `numpy.save` writes for a contiguous array.
//!
//! Parsing of the header (dtype strings, the Python-literal dictionary) is `npyz`'s; this module adds
//! the checks a tool needs before trusting a file: the dtype is the one asked for, the data length
//! matches the shape exactly, and Fortran-order data is reordered rather than misread.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use npyz::{DType, Order, TypeChar, WriterBuilder};

/// A dense array: its shape and its elements in row-major (C) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    /// The extent of each axis; empty for a scalar.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements, the last axis varying fastest.
    pub data: Vec<T>,
}

impl<T> Array<T> {
    /// An array from a shape and row-major data, or `None` if the lengths disagree.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Option<Self> {
        (element_count(&shape) == Some(data.len())).then_some(Array { shape, data })
    }

    /// The number of rows along the first axis (1 for a scalar).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Row `index` along the first axis, as a flat slice, with its shape (the shape without the first axis).
    pub fn row(&self, index: usize) -> Option<(&[usize], &[T])> {
        let (_, row_shape) = self.shape.split_first()?;
        let row_len: usize = row_shape.iter().product();
        let start = index.checked_mul(row_len)?;
        let row = self.data.get(start..start.checked_add(row_len)?)?;
        Some((row_shape, row))
    }
}

/// An element type this module reads and writes.
pub trait Element: npyz::Deserialize + npyz::Serialize + npyz::AutoSerialize + Copy {
    /// numpy's name for the type, for messages (`float32`).
    const NUMPY_NAME: &'static str;
    /// The kind of number (`f` or `i`).
    const TYPE_CHAR: TypeChar;
    /// Bytes per element.
    const SIZE: u64;
}

impl Element for f32 {
    const NUMPY_NAME: &'static str = "float32";
    const TYPE_CHAR: TypeChar = TypeChar::Float;
    const SIZE: u64 = 4;
}

impl Element for f64 {
    const NUMPY_NAME: &'static str = "float64";
    const TYPE_CHAR: TypeChar = TypeChar::Float;
    const SIZE: u64 = 8;
}

impl Element for i64 {
    const NUMPY_NAME: &'static str = "int64";
    const TYPE_CHAR: TypeChar = TypeChar::Int;
    const SIZE: u64 = 8;
}

/// Why an `.npy` file could not be read or written. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The header is not a valid `.npy` header.
    #[error("{path}: not a valid .npy file: {reason}")]
    Header { path: PathBuf, reason: String },
    /// The elements are not of the requested type.
    #[error(
        "{path}: dtype is '{found}', expected {expected} ('<{code}'); save it with `array.astype(numpy.{expected})`"
    )]
    Dtype {
        path: PathBuf,
        found: String,
        expected: &'static str,
        code: String,
    },
    /// The shape's element count does not fit in memory-sized integers.
    #[error("{path}: shape {shape:?} is too large")]
    ShapeTooLarge { path: PathBuf, shape: Vec<u64> },
    /// The data after the header is shorter or longer than the shape says.
    #[error(
        "{path}: shape {shape:?} of {dtype} needs {expected} bytes of data after the header, the file has {found}"
    )]
    DataLength {
        path: PathBuf,
        shape: Vec<usize>,
        dtype: &'static str,
        expected: u64,
        found: u64,
    },
    /// The data could not be decoded.
    #[error("{path}: cannot decode the data: {reason}")]
    Data { path: PathBuf, reason: String },
    /// The array to write has a shape that disagrees with its element count.
    #[error("{path}: shape {shape:?} needs {expected} elements, the array has {found}")]
    ShapeMismatch {
        path: PathBuf,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
}

/// Reads an `.npy` file of element type `T` (`f32`, `f64`, `i64`).
pub fn read<T: Element>(path: &Path) -> Result<Array<T>, NpyError> {
    let bytes = fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Reads user-supplied values as f32: a float32 file as it is, a float64 file (numpy's default
/// dtype) rounded to the nearest f32. Any other dtype is the float32 dtype error.
pub fn read_f32_lenient(path: &Path) -> Result<Array<f32>, NpyError> {
    let bytes = fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match parse::<f32>(path, &bytes) {
        Err(f32_error @ NpyError::Dtype { .. }) => match parse::<f64>(path, &bytes) {
            Ok(wide) => Ok(Array {
                shape: wide.shape,
                data: wide.data.into_iter().map(|v| v as f32).collect(),
            }),
            Err(_) => Err(f32_error),
        },
        other => other,
    }
}

/// Parses the bytes of an `.npy` file of element type `T`; `path` only names the file in errors.
pub fn parse<T: Element>(path: &Path, bytes: &[u8]) -> Result<Array<T>, NpyError> {
    precheck_header(path, bytes)?;
    let file = npyz::NpyFile::new(bytes).map_err(|e| NpyError::Header {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let header = file.header().clone();
    let data_bytes: &[u8] = file.into_inner();
    check_dtype::<T>(path, &header.dtype())?;

    let too_large = || NpyError::ShapeTooLarge {
        path: path.to_path_buf(),
        shape: header.shape().to_vec(),
    };
    let shape = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| too_large()))
        .collect::<Result<Vec<usize>, _>>()?;
    let count = element_count(&shape).ok_or_else(too_large)?;
    let expected = (count as u64).checked_mul(T::SIZE).ok_or_else(too_large)?;
    let found = data_bytes.len() as u64;
    if found != expected {
        return Err(NpyError::DataLength {
            path: path.to_path_buf(),
            shape,
            dtype: T::NUMPY_NAME,
            expected,
            found,
        });
    }

    let order = header.order();
    let stored: Vec<T> = npyz::NpyFile::with_header(header, data_bytes)
        .into_vec()
        .map_err(|e| NpyError::Data {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let data = match order {
        Order::C => stored,
        Order::Fortran => fortran_to_c(&shape, &stored),
    };
    Ok(Array { shape, data })
}

/// Writes `array` as a little-endian, C-order `.npy` file (numpy format version 1.0).
///
/// The file is written to a temporary name beside `path` and renamed, so a failure never leaves a
/// partial file under `path`.
pub fn write<T: Element>(path: &Path, array: &Array<T>) -> Result<(), NpyError> {
    let expected = element_count(&array.shape).unwrap_or(usize::MAX);
    if expected != array.data.len() {
        return Err(NpyError::ShapeMismatch {
            path: path.to_path_buf(),
            shape: array.shape.clone(),
            expected,
            found: array.data.len(),
        });
    }
    let bytes = to_bytes(array).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    crate::atomic_file::write_bytes(path, &bytes).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a little-endian, C-order `.npy` file holding `array`.
pub fn to_bytes<T: Element>(array: &Array<T>) -> io::Result<Vec<u8>> {
    let shape: Vec<u64> = array.shape.iter().map(|&d| d as u64).collect();
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(array.data.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
}

/// The product of the extents, or `None` on overflow (an empty shape is a scalar: 1 element).
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Refuses what `npyz` would mishandle before it parses the header: a header length past the end
/// of the file (`npyz` allocates the declared length before reading) and a shape whose element
/// count overflows `u64` (`npyz` multiplies the extents unchecked, which panics or wraps).
///
/// The header is parsed with the parser `npyz` uses (`py_literal`), and the last `shape` key wins
/// as in the dict `npyz` builds, so both see the same shape however it is quoted or written.
/// Anything this check does not understand is left to `npyz` to refuse.
fn precheck_header(path: &Path, bytes: &[u8]) -> Result<(), NpyError> {
    use py_literal::Value;
    let (Some(b"\x93NUMPY"), Some(&version)) = (bytes.get(..6), bytes.get(6)) else {
        return Ok(());
    };
    let (length_bytes, start) = match version {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => return Ok(()),
    };
    let Some(field) = bytes.get(8..8 + length_bytes) else {
        return Ok(());
    };
    let mut length = [0u8; 4];
    length[..length_bytes].copy_from_slice(field);
    let length = u32::from_le_bytes(length) as usize;
    let Some(text) = bytes.get(start..start + length) else {
        return Err(NpyError::Header {
            path: path.to_path_buf(),
            reason: format!(
                "the header declares {length} bytes but the file has {} after byte {start}",
                bytes.len().saturating_sub(start)
            ),
        });
    };
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let Some(Value::Dict(items)) = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<Value>().ok())
    else {
        return Ok(());
    };
    let shape = items
        .iter()
        .rev()
        .find_map(|(key, value)| match (key, value) {
            (Value::String(k), Value::Tuple(v) | Value::List(v)) if k == "shape" => Some(v),
            _ => None,
        });
    let Some(shape) = shape.and_then(|extents| {
        extents
            .iter()
            .map(|e| match e {
                Value::Integer(i) => i.to_string().parse::<u64>().ok(),
                _ => None,
            })
            .collect::<Option<Vec<u64>>>()
    }) else {
        return Ok(());
    };
    // Zero extents are skipped: `npyz` also forms the partial products (the strides).
    if shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d.max(1)))
        .is_none()
    {
        return Err(NpyError::ShapeTooLarge {
            path: path.to_path_buf(),
            shape,
        });
    }
    Ok(())
}

/// Refuses a dtype other than `T`, naming what was found.
fn check_dtype<T: Element>(path: &Path, dtype: &DType) -> Result<(), NpyError> {
    let code = format!("{}{}", type_char_code(T::TYPE_CHAR), T::SIZE);
    let matches = match dtype {
        DType::Plain(type_str) => {
            type_str.type_char() == T::TYPE_CHAR && type_str.size_field() == T::SIZE
        }
        _ => false,
    };
    if matches {
        return Ok(());
    }
    Err(NpyError::Dtype {
        path: path.to_path_buf(),
        found: match dtype {
            DType::Plain(type_str) => type_str.to_string(),
            other => other.descr(),
        },
        expected: T::NUMPY_NAME,
        code,
    })
}

fn type_char_code(type_char: TypeChar) -> &'static str {
    match type_char {
        TypeChar::Float => "f",
        TypeChar::Int => "i",
        _ => "?",
    }
}

/// Reorders Fortran-order (first axis fastest) elements into C order (last axis fastest).
fn fortran_to_c<T: Copy>(shape: &[usize], stored: &[T]) -> Vec<T> {
    let mut c_order = Vec::with_capacity(stored.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..stored.len() {
        // Fortran offset of the C-order multi-index: strides grow from the first axis.
        let mut offset = 0;
        let mut stride = 1;
        for (i, &extent) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= extent;
        }
        c_order.push(stored[offset]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    c_order
}

#[cfg(test)]
mod tests {
    //! Files built byte by byte from the format's definition (magic, version, little-endian header
    //! length, a Python dict literal padded to 64 bytes, then the raw data), so every expected value
    //! is known by construction.

    use super::*;

    fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let unpadded = 10 + dict.len() + 1;
        let padding = (64 - unpadded % 64) % 64;
        let header = format!("{dict}{}\n", " ".repeat(padding));
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn le_f32(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn path() -> &'static Path {
        Path::new("x.npy")
    }

    #[test]
    fn c_order_float32_reads_as_stored() {
        let bytes = npy_bytes("<f4", false, "(2, 3)", &le_f32(&[0., 1., 2., 3., 4., 5.]));
        let array: Array<f32> = parse(path(), &bytes).unwrap();
        assert_eq!(array.shape, vec![2, 3]);
        assert_eq!(array.data, vec![0., 1., 2., 3., 4., 5.]);
        assert_eq!(array.row(1), Some((&[3usize][..], &[3f32, 4., 5.][..])));
    }

    #[test]
    fn fortran_order_is_reordered_to_c_order() {
        // The 2x3 matrix [[0, 1, 2], [3, 4, 5]] stored column by column.
        let bytes = npy_bytes("<f4", true, "(2, 3)", &le_f32(&[0., 3., 1., 4., 2., 5.]));
        let array: Array<f32> = parse(path(), &bytes).unwrap();
        assert_eq!(array.data, vec![0., 1., 2., 3., 4., 5.]);
        // A 2x2x2 cube: Fortran offset of [i, j, k] is i + 2j + 4k; the value is the C offset 4i + 2j + k.
        let mut stored = [0f32; 8];
        for (i, j, k) in (0..8).map(|c| (c / 4, (c / 2) % 2, c % 2)) {
            stored[i + 2 * j + 4 * k] = (4 * i + 2 * j + k) as f32;
        }
        let cube: Array<f32> = parse(
            path(),
            &npy_bytes("<f4", true, "(2, 2, 2)", &le_f32(&stored)),
        )
        .unwrap();
        assert_eq!(cube.data, (0..8).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn big_endian_and_scalars_and_int64_labels() {
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let array: Array<f32> = parse(path(), &npy_bytes(">f4", false, "(2,)", &be)).unwrap();
        assert_eq!(array.data, vec![1.5, -2.0]);
        let scalar: Array<f32> =
            parse(path(), &npy_bytes("<f4", false, "()", &le_f32(&[7.0]))).unwrap();
        assert_eq!((scalar.shape.len(), scalar.data[0]), (0, 7.0));
        let labels: Vec<u8> = [3i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
        let labels: Array<i64> = parse(path(), &npy_bytes("<i8", false, "(2,)", &labels)).unwrap();
        assert_eq!(labels.data, vec![3, 9]);
    }

    #[test]
    fn wrong_dtype_names_found_and_expected() {
        let bytes = npy_bytes("<f8", false, "(1,)", &1f64.to_le_bytes());
        let err = parse::<f32>(path(), &bytes).unwrap_err();
        assert!(
            matches!(&err, NpyError::Dtype { found, .. } if found == "<f8"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("x.npy: dtype is '<f8', expected float32 ('<f4')"),
            "{err}"
        );
        let err = parse::<i64>(path(), &npy_bytes("<i4", false, "(1,)", &[0; 4])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.npy: dtype is '<i4', expected int64 ('<i8'); save it with `array.astype(numpy.int64)`"
        );
    }

    #[test]
    fn truncated_or_padded_data_is_refused_with_both_lengths() {
        let short = npy_bytes("<f4", false, "(2, 3)", &le_f32(&[0.; 5]));
        let err = parse::<f32>(path(), &short).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.npy: shape [2, 3] of float32 needs 24 bytes of data after the header, the file has 20"
        );
        let long = npy_bytes("<f4", false, "(2,)", &le_f32(&[0.; 3]));
        assert!(matches!(
            parse::<f32>(path(), &long),
            Err(NpyError::DataLength {
                expected: 8,
                found: 12,
                ..
            })
        ));
    }

    #[test]
    fn garbage_and_hostile_shapes_are_refused() {
        let err = parse::<f32>(path(), b"PK\x03\x04 not numpy").unwrap_err();
        assert!(matches!(err, NpyError::Header { .. }), "{err}");
        for shape in [
            "(4294967296, 4294967296, 4294967296)",
            "(0, 4294967296, 4294967296, 2)",
        ] {
            let huge = npy_bytes("<f4", false, shape, &[]);
            assert!(matches!(
                parse::<f32>(path(), &huge),
                Err(NpyError::ShapeTooLarge { .. })
            ));
        }
        // The same shapes written in the other ways Python literals allow (npyz accepts them all).
        for dict in [
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (4294967296, 4294967296, 4294967296), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [0x100000000, 0x100000000, 0x100000000], }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (4294967296, 4294967296, 4294967296), }",
        ] {
            let header = format!("{dict}\n");
            let mut huge = b"\x93NUMPY\x01\x00".to_vec();
            huge.extend_from_slice(&(header.len() as u16).to_le_bytes());
            huge.extend_from_slice(header.as_bytes());
            let err = parse::<f32>(path(), &huge).unwrap_err();
            assert!(matches!(err, NpyError::ShapeTooLarge { .. }), "{dict}: {err}");
        }
        // A header length far past the end of the file is refused before anything is allocated.
        let mut long = b"\x93NUMPY\x02\x00".to_vec();
        long.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
        long.extend_from_slice(b"{}");
        let err = parse::<f32>(path(), &long).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.npy: not a valid .npy file: the header declares 4294967280 bytes but the file has 2 after byte 12"
        );
        // Fits in u64 but not in any file: refused by the length check, nothing allocated.
        let big = npy_bytes("<f4", false, "(1099511627776,)", &[]);
        assert!(matches!(
            parse::<f32>(path(), &big),
            Err(NpyError::DataLength {
                expected: 4398046511104,
                found: 0,
                ..
            })
        ));
    }

    #[test]
    fn written_files_read_back_identically() {
        let array = Array::new(vec![2, 2], vec![1.0f32, -0.0, f32::MAX, 1e-40]).unwrap();
        let bytes = to_bytes(&array).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY"));
        let back: Array<f32> = parse(path(), &bytes).unwrap();
        assert_eq!(
            back.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            array.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(back.shape, array.shape);

        let dir = std::env::temp_dir().join(format!("nnblob-npy-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.npy");
        write(&file, &array).unwrap();
        assert_eq!(read::<f32>(&file).unwrap(), array);
        let bad = Array {
            shape: vec![3],
            data: vec![1.0f32],
        };
        assert!(matches!(
            write(&dir.join("b.npy"), &bad),
            Err(NpyError::ShapeMismatch { .. })
        ));
        assert!(!dir.join("b.npy").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
