//! The nnblob firmware engine.
//!
//! In: a blob (`&[u8]`, read in place from flash) and caller-owned input, output and
//! arena buffers. Out: the network's outputs. Nothing is allocated and nothing panics.
#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
