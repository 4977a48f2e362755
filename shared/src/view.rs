//! The checked, zero-copy view of a blob.

use crate::header::Header;
use crate::meta::{
    ElemType, Info, Io, TensorDesc, TensorDescV2, WireOp, TENSOR_RECORD_LEN, TENSOR_RECORD_LEN_V2,
};
use crate::{Error, WeightDtype};

/// A blob whose header, CRC and metadata framing have been checked.
///
/// [`BlobView::new_checked`] decodes the info, every tensor record, every input/output and
/// every op once; afterwards the accessors only re-decode what was already decoded, so they
/// do not fail on a view built by `new_checked`. What the values *mean* (shapes against ops,
/// weight lengths, arena ranges) is checked by the engine, not here.
#[derive(Debug, Clone)]
pub struct BlobView<'a> {
    header: Header,
    info: Info<'a>,
    tensors: &'a [u8],
    ios: &'a [u8],
    ops: &'a [u8],
    weights: &'a [u8],
    /// Byte offset of `ops` in the blob, for error messages.
    ops_offset: u32,
    /// The arena size in bytes, whatever unit the blob's version stores.
    arena_bytes: u32,
}

/// The length of one tensor record in a blob of this format version.
const fn record_len(version: u16) -> usize {
    if version >= 3 {
        TENSOR_RECORD_LEN
    } else {
        TENSOR_RECORD_LEN_V2
    }
}

/// Decodes one tensor record of format `version` in today's terms (byte offsets).
fn decode_tensor(rec: &[u8], version: u16) -> Option<TensorDesc> {
    if version >= 3 {
        postcard::from_bytes(rec).ok()
    } else {
        postcard::from_bytes::<TensorDescV2>(rec).ok()?.upgrade()
    }
}

/// Whether a decoded record is well-formed: rank at most 4, dims past the rank 1, the offset
/// aligned to 4 bytes, and an int8 tensor's scale positive and finite.
fn record_ok(t: &TensorDesc) -> bool {
    let dims_ok = t.rank <= 4 && t.dims.iter().skip(usize::from(t.rank)).all(|&d| d == 1);
    let quant_ok = match t.elem {
        ElemType::F32 => true,
        ElemType::I8 => t.quant.scale.is_finite() && t.quant.scale > 0.0,
    };
    dims_ok && quant_ok && t.offset % 4 == 0
}

fn take<'a, T: serde::Deserialize<'a>>(
    rest: &'a [u8],
    base: &[u8],
) -> Result<(T, &'a [u8]), Error> {
    let offset = (base.len() - rest.len()) as u32;
    postcard::take_from_bytes(rest).map_err(|_| Error::BadMetadata { offset })
}

