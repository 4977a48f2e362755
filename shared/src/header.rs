//! The fixed-size blob header: named byte ranges, parsing and writing.
//!
//! All fields are little-endian. The CRC-32 (CRC-32/ISO-HDLC, the zlib/PNG one) covers
//! the whole blob `[0, total_len)` except the four CRC bytes themselves, so a flipped bit
//! anywhere — header included — is detected.

use crate::Error;
use core::ops::Range;

/// A byte range of the header.
pub type Field = Range<usize>;

/// Byte ranges of the header fields (format version 1).
pub mod field {
    use super::Field;
    /// `b"NNBL"`.
    pub const MAGIC: Field = 0..4;
    /// Format version, u16.
    pub const VERSION: Field = 4..6;
    /// Flags, u16: bits 0..2 weight dtype, the rest must be zero.
    pub const FLAGS: Field = 6..8;
    /// Header length in bytes, u16 (equals [`super::HEADER_LEN`] in version 1).
    pub const HEADER_LEN: Field = 8..10;
    /// Reserved, u16, must be zero.
    pub const RESERVED: Field = 10..12;
    /// CRC-32/ISO-HDLC of bytes `[0, 12)` followed by `[16, total_len)`.
    pub const CRC32: Field = 12..16;
    /// Length of the whole blob in bytes, u32.
    pub const TOTAL_LEN: Field = 16..20;
    /// Byte offset of the metadata section, u32.
    pub const META_OFFSET: Field = 20..24;
    /// Length of the metadata section in bytes, u32.
    pub const META_LEN: Field = 24..28;
    /// Byte offset of the weights section, u32 (a multiple of [`crate::layout::WEIGHT_ALIGN`]).
    pub const WEIGHTS_OFFSET: Field = 28..32;
    /// Length of the weights section in bytes, u32.
    pub const WEIGHTS_LEN: Field = 32..36;
}

/// Length of the header: the end of its last field.
pub const HEADER_LEN: usize = field::WEIGHTS_LEN.end;
/// The four magic bytes.
pub const MAGIC: [u8; 4] = *b"NNBL";
/// The format version this crate writes.
pub const VERSION: u16 = 6;
/// The oldest version this crate reads. Version 2 appended an op (`Slice`); version 3 gave
/// tensors an element type and quantization (int8), measured the arena and tensor offsets in
/// bytes and appended the int8 ops; version 4 appended two ops (`AdaptiveMaxPool2d`,
/// `ConvTranspose2d`), version 5 three (`Resize`, `Norm`, `MatMul`), version 6 one
/// (`Recurrent`, with a state kept between runs). Older blobs
/// read unchanged: their tensor records are converted on access (f32, offsets times 4). An op
/// newer than its blob's version is refused ([`Error::OpNotInVersion`]).
pub const MIN_VERSION: u16 = 1;

const DTYPE_MASK: u16 = 0b11;

/// The CRC algorithm of the header's checksum.
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The element type of the weight matrices (conv and linear weights). Vectors (biases,
/// scales, shifts, slopes) are always f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightDtype {
    /// IEEE binary32, 4 bytes.
    F32,
    /// IEEE binary16, 2 bytes.
    F16,
}

impl WeightDtype {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            WeightDtype::F32 => 4,
            WeightDtype::F16 => 2,
        }
    }

    const fn bits(self) -> u16 {
        match self {
            WeightDtype::F32 => 0,
            WeightDtype::F16 => 1,
        }
    }
}

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version the blob was written in, `MIN_VERSION..=VERSION`.
    pub version: u16,
    /// Element type of weight matrices.
    pub dtype: WeightDtype,
    /// The stored CRC-32.
    pub crc32: u32,
    /// Length of the blob in bytes.
    pub total_len: u32,
    /// Byte range of the metadata section.
    pub meta: Range<u32>,
    /// Byte range of the weights section.
    pub weights: Range<u32>,
}

fn u16_at(b: &[u8; HEADER_LEN], f: Field) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(f) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8; HEADER_LEN], f: Field) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(f) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn put(b: &mut [u8; HEADER_LEN], f: Field, v: &[u8]) {
    if let Some(s) = b.get_mut(f) {
        s.copy_from_slice(v);
    }
}

