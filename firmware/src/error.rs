//! The engine's error: small, `Copy`, and saying where the fault is.

use core::fmt;

/// Why a blob was refused by [`crate::Model::from_bytes`] or a run could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The header, CRC or metadata framing is broken (see the inner error).
    Blob(nnblob_format::Error),
    /// A tensor's element count overflows, or its range is outside the arena.
    TensorOutsideArena { tensor: u32 },
    /// An op names a tensor that does not exist.
    OpTensor { op: u32, tensor: u32 },
    /// A tensor's shape (or rank) does not fit what the op computes.
    OpShape { op: u32, tensor: u32 },
    /// An op parameter is zero, inconsistent or too large; `field` names it.
    OpParam { op: u32, field: &'static str },
    /// A weight reference is outside the weights section, misaligned or of the wrong length.
    OpWeight { op: u32, field: &'static str },
    /// A tensor of the op has an element type (or quantization) the op does not take.
    OpType { op: u32, tensor: u32 },
    /// The op's output overlaps one of its inputs in the arena in a way the kernel cannot do.
    OpOverlap { op: u32, tensor: u32 },
    /// A recurrent layer's state tensor is used by another op, is a model input or output, or
    /// shares bytes with another tensor: it must stay untouched between runs.
    StateShared { op: u32, tensor: u32 },
    /// An input (`input: true`) or output of the model is not of the element type the entry
    /// point takes ([`crate::Model::run_quantized`] takes int8 ones only).
    IoType { index: u32, input: bool },
    /// The caller's arena is shorter than the blob's arena length (f32 elements).
    ArenaTooSmall { needed: u32, got: u32 },
    /// The number of input or output buffers differs from the model's.
    IoCount { expected: u32, got: u32 },
    /// An input buffer's length differs from the input tensor's element count.
    InputLen { input: u32, needed: u32, got: u32 },
    /// An output buffer's length differs from the output tensor's element count.
    OutputLen { output: u32, needed: u32, got: u32 },
    /// A check made at load time failed at run time: a bug in the engine, never the blob's fault.
    Internal,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Blob(e) => write!(f, "invalid blob: {e}"),
            Error::TensorOutsideArena { tensor } => {
                write!(f, "tensor {tensor} is too large or lies outside the arena")
            }
            Error::OpTensor { op, tensor } => {
                write!(f, "op {op} uses tensor {tensor}, which does not exist")
            }
            Error::OpShape { op, tensor } => {
                write!(
                    f,
                    "op {op}: the shape of tensor {tensor} does not match the op's parameters"
                )
            }
            Error::OpParam { op, field } => write!(f, "op {op}: parameter `{field}` is invalid"),
            Error::OpWeight { op, field } => {
                write!(f, "op {op}: weight `{field}` is outside the weights section or has the wrong length")
            }
            Error::OpType { op, tensor } => write!(
                f,
                "op {op}: tensor {tensor} has an element type or quantization the op does not take"
            ),
            Error::IoType { index, input } => write!(
                f,
                "{} {index} is not int8; run the model with its f32 entry point",
                if input { "input" } else { "output" }
            ),
            Error::OpOverlap { op, tensor } => {
                write!(
                    f,
                    "op {op}: its output overlaps input tensor {tensor} in the arena"
                )
            }
            Error::StateShared { op, tensor } => write!(
                f,
                "op {op}: its recurrent state, tensor {tensor}, is shared with another tensor or op \
                 (a state must be kept apart between runs)"
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: {needed} f32 needed, {got} given")
            }
            Error::IoCount { expected, got } => {
                write!(
                    f,
                    "the model has {expected} inputs (or outputs), {got} buffers were given"
                )
            }
            Error::InputLen { input, needed, got } => {
                write!(f, "input {input} needs {needed} f32, the buffer has {got}")
            }
            Error::OutputLen {
                output,
                needed,
                got,
            } => {
                write!(
                    f,
                    "output {output} needs {needed} f32, the buffer has {got}"
                )
            }
            Error::Internal => write!(f, "internal engine error (a load-time check was bypassed)"),
        }
    }
}

impl core::error::Error for Error {}

impl From<nnblob_format::Error> for Error {
    fn from(e: nnblob_format::Error) -> Self {
        Error::Blob(e)
    }
}
