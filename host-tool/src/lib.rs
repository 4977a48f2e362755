//! nnblob, the host side: everything that runs before the blob reaches a device.
//!
//! One module per pipeline stage; see `docs/ARCHITECTURE.md`.

#![deny(unsafe_code)]

pub mod atomic_file;
pub mod blob;
pub mod checkpoint;
pub mod cli;
pub mod emit;
pub mod eval;
pub mod graph;
pub mod npy;
pub mod onnx_export;
pub mod passes;
pub mod plan;
pub mod pt2;
pub mod quant;
pub mod validate;
