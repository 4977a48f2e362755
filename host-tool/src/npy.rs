//! `.npy` files in and out, as f32 arrays (the `nnblob run` I/O and the tests' fixtures).
//!
//! In: a NumPy `.npy` file of float32 or float64 (either byte order, C or Fortran order; float64 is
//! rounded to f32). Out: an [`Array`] (shape and row-major f32 data); [`write`] produces a float32,
//! little-endian, C-order `.npy` (format version 1.0, as `numpy.save` writes it). Parsing is
//! `npyz`'s, which handles numpy's dtype strings and header corner cases.

use std::path::Path;

use npyz::{DType, Order, TypeStr, WriterBuilder};

/// A dense f32 array, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Why a `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a .npy file nnblob can read: {message}")]
    Format { path: String, message: String },
    #[error(
        "{path}: dtype {dtype} is not supported (use float32, e.g. `x.astype(numpy.float32)`)"
    )]
    Dtype { path: String, dtype: String },
}

/// Reads a float32 or float64 `.npy` file.
pub fn read(path: &Path) -> Result<Array, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: p.clone(),
        source,
    })?;
    from_bytes(&bytes).map_err(|e| match e {
        NpyError::Format { message, .. } => NpyError::Format { path: p, message },
        NpyError::Dtype { dtype, .. } => NpyError::Dtype { path: p, dtype },
        other => other,
    })
}

/// Parses `.npy` bytes (errors carry an empty path).
pub fn from_bytes(bytes: &[u8]) -> Result<Array, NpyError> {
    let format = |message: String| NpyError::Format {
        path: String::new(),
        message,
    };
    let npy = npyz::NpyFile::new(bytes).map_err(|e| format(e.to_string()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype();
    let type_str = match &dtype {
        DType::Plain(t) => t.clone(),
        other => {
            return Err(NpyError::Dtype {
                path: String::new(),
                dtype: other.descr(),
            })
        }
    };
    let is = |s: &str| type_str.to_string().ends_with(s);
    let data: Vec<f32> = if is("f4") {
        npy.into_vec::<f32>().map_err(|e| format(e.to_string()))?
    } else if is("f8") {
        let v = npy.into_vec::<f64>().map_err(|e| format(e.to_string()))?;
        v.into_iter().map(|x| x as f32).collect()
    } else {
        return Err(NpyError::Dtype {
            path: String::new(),
            dtype: type_str.to_string(),
        });
    };
    let data = match order {
        Order::C => data,
        Order::Fortran => fortran_to_c(&shape, &data),
    };
    Ok(Array { shape, data })
}

/// Reorders column-major data into row-major.
fn fortran_to_c(shape: &[usize], data: &[f32]) -> Vec<f32> {
    let n = data.len();
    let mut out = vec![0.0; n];
    // Element i (row-major) sits at the Fortran index with the first axis varying fastest.
    for (i, o) in out.iter_mut().enumerate() {
        let (mut rest, mut f_index, mut f_stride) = (i, 0, 1);
        let mut idx = vec![0; shape.len()];
        for (a, &d) in shape.iter().enumerate().rev() {
            idx[a] = rest % d.max(1);
            rest /= d.max(1);
        }
        for (a, &d) in shape.iter().enumerate() {
            f_index += idx[a] * f_stride;
            f_stride *= d;
        }
        *o = data[f_index];
    }
    out
}

/// Writes `data` of `shape` as a float32 little-endian C-order `.npy` file at `path`.
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let io = |source| NpyError::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = to_bytes(shape, data).map_err(io)?;
    std::fs::write(path, bytes).map_err(io)
}

/// Encodes `data` of `shape` as `.npy` bytes (float32, little-endian, C order).
pub fn to_bytes(shape: &[usize], data: &[f32]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let type_str: TypeStr = "<f4".parse().map_err(std::io::Error::other)?;
    let mut w = npyz::WriteOptions::new()
        .dtype(DType::Plain(type_str))
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = to_bytes(&[2, 3, 4], &data).unwrap();
        let a = from_bytes(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.data, data);
    }

    /// A Fortran-order 2x3 array [[0, 1, 2], [3, 4, 5]] stores its columns: 0 3 1 4 2 5.
    #[test]
    fn fortran_order_is_reordered() {
        let c = fortran_to_c(&[2, 3], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(c, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}
