//! The kernels. Each takes slices of exactly the validated lengths and geometry that
//! `crate::validate` checked; none allocates, and hot loops carry no checks beyond
//! Rust's bounds checks (which validation makes unreachable).

pub(crate) mod conv;
mod depthwise;
pub(crate) mod elementwise;
pub(crate) mod linear;
mod micro;
pub(crate) mod pool;
pub(crate) mod shape;
pub mod simd;
