//! The decoding error of the format crate: what is wrong and where (byte offset, index).

use core::fmt;

/// Why a blob was refused while decoding its header and metadata.
///
/// Every variant carries the place of the fault so that a user can find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than a part of the blob claims (`needed` bytes, `got` bytes).
    Truncated { needed: u32, got: u32 },
    /// The first four bytes are not the nnblob magic.
    BadMagic,
    /// The blob was written in a format version this reader does not know.
    UnsupportedVersion(u16),
    /// The flags field holds bits this version does not define.
    UnknownFlags(u16),
    /// The header length field disagrees with the version's header length.
    BadHeaderLen(u16),
    /// The CRC-32 stored in the header does not match the blob's contents.
    CrcMismatch { stored: u32, computed: u32 },
    /// A section (metadata or weights) lies outside the blob, overlaps another or is misaligned.
    BadSection { offset: u32, len: u32 },
    /// A postcard value of the metadata could not be decoded; `offset` is its byte offset in the blob.
    BadMetadata { offset: u32 },
    /// The metadata has bytes left over after its last op, at this byte offset in the blob.
    TrailingMetadata { offset: u32 },
    /// A tensor record has a rank above 4 or a dimension beyond its rank that is not 1.
    BadTensorRecord { tensor: u32 },
    /// An index (tensor, input, output) is past the end of its table.
    IndexOutOfRange { index: u32, len: u32 },
    /// Op `op` is of a kind added after the format version the blob declares.
    OpNotInVersion { op: u32, version: u16 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { needed, got } => {
                write!(f, "blob truncated: {needed} bytes needed, {got} present")
            }
            Error::BadMagic => write!(f, "not an nnblob blob (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported blob format version {v}"),
            Error::UnknownFlags(v) => write!(f, "unknown header flags {v:#06x}"),
            Error::BadHeaderLen(v) => write!(f, "header length field {v} is wrong for this version"),
            Error::CrcMismatch { stored, computed } => write!(
                f,
                "CRC-32 mismatch: header says {stored:#010x}, contents give {computed:#010x} (blob corrupted)"
            ),
            Error::BadSection { offset, len } => write!(
                f,
                "section at byte {offset} with length {len} is outside the blob, overlapping or misaligned"
            ),
            Error::BadMetadata { offset } => {
                write!(f, "metadata cannot be decoded at byte {offset}")
            }
            Error::TrailingMetadata { offset } => {
                write!(f, "unexpected bytes after the last op at byte {offset}")
            }
            Error::BadTensorRecord { tensor } => write!(
                f,
                "tensor {tensor}: rank above 4 or a dimension beyond the rank that is not 1"
            ),
            Error::IndexOutOfRange { index, len } => {
                write!(f, "index {index} is out of range (table has {len} entries)")
            }
            Error::OpNotInVersion { op, version } => write!(
                f,
                "op {op} is of a kind that format version {version} does not have"
            ),
        }
    }
}

impl core::error::Error for Error {}