impl<'a> BlobView<'a> {
    /// Checks the header and CRC (see [`Header::parse`]) and decodes the metadata framing.
    pub fn new_checked(blob: &'a [u8]) -> Result<BlobView<'a>, Error> {
        let header = Header::parse(blob)?;
        let meta = blob
            .get(header.meta.start as usize..header.meta.end as usize)
            .ok_or(Error::BadSection {
                offset: header.meta.start,
                len: header.meta.end - header.meta.start,
            })?;
        let weights = blob
            .get(header.weights.start as usize..header.weights.end as usize)
            .ok_or(Error::BadSection {
                offset: header.weights.start,
                len: header.weights.end - header.weights.start,
            })?;
        // Offsets in errors are relative to the blob: `base` spans from the blob start.
        let base = blob.get(..header.meta.end as usize).unwrap_or(blob);
        let (info, rest): (Info<'a>, _) = take(meta, base)?;
        let arena_bytes = if header.version >= 3 {
            Some(info.arena_size)
        } else {
            info.arena_size.checked_mul(4)
        }
        .ok_or(Error::BadMetadata {
            offset: header.meta.start,
        })?;
        let record = record_len(header.version);
        let tensors_len = (info.tensor_count as usize)
            .checked_mul(record)
            .filter(|&n| n <= rest.len())
            .ok_or(Error::Truncated {
                needed: u32::MAX,
                got: rest.len() as u32,
            })?;
        let tensors_at = base.len() - rest.len();
        let (tensors, mut rest) = rest.split_at(tensors_len);
        for (i, rec) in tensors.chunks_exact(record).enumerate() {
            let offset = (tensors_at + i * record) as u32;
            let t = decode_tensor(rec, header.version).ok_or(Error::BadMetadata { offset })?;
            if !record_ok(&t) {
                return Err(Error::BadTensorRecord { tensor: i as u32 });
            }
        }
        let ios_start = rest;
        let ios_count = u64::from(info.input_count) + u64::from(info.output_count);
        for _ in 0..ios_count {
            let (io, r): (Io<'a>, _) = take(rest, base)?;
            if io.tensor >= info.tensor_count {
                return Err(Error::IndexOutOfRange {
                    index: io.tensor,
                    len: info.tensor_count,
                });
            }
            rest = r;
        }
        let ios = ios_start.get(..ios_start.len() - rest.len()).unwrap_or(&[]);
        let ops = rest;
        let ops_offset = (base.len() - rest.len()) as u32;
        for i in 0..info.op_count {
            let (op, r): (WireOp<'a>, _) = take(rest, base)?;
            if op.kind().since() > header.version {
                return Err(Error::OpNotInVersion {
                    op: i,
                    version: header.version,
                });
            }
            rest = r;
        }
        if !rest.is_empty() {
            return Err(Error::TrailingMetadata {
                offset: (base.len() - rest.len()) as u32,
            });
        }
        Ok(BlobView {
            header,
            info,
            tensors,
            ios,
            ops,
            weights,
            ops_offset,
            arena_bytes,
        })
    }

    /// Size of the activation arena in bytes.
    pub fn arena_bytes(&self) -> u32 {
        self.arena_bytes
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Element type of weight matrices.
    pub fn dtype(&self) -> WeightDtype {
        self.header.dtype
    }
    /// Model name, provenance, arena size (in the blob's unit: use [`BlobView::arena_bytes`])
    /// and table sizes.
    pub fn info(&self) -> &Info<'a> {
        &self.info
    }
    /// The weights section.
    pub fn weights(&self) -> &'a [u8] {
        self.weights
    }
    /// Number of tensors.
    pub fn tensor_count(&self) -> u32 {
        self.info.tensor_count
    }

    /// Tensor `i`, with its offset in bytes whatever the blob's version.
    pub fn tensor(&self, i: u32) -> Result<TensorDesc, Error> {
        let len = self.info.tensor_count;
        let record = record_len(self.header.version);
        let start = (i as usize).wrapping_mul(record);
        let rec = self
            .tensors
            .get(start..start.wrapping_add(record))
            .filter(|_| i < len)
            .ok_or(Error::IndexOutOfRange { index: i, len })?;
        decode_tensor(rec, self.header.version).ok_or(Error::BadMetadata { offset: 0 })
    }

    /// The inputs followed by the outputs.
    fn ios(&self) -> impl Iterator<Item = Io<'a>> + 'a {
        let mut rest = self.ios;
        core::iter::from_fn(move || {
            let (io, r) = postcard::take_from_bytes::<Io<'a>>(rest).ok()?;
            rest = r;
            Some(io)
        })
    }

    /// The model inputs, in order.
    pub fn inputs(&self) -> impl Iterator<Item = Io<'a>> + 'a {
        self.ios().take(self.info.input_count as usize)
    }

    /// The model outputs, in order.
    pub fn outputs(&self) -> impl Iterator<Item = Io<'a>> + 'a {
        self.ios().skip(self.info.input_count as usize)
    }

    /// The ops in execution order, decoded one at a time.
    pub fn ops(&self) -> OpIter<'a> {
        OpIter {
            rest: self.ops,
            left: self.info.op_count,
            offset: self.ops_offset,
            total: self.ops.len(),
        }
    }
}

/// Iterator over the ops of a blob, decoding each on demand.
#[derive(Debug, Clone)]
pub struct OpIter<'a> {
    rest: &'a [u8],
    left: u32,
    offset: u32,
    total: usize,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<WireOp<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.offset + (self.total - self.rest.len()) as u32;
        match postcard::take_from_bytes::<WireOp<'a>>(self.rest) {
            Ok((op, r)) => {
                self.rest = r;
                Some(Ok(op))
            }
            Err(_) => {
                self.left = 0;
                Some(Err(Error::BadMetadata { offset: at }))
            }
        }
    }
}
