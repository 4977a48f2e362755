//! The nnblob blob format, shared by the converter (which writes blobs) and the
//! firmware engine (which reads them in place, without an allocator).
//!
//! In: nothing yet. Out: nothing yet. The format is specified in `docs/FORMAT.md`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
