//! The legacy (pre-1.6, non-zip) `torch.save` format.
//!
//! In: the file's bytes. Out: the unpickled object, the other pickles (for scans), and the byte range
//! of every storage. Layout: five pickles back to back — the magic number `0x1950a86a20f9469cfc6c`,
//! the protocol version 1001, `sys_info`, the object (storages as persistent ids), the list of storage
//! keys — then, for each key in that order, a little-endian u64 element count and the raw bytes
//! (torch writes them little-endian whatever the machine). Every pickle goes through the same VM and
//! allowlist: a payload in `sys_info` is refused like one in the object.

use std::collections::HashMap;
use std::ops::Range;

use super::error::{Error, Result};
use super::pickle::{self, Limits, Mode, Obj, Unpickled};
use super::torch;

/// torch's magic number, as LONG1 writes it (little-endian two's complement).
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL: i64 = 1001;

/// The name the object pickle goes by in messages.
pub const OBJECT_PICKLE: &str = "object pickle";

/// A parsed legacy file.
#[derive(Debug)]
pub(crate) struct Legacy {
    pub object: Unpickled,
    pub others: Vec<(String, Unpickled)>,
    pub storages: HashMap<String, Range<usize>>,
}

pub(crate) fn parse(bytes: &[u8], mode: Mode, limits: &Limits) -> Result<Legacy> {
    let mut pos = 0usize;
    let next = |name: &str, pos: &mut usize| -> Result<Unpickled> {
        let u = pickle::unpickle(&bytes[*pos..], name, mode, limits)?;
        *pos += u.len;
        Ok(u)
    };
    let magic = next("magic number pickle", &mut pos)?;
    if !matches!(magic.heap.get(magic.root), Obj::BigInt(b) if b[..] == MAGIC) {
        return Err(Error::NotACheckpoint {
            what: "a pickle, but not one written by torch.save (no magic number)".into(),
        });
    }
    let protocol = next("protocol version pickle", &mut pos)?;
    match protocol.heap.int(protocol.root) {
        Some(PROTOCOL) => {}
        other => {
            return Err(Error::malformed(
                "protocol version pickle",
                format!("protocol version {other:?}, expected {PROTOCOL}"),
            ))
        }
    }
    let sys_info = next("sys_info pickle", &mut pos)?;
    let object = next(OBJECT_PICKLE, &mut pos)?;
    let keys = next("storage key pickle", &mut pos)?;
    let key_list: Vec<String> = keys
        .heap
        .seq(keys.root)
        .ok_or_else(|| Error::malformed("storage key pickle", "not a list"))?
        .iter()
        .map(|&k| match keys.heap.get(k) {
            Obj::Str(s) => Ok(s.clone()),
            Obj::Int(i) => Ok(i.to_string()),
            _ => Err(Error::malformed(
                "storage key pickle",
                "a key is not a string",
            )),
        })
        .collect::<Result<_>>()?;
    let sizes: HashMap<String, u64> = torch::all_storages(&object.heap)
        .into_iter()
        .map(|s| (s.key, torch::dtype_size(s.dtype)))
        .collect();
    let mut storages = HashMap::new();
    for key in key_list {
        let entry = format!("storage {key}");
        if pos + 8 > bytes.len() {
            return Err(Error::Truncated {
                entry,
                offset: bytes.len() as u64,
                what: format!("element count at byte {pos}"),
            });
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&bytes[pos..pos + 8]);
        let numel = u64::from_le_bytes(n);
        pos += 8;
        let es = *sizes.get(&key).ok_or_else(|| {
            Error::malformed(
                &entry,
                "listed in the storage keys but not used by the object pickle",
            )
        })?;
        let remaining = (bytes.len() - pos) as u64;
        let len = numel
            .checked_mul(es)
            .filter(|&l| l <= remaining)
            .ok_or_else(|| {
                let what = format!(
                    "{numel} elements of {es} bytes at byte {pos}, {remaining} bytes remain"
                );
                if numel.saturating_mul(es) > remaining.saturating_add(256 << 20) {
                    Error::too_large(format!("{entry} declares {what}"))
                } else {
                    Error::Truncated {
                        entry: entry.clone(),
                        offset: bytes.len() as u64,
                        what,
                    }
                }
            })? as usize;
        if storages.insert(key.clone(), pos..pos + len).is_some() {
            return Err(Error::malformed(entry, "listed twice in the storage keys"));
        }
        pos += len;
    }
    Ok(Legacy {
        object,
        others: vec![
            ("magic number pickle".into(), magic),
            ("protocol version pickle".into(), protocol),
            ("sys_info pickle".into(), sys_info),
            ("storage key pickle".into(), keys),
        ],
        storages,
    })
}
