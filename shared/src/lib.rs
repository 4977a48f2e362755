//! The nnblob blob format, shared by the converter (which writes blobs) and the
//! firmware engine (which reads them in place, without an allocator).
//!
//! In: blob bytes (decoding, `no_std`, zero-copy) or an owned [`encode::ModelRepr`]
//! (encoding, `std` feature). Out: a checked [`BlobView`] whose accessors cannot panic,
//! or the blob bytes. The wire format is specified in `docs/FORMAT.md`; the tests in
//! `tests/wire.rs` pin its bytes.
//!
//! A blob is `header | metadata | padding | weights`:
//! - [`header`]: fixed little-endian fields (magic, version, flags, CRC-32, section ranges);
//! - [`meta`]: postcard values — one [`meta::Info`], `tensor_count` fixed-size
//!   [`meta::TensorDesc`] records, the inputs and outputs ([`meta::Io`]), then the ops
//!   ([`meta::Op`]), decoded lazily one at a time;
//! - weights: f16 or f32 little-endian values, each tensor 16-byte aligned, already in the
//!   layout the firmware kernels read (see [`layout`]).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "std")]
pub mod encode;
mod error;
pub mod header;
pub mod layout;
pub mod meta;
mod view;

pub use error::Error;
pub use header::{Header, WeightDtype};
pub use view::{BlobView, OpIter};
