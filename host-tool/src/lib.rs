//! nnblob, the host side: everything that runs before the blob reaches a device.
//!
//! One module per pipeline stage; see `docs/ARCHITECTURE.md`.

pub mod npy;
pub mod validate;