/// Computes the blob's CRC-32: bytes `[0, 12)` then `[16, len)` of `blob`.
pub fn blob_crc(blob: &[u8]) -> u32 {
    let mut d = CRC.digest();
    d.update(blob.get(..field::CRC32.start).unwrap_or(&[]));
    d.update(blob.get(field::CRC32.end..).unwrap_or(&[]));
    d.finalize()
}

impl Header {
    /// Parses and checks the header of `blob`: length, magic, version, flags, header length,
    /// total length against the buffer, the CRC, and the section ranges (inside the blob,
    /// metadata before weights, weights aligned). Bytes past `total_len` are ignored (a
    /// flash region may be larger than the blob).
    pub fn parse(blob: &[u8]) -> Result<Header, Error> {
        let got = u32::try_from(blob.len()).unwrap_or(u32::MAX);
        let b: &[u8; HEADER_LEN] = blob
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Truncated {
                needed: HEADER_LEN as u32,
                got,
            })?;
        if b.get(field::MAGIC) != Some(&MAGIC[..]) {
            return Err(Error::BadMagic);
        }
        let version = u16_at(b, field::VERSION);
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let flags = u16_at(b, field::FLAGS);
        let dtype = match flags {
            0 => WeightDtype::F32,
            1 => WeightDtype::F16,
            _ => return Err(Error::UnknownFlags(flags)),
        };
        let header_len = u16_at(b, field::HEADER_LEN);
        if usize::from(header_len) != HEADER_LEN {
            return Err(Error::BadHeaderLen(header_len));
        }
        let reserved = u16_at(b, field::RESERVED);
        if reserved != 0 {
            return Err(Error::UnknownFlags(reserved));
        }
        let total_len = u32_at(b, field::TOTAL_LEN);
        let blob = blob.get(..total_len as usize).ok_or(Error::Truncated {
            needed: total_len,
            got,
        })?;
        let crc32 = u32_at(b, field::CRC32);
        let computed = blob_crc(blob);
        if computed != crc32 {
            return Err(Error::CrcMismatch {
                stored: crc32,
                computed,
            });
        }
        let section = |o: Field, l: Field| -> Result<Range<u32>, Error> {
            let (offset, len) = (u32_at(b, o), u32_at(b, l));
            match offset.checked_add(len) {
                Some(end) if end <= total_len && offset as usize >= HEADER_LEN => Ok(offset..end),
                _ => Err(Error::BadSection { offset, len }),
            }
        };
        let meta = section(field::META_OFFSET, field::META_LEN)?;
        let weights = section(field::WEIGHTS_OFFSET, field::WEIGHTS_LEN)?;
        if weights.start < meta.end || weights.start as usize % crate::layout::WEIGHT_ALIGN != 0 {
            return Err(Error::BadSection {
                offset: weights.start,
                len: weights.end.saturating_sub(weights.start),
            });
        }
        Ok(Header {
            version,
            dtype,
            crc32,
            total_len,
            meta,
            weights,
        })
    }

    /// Writes the header into `out`; `crc32` is written as given (see [`blob_crc`]).
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        put(out, field::MAGIC, &MAGIC);
        put(out, field::VERSION, &self.version.to_le_bytes());
        put(
            out,
            field::FLAGS,
            &(self.dtype.bits() & DTYPE_MASK).to_le_bytes(),
        );
        put(out, field::HEADER_LEN, &(HEADER_LEN as u16).to_le_bytes());
        put(out, field::RESERVED, &0u16.to_le_bytes());
        put(out, field::CRC32, &self.crc32.to_le_bytes());
        put(out, field::TOTAL_LEN, &self.total_len.to_le_bytes());
        put(out, field::META_OFFSET, &self.meta.start.to_le_bytes());
        put(
            out,
            field::META_LEN,
            &self.meta.end.saturating_sub(self.meta.start).to_le_bytes(),
        );
        put(
            out,
            field::WEIGHTS_OFFSET,
            &self.weights.start.to_le_bytes(),
        );
        put(
            out,
            field::WEIGHTS_LEN,
            &self
                .weights
                .end
                .saturating_sub(self.weights.start)
                .to_le_bytes(),
        );
    }
}
