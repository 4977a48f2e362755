//! safetensors input.
//!
//! In: the bytes of a safetensors file. Out: its tensors, in the order of their data in the file, each
//! borrowing the file's bytes. The header is checked here first so that each problem gets its precise
//! error (too large, truncated, a tensor larger than its byte range, an unsupported dtype); the
//! `safetensors` crate then validates the rest (offsets that tile the data exactly).

use std::sync::Arc;

use serde_json::Value;

use super::error::{Error, Result};
use super::tensor::{Backing, Dtype, Tensor};

/// The safetensors library refuses headers larger than this.
const MAX_HEADER: u64 = 100 << 20;

fn dtype(code: &str) -> Option<Dtype> {
    Some(match code {
        "F64" => Dtype::F64,
        "F32" => Dtype::F32,
        "F16" => Dtype::F16,
        "BF16" => Dtype::BF16,
        "I64" => Dtype::I64,
        "I32" => Dtype::I32,
        "I16" => Dtype::I16,
        "I8" => Dtype::I8,
        "U8" => Dtype::U8,
        "BOOL" => Dtype::Bool,
        _ => return None,
    })
}

pub(crate) fn read(backing: &Arc<Backing>) -> Result<Vec<Tensor>> {
    let bytes = backing.bytes();
    let header_err = |what: String| Error::malformed("safetensors header", what);
    if bytes.len() < 8 {
        return Err(Error::NotACheckpoint {
            what: "shorter than a safetensors header".into(),
        });
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n);
    let available = (bytes.len() - 8) as u64;
    if n > MAX_HEADER {
        return Err(Error::too_large(format!(
            "safetensors header length {n} exceeds the format's limit of {MAX_HEADER} bytes"
        )));
    }
    if n > available {
        return Err(Error::Truncated {
            entry: "safetensors header".into(),
            offset: bytes.len() as u64,
            what: format!("the header declares {n} bytes, {available} remain"),
        });
    }
    let data_start = 8 + n as usize;
    let data_len = (bytes.len() - data_start) as u64;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..data_start]).map_err(|e| header_err(e.to_string()))?;
    let mut tensors = Vec::with_capacity(header.len());
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let field = |f: &str| {
            info.get(f)
                .ok_or_else(|| header_err(format!("tensor {name:?} has no {f}")))
        };
        let code = field("dtype")?
            .as_str()
            .ok_or_else(|| header_err(format!("tensor {name:?}: dtype")))?;
        let dtype = dtype(code).ok_or_else(|| Error::UnsupportedDtype {
            tensor: name.clone(),
            dtype: code.to_owned(),
        })?;
        let ints = |f: &str| -> Result<Vec<u64>> {
            field(f)?
                .as_array()
                .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
                .ok_or_else(|| {
                    header_err(format!(
                        "tensor {name:?}: {f} is not a list of non-negative ints"
                    ))
                })
        };
        let shape = ints("shape")?;
        let offsets = ints("data_offsets")?;
        let &[begin, end] = offsets.as_slice() else {
            return Err(header_err(format!(
                "tensor {name:?}: data_offsets is not [begin, end]"
            )));
        };
        let too_large = || {
            Error::too_large(format!(
                "tensor {name:?} has shape {shape:?}, too large to address"
            ))
        };
        let needed = shape
            .iter()
            .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(too_large)?;
        if begin > end {
            return Err(header_err(format!(
                "tensor {name:?}: data_offsets [{begin}, {end}] run backwards"
            )));
        }
        if end > data_len {
            return Err(Error::Truncated {
                entry: format!("safetensors tensor {name:?}"),
                offset: bytes.len() as u64,
                what: format!("data ends at byte {end} of the data section, which has {data_len}"),
            });
        }
        if end - begin < needed {
            return Err(Error::StorageTooSmall {
                tensor: name.clone(),
                storage_key: name.clone(),
                needed_bytes: needed,
                storage_bytes: end - begin,
            });
        }
        if end - begin > needed {
            return Err(header_err(format!(
                "tensor {name:?} has {} bytes for {needed} bytes of values",
                end - begin
            )));
        }
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let range = data_start + begin as usize..data_start + end as usize;
        tensors.push((
            begin,
            Tensor::shared(name.clone(), dtype, shape, backing.clone(), range),
        ));
    }
    safetensors::SafeTensors::deserialize(bytes).map_err(|e| header_err(format!("{e:?}")))?;
    tensors.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    Ok(tensors.into_iter().map(|(_, t)| t).collect())
}
